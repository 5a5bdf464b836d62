import numpy as np
import pytest

from eowatch.kernels import classify as cl
from eowatch.model import NO_CHANGE_CLASS, NO_DATA_CLASS


def _bands(spectra):
    names = ("B02", "B03", "B04", "B08", "B11", "B12")
    arr = np.array(spectra, dtype=np.float32)  # (pixels, 6)
    return {n: arr[:, i][None, :] for i, n in enumerate(names)}


VEG = (0.03, 0.06, 0.04, 0.40, 0.20, 0.10)
WATER = (0.06, 0.07, 0.04, 0.02, 0.01, 0.005)
BUILT = (0.12, 0.13, 0.14, 0.18, 0.25, 0.22)
BURNT = (0.04, 0.05, 0.06, 0.12, 0.20, 0.22)
SPARSE = (0.03, 0.06, 0.06, 0.15, 0.12, 0.05)


def test_rules_assign_expected_classes():
    before = _bands([VEG, BUILT, WATER, VEG, VEG, SPARSE, VEG, VEG, BUILT])
    after = _bands([SPARSE, WATER, BUILT, BUILT, BURNT, VEG, VEG, VEG, BUILT])
    changed = np.array([[True] * 8 + [False]])
    valid = np.ones_like(changed)
    valid[0, 7] = False
    out = cl.classify_change_from_bands(changed, before, after, valid)
    assert out.dtype == np.uint8
    assert list(out[0]) == [
        cl.VEGETATION_LOSS,
        cl.WATER_GAIN,
        cl.WATER_LOSS,
        cl.NEW_BARE_BUILT,
        cl.BURN_SCAR,
        cl.VEGETATION_GAIN,
        cl.OTHER_CHANGE,  # changed but spectrally identical
        NO_DATA_CLASS,
        NO_CHANGE_CLASS,
    ]


def test_missing_swir_skips_swir_rules():
    names = ("B02", "B03", "B04", "B08")
    b = {n: np.array([[VEG[i]]], np.float32) for i, n in enumerate(names)}
    a = {n: np.array([[BURNT[i]]], np.float32) for i, n in enumerate(names)}
    out = cl.classify_change_from_bands(np.array([[True]]), b, a)
    assert out[0, 0] == cl.VEGETATION_LOSS


def test_class_table():
    values = [c.value for c in cl.CLASS_TABLE]
    assert values[0] == 0 and values[-1] == 255 and len(set(values)) == len(values)
    assert all(len(c.colour) == 3 for c in cl.CLASS_TABLE)
    assert cl.class_name(cl.BURN_SCAR) == "burn scar"
    with pytest.raises(KeyError):
        cl.class_name(99)
