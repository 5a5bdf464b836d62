"""Speckle filters on simulated Gamma speckle of known ENL, and the compiled kernels against a
brute-force per-pixel reference (the valid pixels of each window, numpy's mean and variance)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
import pytest

from eowatch.kernels import speckle

ENL = 4.0
FILTERS = [speckle.lee_filter, speckle.refined_lee_filter, speckle.gamma_map_filter]


def _enl(x: np.ndarray) -> float:
    return float(np.mean(x) ** 2 / np.var(x))


@pytest.mark.parametrize("filt", FILTERS, ids=lambda f: f.__name__)
def test_constant_field_mean_preserved_and_enl_raised(filt) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    x = (rng.gamma(ENL, 1.0, (300, 300)) * 0.05 / ENL).astype(np.float32)
    y = filt(x, 7, ENL)
    assert y.dtype == np.float32 and y.shape == x.shape
    core = y[10:-10, 10:-10]
    rel = abs(float(core.mean()) / 0.05 - 1.0)
    gain = _enl(core) / ENL
    print(f"{filt.__name__}: mean error {rel:.4f}, ENL {ENL} -> {_enl(core):.1f}")
    assert rel < 0.03
    assert gain > 8.0  # a 7x7 window can at most give ~49x


def test_refined_lee_keeps_edges_sharper_than_lee() -> None:
    rng = np.random.default_rng(2)
    field = np.ones((300, 300))
    field[:, 150:] = 0.1  # 10 dB step edge
    x = (rng.gamma(ENL, 1.0, field.shape) * field / ENL).astype(np.float32)
    rows = slice(10, -10)
    errs = {}
    for filt in (speckle.lee_filter, speckle.refined_lee_filter):
        y = filt(x, 7, ENL)
        # Mean absolute error against the true step within 5 px of the edge.
        errs[filt.__name__] = float(np.mean(np.abs(y[rows, 145:155] - field[rows, 145:155])))
        profile = y[rows].mean(axis=0)
        print(f"{filt.__name__}: edge MAE {errs[filt.__name__]:.4f}, profile {np.round(profile[146:154], 2)}")
    assert errs["refined_lee_filter"] < 0.85 * errs["lee_filter"]
    # Diagonal edge too.
    diag = np.add.outer(np.arange(300), -np.arange(300))
    field = np.where(diag > 0, 0.1, 1.0)
    x = (rng.gamma(ENL, 1.0, field.shape) * field / ENL).astype(np.float32)
    near = (np.abs(diag) <= 4) & (np.add.outer(np.arange(300), np.arange(300)) % 300 > 20)
    e_lee = float(np.mean(np.abs(speckle.lee_filter(x, 7, ENL) - field)[near]))
    e_ref = float(np.mean(np.abs(speckle.refined_lee_filter(x, 7, ENL) - field)[near]))
    print(f"diagonal edge MAE: lee {e_lee:.4f}, refined lee {e_ref:.4f}")
    assert e_ref < 0.85 * e_lee


@pytest.mark.parametrize("filt", FILTERS, ids=lambda f: f.__name__)
def test_nodata_is_kept_and_ignored(filt) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    x = (rng.gamma(ENL, 1.0, (60, 60)) / ENL).astype(np.float32)
    x[20:30, 20:30] = np.nan
    y = filt(x, 7, ENL)
    assert np.isnan(y[20:30, 20:30]).all()
    assert np.isfinite(y[~np.isnan(x)]).all()


def test_bad_parameters() -> None:
    x = np.ones((20, 20), np.float32)
    with pytest.raises(ValueError):
        speckle.lee_filter(x, 6, ENL)
    with pytest.raises(ValueError):
        speckle.gamma_map_filter(x, 7, 0.0)
    with pytest.raises(ValueError):
        speckle.refined_lee_filter(x, 9, ENL)
    assert np.allclose(speckle.refined_lee_filter(x, 13, ENL), 1.0)


# -- against a brute-force per-pixel reference ------------------------------------------------------

#: Lee et al. (1999) half windows by (row, column) offset from the centre, centre line included:
#: left, right, top, bottom, upper-right, lower-left, upper-left, lower-right.
HALF_WINDOWS: list[Callable[[int, int], bool]] = [
    lambda dr, dc: dc <= 0,
    lambda dr, dc: dc >= 0,
    lambda dr, dc: dr <= 0,
    lambda dr, dc: dr >= 0,
    lambda dr, dc: dc >= dr,
    lambda dr, dc: dc <= dr,
    lambda dr, dc: dc <= -dr,
    lambda dr, dc: dc >= -dr,
]


def _window(
    x: np.ndarray, i: int, j: int, r: int, keep: Callable[[int, int], bool] | None = None
) -> np.ndarray:
    """The finite values of the (2 r + 1)^2 window around (i, j) inside the image (and ``keep``)."""
    vals = [
        float(x[i + dr, j + dc])
        for dr in range(-r, r + 1)
        for dc in range(-r, r + 1)
        if 0 <= i + dr < x.shape[0] and 0 <= j + dc < x.shape[1] and (keep is None or keep(dr, dc))
    ]
    v = np.array(vals)
    return v[np.isfinite(v)]


def _lee(z: float, m: float, var: float, enl: float) -> float:
    cu2 = 1.0 / enl
    b = min(max((var - m * m * cu2) / (1.0 + cu2) / var, 0.0), 1.0) if var > 0 else 0.0
    return m + b * (z - m)


def _gamma_map(z: float, m: float, var: float, enl: float) -> float:
    cu2 = 1.0 / enl
    ci2 = var / (m * m)
    if ci2 <= cu2:
        return m
    if ci2 >= 2.0 * cu2:
        return z
    a = (1.0 + cu2) / (ci2 - cu2)
    b = a - enl - 1.0
    return float((b * m + np.sqrt(max(m * m * b * b + 4.0 * a * enl * m * z, 0.0))) / (2.0 * a))


def _brute_box(x: np.ndarray, window: int, enl: float, estimate: Callable[..., float]) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for i, j in zip(*np.nonzero(np.isfinite(x)), strict=True):
        v = _window(x, i, j, window // 2)
        out[i, j] = estimate(float(x[i, j]), v.mean(), v.var(), enl)
    return out


def _brute_refined_lee(x: np.ndarray, window: int, enl: float) -> np.ndarray:
    s = (window + 2) // 3
    rows, cols = x.shape
    sub = np.zeros(x.shape)  # s x s means, 0 where a sub-window has no valid pixel
    for i in range(rows):
        for j in range(cols):
            v = _window(x, i, j, s // 2)
            sub[i, j] = v.mean() if v.size else 0.0
    out = np.full(x.shape, np.nan)
    for i, j in zip(*np.nonzero(np.isfinite(x)), strict=True):

        def m(a: int, b: int, i: int = i, j: int = j) -> float:  # sub-window grid, edge-clamped
            return float(sub[min(max(i + a * (s - 1), 0), rows - 1), min(max(j + b * (s - 1), 0), cols - 1)])

        gradients = [
            abs(m(-1, 1) + m(0, 1) + m(1, 1) - (m(-1, -1) + m(0, -1) + m(1, -1))),
            abs(m(1, -1) + m(1, 0) + m(1, 1) - (m(-1, -1) + m(-1, 0) + m(-1, 1))),
            abs(m(-1, 0) + m(-1, 1) + m(0, 1) - (m(0, -1) + m(1, -1) + m(1, 0))),
            abs(m(-1, -1) + m(-1, 0) + m(0, -1) - (m(0, 1) + m(1, 0) + m(1, 1))),
        ]
        orient = int(np.argmax(gradients))
        (a1, b1), (a2, b2) = [((0, -1), (0, 1)), ((-1, 0), (1, 0)), ((-1, 1), (1, -1)), ((-1, -1), (1, 1))][
            orient
        ]
        first = abs(m(a1, b1) - m(0, 0)) <= abs(m(a2, b2) - m(0, 0))
        v = _window(x, i, j, window // 2, HALF_WINDOWS[2 * orient + (0 if first else 1)])
        out[i, j] = _lee(float(x[i, j]), v.mean(), v.var(), enl)
    return out


def _speckled(seed: int, shape: tuple[int, int] = (40, 50), dtype: type = np.float32) -> np.ndarray:
    """Gamma speckle (ENL 4.4) over 8x8 patches of log-normal backscatter, with scattered and
    block nodata, a nodata border, infinities and a bright target."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    field = np.kron(np.exp(rng.normal(np.log(0.05), 1.0, (rows // 8 + 1, cols // 8 + 1))), np.ones((8, 8)))
    x = rng.gamma(4.4, 1.0 / 4.4, shape) * field[:rows, :cols]
    x[rng.random(shape) < 0.03] = np.nan
    x[10:17, 20:31] = np.nan
    x[:, :2] = np.nan
    x[-1, 5:9] = np.inf
    x[3, 3] = 1e3
    return x.astype(dtype)


