import numpy as np
import pytest
from scipy import stats

from eowatch.kernels import thresholds as th


def test_otsu_equal_variance_mixture_splits_in_the_middle():
    rng = np.random.default_rng(0)
    v = np.concatenate([rng.normal(0, 1, 50_000), rng.normal(8, 1, 50_000)])
    assert th.otsu(v) == pytest.approx(4.0, abs=0.3)
    assert th.kittler_illingworth(v) == pytest.approx(4.0, abs=0.3)


def test_ki_beats_otsu_on_unequal_variances():
    # Narrow, large class at 0 and a wide, small class at 6: the Bayes
    # minimum-error boundary is close to the narrow class; Otsu is biased
    # towards the wide one's side less well.
    rng = np.random.default_rng(1)
    a = rng.normal(0, 0.5, 90_000)
    b = rng.normal(6, 2.0, 10_000)
    v = np.concatenate([a, b])
    truth = np.r_[np.zeros(a.size, bool), np.ones(b.size, bool)]
    t_ki, t_otsu = th.kittler_illingworth(v), th.otsu(v)

    def errors(t):
        return int(np.sum((v > t) != truth))

    assert 1.0 < t_ki < 3.0
    assert errors(t_ki) < errors(t_otsu)


def test_valid_mask_and_nan_are_ignored():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.normal(0, 1, 20_000), rng.normal(4, 1, 20_000)])
    noisy = v.copy()
    noisy[:100] = np.nan
    valid = np.ones(v.size, bool)
    valid[-100:] = False
    noisy[-100:] = 1e9
    assert th.otsu(noisy, valid) == pytest.approx(2.0, abs=0.3)
    np.testing.assert_array_equal(th.valid_values(noisy, valid).size, v.size - 200)


def test_constant_values_raise():
    with pytest.raises(ValueError, match="equal"):
        th.otsu(np.ones(100))
    with pytest.raises(ValueError, match="at least two"):
        th.otsu(np.array([1.0]))


def test_chi2_threshold():
    assert th.chi2_threshold(0.05, 1) == pytest.approx(3.841, abs=1e-3)
    assert th.chi2_threshold(0.01, 4) == pytest.approx(13.277, abs=1e-3)
    assert stats.chi2.sf(th.chi2_threshold(1e-4, 6), 6) == pytest.approx(1e-4)
    with pytest.raises(ValueError):
        th.chi2_threshold(0.0, 4)
