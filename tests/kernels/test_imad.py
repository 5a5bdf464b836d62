import numpy as np
import pytest
from scipy import stats

from eowatch.kernels import imad as im
from eowatch.kernels.thresholds import chi2_threshold

GAIN = np.array([1.10, 0.90, 1.25, 0.80])
OFFSET = np.array([0.02, -0.01, 0.03, 0.00])
BLOCK = (slice(10, 40), slice(20, 60))


def _scene(seed=0, rows=120, cols=120, noise=0.01):
    """before = land-cover signal + noise; after = gain*signal + offset + noise, except a block."""
    rng = np.random.default_rng(seed)
    mix = rng.uniform(0.2, 1.0, (4, 3))
    latent = rng.normal(0, 0.08, (3, rows, cols))
    signal = 0.2 + np.einsum("bk,krc->brc", mix, latent)
    before = signal + rng.normal(0, noise, signal.shape)
    after = GAIN[:, None, None] * signal + OFFSET[:, None, None] + rng.normal(0, noise, signal.shape)
    changed = np.zeros((rows, cols), bool)
    changed[BLOCK] = True
    other = 0.2 + np.einsum(
        "bk,krc->brc", rng.uniform(0.2, 1.0, (4, 3)), rng.normal(0, 0.08, (3, rows, cols))
    )
    after[:, changed] = other[:, changed] + rng.normal(0, noise, (4, int(changed.sum())))
    return before.astype(np.float32), after.astype(np.float32), changed


@pytest.fixture(scope="module")
def result():
    before, after, changed = _scene()
    return (
        im.imad(before, after, np.ones(changed.shape, bool), max_iter=100, tol=1e-5),
        before,
        after,
        changed,
    )


def test_changed_block_has_high_chi2_and_low_p(result):
    r, _, _, changed = result
    assert np.median(r.p_no_change[changed]) < 1e-6
    assert np.mean(r.chi2[changed] > chi2_threshold(0.01, 4)) > 0.95
    assert np.mean(r.chi2[~changed] > chi2_threshold(0.01, 4)) < 0.03


def test_no_change_chi2_follows_chi2_of_bands(result):
    r, _, _, changed = result
    z = r.chi2[~changed].astype(np.float64)
    assert z.mean() == pytest.approx(4.0, rel=0.1)
    assert np.median(z) == pytest.approx(stats.chi2.median(4), rel=0.1)
    # the p-value is uniform under no change
    assert np.mean(r.p_no_change[~changed] < 0.05) == pytest.approx(0.05, abs=0.02)


def test_convergence_sorted_rho_and_uncorrelated_mads(result):
    r, _, _, changed = result
    m = r.model
    assert m.converged and 1 < m.iterations < 100
    assert np.all(np.diff(m.rho) >= 0) and np.all((m.rho > 0) & (m.rho <= 1))
    assert len(m.rho_history) == m.iterations
    assert np.max(np.abs(m.rho_history[-1] - m.rho_history[-2])) < 1e-5
    mads = r.mad[:, ~changed].reshape(4, -1).astype(np.float64)
    corr = np.corrcoef(mads)
    assert np.max(np.abs(corr - np.eye(4))) < 0.1
    np.testing.assert_allclose(mads.var(axis=1), m.sigma**2, rtol=0.15)


def test_reweighting_improves_on_plain_mad():
    before, after, changed = _scene(seed=3)
    x = before.reshape(4, -1).T
    y = after.reshape(4, -1).T
    plain = im.fit_imad(x, y, max_iter=1)
    assert plain.iterations == 1 and not plain.converged
    iterated = im.fit_imad(x, y, max_iter=100)
    # changed pixels depress the plain canonical correlations; reweighting removes them
    assert iterated.rho.min() > plain.rho.min()