def _assert_matches(y: np.ndarray, expected: np.ndarray, x: np.ndarray) -> None:
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.array_equal(np.isnan(y), ~np.isfinite(x))  # NaN exactly where the input is not finite
    assert np.array_equal(np.isnan(y), np.isnan(expected))
    ok = np.isfinite(expected)
    np.testing.assert_allclose(y[ok], expected[ok], rtol=1e-6, atol=0)


BOX = [(speckle.lee_filter, _lee), (speckle.gamma_map_filter, _gamma_map)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("window", [3, 7])
@pytest.mark.parametrize(("filt", "estimate"), BOX, ids=lambda f: getattr(f, "__name__", ""))
def test_box_filters_match_brute_force(filt, estimate, window: int, dtype: type) -> None:  # type: ignore[no-untyped-def]
    x = _speckled(window, dtype=dtype)
    _assert_matches(filt(x, window, 4.4), _brute_box(x.astype(np.float64), window, 4.4, estimate), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_refined_lee_matches_brute_force(dtype: type) -> None:
    x = _speckled(5, dtype=dtype)
    _assert_matches(
        speckle.refined_lee_filter(x, 7, 4.4), _brute_refined_lee(x.astype(np.float64), 7, 4.4), x
    )
    x = _speckled(6, (45, 47), dtype)
    _assert_matches(
        speckle.refined_lee_filter(x, 13, 4.4), _brute_refined_lee(x.astype(np.float64), 13, 4.4), x
    )


@pytest.mark.parametrize("window", [1, 3, 5])
def test_local_mean_var_matches_brute_force(window: int) -> None:
    x = _speckled(7)
    mean, var, count = speckle.local_mean_var(x, window)
    assert all(a.dtype == np.float64 and a.shape == x.shape for a in (mean, var, count))
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            v = _window(x.astype(np.float64), i, j, window // 2)
            assert count[i, j] == v.size
            if v.size:
                assert mean[i, j] == pytest.approx(v.mean(), rel=1e-12)
                assert var[i, j] == pytest.approx(v.var(), rel=1e-9, abs=1e-15 * v.mean() ** 2)
            else:
                assert np.isnan(mean[i, j]) and np.isnan(var[i, j])


def test_bright_target_leaves_dark_neighbourhoods_exact() -> None:
    # Water (1e-4) and a 1e4 target further along the row and down the column: sums of
    # squares 16 orders of magnitude apart. Box sums without subtraction keep the water's
    # statistics exact; running sums (add the new value, subtract the old) lose them.
    rng = np.random.default_rng(8)
    x = (rng.gamma(4.4, 1.0 / 4.4, (40, 60)) * 1e-4).astype(np.float32)
    x[5, 5] = x[30, 40] = 1e4
    mean, var, _ = speckle.local_mean_var(x, 7)
    y = speckle.lee_filter(x, 7, 4.4)
    for i, j in [(20, 20), (30, 52), (38, 40), (5, 30), (25, 5)]:
        v = x[i - 3 : i + 4, j - 3 : j + 4].astype(np.float64).ravel()
        assert mean[i, j] == pytest.approx(v.mean(), rel=1e-12)
        assert var[i, j] == pytest.approx(v.var(), rel=1e-9)
        assert y[i, j] == pytest.approx(_lee(float(x[i, j]), v.mean(), v.var(), 4.4), rel=1e-6)
    # The refined Lee half windows too (row prefix sums, compensated), away from the targets.
    y = speckle.refined_lee_filter(x, 7, 4.4)
    expected = _brute_refined_lee(x.astype(np.float64), 7, 4.4)
    far = np.ones(x.shape, dtype=bool)
    far[:12, :12] = far[25:36, 35:46] = False
    np.testing.assert_allclose(y[far], expected[far], rtol=1e-6, atol=0)


@pytest.mark.parametrize("filt", FILTERS, ids=lambda f: f.__name__)
def test_chunks_with_half_window_overlap_are_seamless(filt) -> None:  # type: ignore[no-untyped-def]
    x = _speckled(9, (90, 70))
    whole = filt(x, 7, 4.4)
    halo = 3
    for r0, r1, c0, c1 in [(0, 37, 0, 70), (37, 90, 0, 29), (37, 90, 29, 70), (11, 12, 5, 64)]:
        a, b, c, d = max(r0 - halo, 0), min(r1 + halo, 90), max(c0 - halo, 0), min(c1 + halo, 70)
        part = filt(x[a:b, c:d], 7, 4.4)[r0 - a : r1 - a, c0 - c : c1 - c]
        ok = np.isfinite(whole[r0:r1, c0:c1])
        assert np.array_equal(ok, np.isfinite(part))
        np.testing.assert_allclose(part[ok], whole[r0:r1, c0:c1][ok], rtol=1e-6)


def test_threads_run_the_kernels_in_parallel_with_the_same_results() -> None:
    x = _speckled(10, (200, 300))
    expected = [f(x, 7, 4.4) for f in FILTERS]
    results: dict[int, np.ndarray] = {}

    def run(k: int) -> None:
        results[k] = FILTERS[k % 3](x, 7, 4.4)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(6):
        np.testing.assert_array_equal(results[k], expected[k % 3])


def test_integer_and_non_contiguous_inputs() -> None:
    x = _speckled(11, (30, 40), np.float64)
    view = x[::2, ::-1]
    np.testing.assert_array_equal(speckle.lee_filter(view, 5, 4.4), speckle.lee_filter(view.copy(), 5, 4.4))
    counts = np.arange(600, dtype=np.uint16).reshape(20, 30)
    np.testing.assert_array_equal(
        speckle.gamma_map_filter(counts, 3, 2.0), speckle.gamma_map_filter(counts.astype(np.float64), 3, 2.0)
    )
    with pytest.raises(ValueError):
        speckle.lee_filter(np.ones((2, 3, 4)), 3, 1.0)
