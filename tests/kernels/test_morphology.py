import numpy as np
import pytest

from eowatch.kernels import morphology as mo


def test_sieve_by_area_with_per_row_pixel_area():
    mask = np.zeros((10, 10), bool)
    mask[0:2, 0:2] = True  # 4 px in rows 0-1
    mask[7:9, 7:9] = True  # 4 px in rows 7-8
    mask[5, 0] = True  # 1 px
    area = np.full(10, 100.0)
    area[7:] = 200.0  # pixels further down are larger
    out = mo.sieve(mask, area, min_area_m2=500.0)
    assert not out[0:2, 0:2].any()  # 400 m2 < 500
    assert out[7:9, 7:9].all()  # 800 m2 kept
    assert not out[5, 0]
    assert mo.sieve(mask, area, 0.0).sum() == mask.sum()


def test_sieve_connectivity():
    mask = np.zeros((5, 5), bool)
    mask[1, 1] = mask[2, 2] = True  # diagonal neighbours
    assert mo.sieve(mask, 1.0, 2.0, connectivity=8).sum() == 2
    assert mo.sieve(mask, 1.0, 2.0, connectivity=4).sum() == 0
    with pytest.raises(ValueError):
        mo.sieve(mask, 1.0, 2.0, connectivity=6)
    with pytest.raises(ValueError, match="one value per row"):
        mo.sieve(mask, np.ones(3), 2.0)


def test_sieve_classes_keeps_reserved_values():
    c = np.zeros((6, 6), np.uint8)
    c[0:3, 0:3] = 1  # 9 px
    c[5, 5] = 2  # 1 px: removed
    c[4, 0] = 255  # no data: untouched even though small
    c[3, 5] = 1  # isolated 1 px of class 1: removed
    out = mo.sieve_classes(c, 1.0, 4.0)
    assert out.dtype == np.uint8
    assert (out[0:3, 0:3] == 1).all()
    assert out[5, 5] == 0 and out[3, 5] == 0
    assert out[4, 0] == 255


def test_clean_open_close():
    m = np.zeros((20, 20), bool)
    m[5:15, 5:15] = True
    m[8, 8] = False  # a hole
    m[0, 19] = True  # a speck
    out = mo.clean(m, 1)
    assert out[8, 8] and not out[0, 19]
    # the disk opening rounds the square's four corner pixels off
    assert out[6:14, 6:14].all() and out.sum() == 96
    assert not out[5, 5] and out[5, 6]
    np.testing.assert_array_equal(mo.clean(m, 0), m)
    assert mo.disk(2).sum() == 13


def test_region_majority_gives_each_region_one_class():
    from eowatch.kernels.morphology import region_majority

    classes = np.zeros((6, 8), dtype=np.uint8)
    classes[1:4, 1:4] = 5
    classes[1, 1] = 7  # a minority pixel inside the region
    classes[2, 6] = 2  # a separate one-pixel region
    changed = classes > 0
    out = region_majority(classes, changed)
    assert (out[1:4, 1:4] == 5).all() and out[2, 6] == 2 and (out[~changed] == 0).all()