def test_apply_matches_transform_and_masks_invalid(result):
    r, before, after, _ = result
    valid = np.ones(before.shape[1:], bool)
    valid[0, :5] = False
    mad, chi2 = r.model.apply(before, after, valid)
    assert mad.dtype == np.float32 and chi2.dtype == np.float32
    assert np.isnan(chi2[0, :5]).all() and np.isnan(mad[:, 0, :5]).all()
    m2, c2 = r.model.transform_samples(before[:, 5, :].T, after[:, 5, :].T)
    np.testing.assert_allclose(chi2[5], c2, rtol=1e-4)
    np.testing.assert_allclose(mad[:, 5, :].T, m2, rtol=1e-3, atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        r.model.apply(before[:3], after[:3])


def test_radiometric_normalisation_recovers_gain_and_offset(result):
    r, before, after, changed = result
    norm, gain, offset = im.radiometric_normalisation(before, after, r.p_no_change, level=0.95)
    np.testing.assert_allclose(gain, GAIN, rtol=0.02)
    np.testing.assert_allclose(offset, OFFSET, atol=0.005)
    residual = (norm - before)[:, ~changed]
    assert np.abs(residual.mean(axis=1)).max() < 0.002
    assert norm.dtype == np.float32


def test_orthogonal_regression_is_symmetric():
    rng = np.random.default_rng(5)
    s = rng.normal(0, 1, 20_000)
    x = s + rng.normal(0, 0.3, s.size)
    y = 2.0 * s + 1.0 + rng.normal(0, 0.3, s.size)
    g, o = im.orthogonal_regression(x, y)
    g2, o2 = im.orthogonal_regression(y, x)
    assert g * g2 == pytest.approx(1.0, rel=1e-9)
    assert g == pytest.approx(2.0, rel=0.03) and o == pytest.approx(1.0, abs=0.03)


def test_sampling_is_deterministic_and_bounded():
    valid = np.zeros((50, 50), bool)
    valid[::2] = True
    a = im.sample_pixels(valid, 100, seed=7)
    b = im.sample_pixels(valid, 100, seed=7)
    np.testing.assert_array_equal(a, b)
    assert a.size == 100 and valid.ravel()[a].all()
    assert im.sample_pixels(valid, None).size == valid.sum()


def test_chi2_median_scale_calibrates_overdispersion():
    rng = np.random.default_rng(2)
    z = 3.0 * rng.chisquare(4, 100_000)
    scale = im.chi2_median_scale(z, 4)
    assert scale == pytest.approx(1 / 3.0, rel=0.02)
    assert np.mean(z * scale > chi2_threshold(0.01, 4)) == pytest.approx(0.01, abs=0.002)
    with pytest.raises(ValueError):
        im.chi2_median_scale(np.full(4, np.nan), 4)


def test_input_errors():
    x = np.zeros((8, 4))
    with pytest.raises(ValueError, match="more pixels"):
        im.fit_imad(x, x)
    with pytest.raises(ValueError, match="same shape"):
        im.fit_imad(np.zeros((100, 4)), np.zeros((100, 3)))
    bad = np.random.default_rng(0).normal(size=(100, 4))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        im.fit_imad(bad, bad)


def test_chi_square_is_nan_at_non_finite_bands_and_takes_any_float_layout(result):
    r, before, after, _ = result
    x, y = before.copy(), after.astype(np.float64)[:, :, ::-1]  # float64, non-contiguous
    x[2, 7, 9], y[0, 3, 4] = np.nan, np.inf
    chi2 = r.model.chi_square(x, y)
    assert np.isnan(chi2[7, 9]) and np.isnan(chi2[3, 4])
    ok = np.isfinite(chi2)
    assert ok.sum() == chi2.size - 2
    _, c2 = r.model.transform_samples(x[:, 5, :].T, y[:, 5, :].T)
    np.testing.assert_allclose(chi2[5], c2, rtol=1e-5)


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 6, 10, 21])
def test_no_change_probability_equals_scipy(dof):
    z = np.concatenate([[0.0, -1.0, np.nan, 1e-9, 1e4], np.linspace(0.01, 200, 5000)])
    ours = im.chi2_no_change_probability(z, dof)
    theirs = stats.chi2.sf(z, dof)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-300)
    assert ours[1] == 1.0 and np.isnan(ours[2])
