import numpy as np
import pytest

from eowatch.kernels import cva


def _pair():
    before = np.zeros((3, 2, 2), dtype=np.float32)
    after = before.copy()
    after[:, 0, 0] = [0.3, 0.4, 0.0]  # length 0.5
    after[:, 0, 1] = [0.1, 0.1, 0.1]  # uniform brightening
    after[:, 1, 0] = [-0.2, -0.2, -0.2]  # uniform darkening
    return before, after


def test_magnitude_and_validity():
    b, a = _pair()
    valid = np.array([[True, True], [True, False]])
    m = cva.cva_magnitude(b, a, valid)
    assert m.dtype == np.float32
    assert m[0, 0] == pytest.approx(0.5, rel=1e-6)
    assert m[0, 1] == pytest.approx(np.sqrt(0.03), rel=1e-5)
    assert np.isnan(m[1, 1])
    w = cva.cva_magnitude(b, a, weights=[4.0, 0.0, 0.0])
    assert w[0, 0] == pytest.approx(0.6, rel=1e-6)


def test_reference_angle_brightening_darkening():
    b, a = _pair()
    ang = cva.cva_reference_angle(b, a)
    assert ang[0, 1] == pytest.approx(0.0, abs=1e-3)
    assert ang[1, 0] == pytest.approx(180.0, abs=1e-3)
    assert np.isnan(ang[1, 1])  # zero change vector
    s = cva.cva_sign(b, a)
    assert s.dtype == np.int8
    assert list(s[:, 1, 0]) == [-1, -1, -1] and list(s[:, 0, 0]) == [1, 1, 0]


def test_polar_angle_quadrants():
    before = np.zeros((2, 1, 4), dtype=np.float32)
    after = np.array([[[1, 0, -1, 0]], [[0, 1, 0, -1]]], dtype=np.float32)
    np.testing.assert_allclose(cva.cva_polar_angle(before, after)[0], [0, 90, 180, 270], atol=1e-4)
    with pytest.raises(ValueError, match="exactly 2"):
        cva.cva_polar_angle(np.zeros((3, 1, 1)), np.zeros((3, 1, 1)))


def test_standardize_difference_uses_robust_spread():
    rng = np.random.default_rng(1)
    d = np.stack([rng.normal(0, 0.01, (100, 100)), rng.normal(0, 0.1, (100, 100))]).astype(np.float32)
    d[:, :5, :5] = 5.0  # a changed block must not inflate the spread
    z, scale = cva.standardize_difference(d)
    np.testing.assert_allclose(scale, [0.01, 0.1], rtol=0.05)
    assert abs(float(np.median(z[1]))) < 0.05


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        cva.cva_magnitude(np.zeros((3, 2, 2)), np.zeros((2, 2, 2)))
