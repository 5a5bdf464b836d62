"""Speckle filters on simulated Gamma speckle of known ENL."""

from __future__ import annotations

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
