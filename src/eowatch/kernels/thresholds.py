"""Automatic thresholds on a one-dimensional statistic.

All functions ignore NaN and take an optional boolean ``valid`` mask, so the
caller never has to flatten masked arrays itself. Histogram-based methods use
``bins`` equal-width bins between robust limits (0.1 and 99.9 percentiles) so
that a few extreme pixels do not squeeze the useful range into one bin.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import stats

__all__ = ["otsu", "kittler_illingworth", "chi2_threshold", "valid_values"]


def valid_values(values: NDArray[np.floating], valid: NDArray[np.bool_] | None = None) -> NDArray[np.float64]:
    """Finite values of ``values`` where ``valid`` is true, as a 1-D float64 array."""
    v = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(v)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)
    return v[keep]


def _histogram(
    values: NDArray[np.floating], valid: NDArray[np.bool_] | None, bins: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    v = valid_values(values, valid)
    if v.size < 2:
        raise ValueError(f"a threshold needs at least two valid values; got {v.size}")
    lo, hi = np.percentile(v, [0.1, 99.9])
    if not hi > lo:
        lo, hi = float(v.min()), float(v.max())
    if not hi > lo:
        raise ValueError(f"all valid values are equal ({lo:g}): no threshold separates them")
    counts, edges = np.histogram(v, bins=bins, range=(lo, hi))
    centres = 0.5 * (edges[:-1] + edges[1:])
    return counts.astype(np.float64), centres


def otsu(values: NDArray[np.floating], valid: NDArray[np.bool_] | None = None, bins: int = 256) -> float:
    """Otsu's threshold: maximises the between-class variance of the histogram."""
    counts, centres = _histogram(values, valid, bins)
    p = counts / counts.sum()
    w0 = np.cumsum(p)
    w1 = 1.0 - w0
    m = np.cumsum(p * centres)
    mt = m[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    k = int(np.argmax(between[:-1]))
    return float(0.5 * (centres[k] + centres[k + 1]))


def kittler_illingworth(
    values: NDArray[np.floating], valid: NDArray[np.bool_] | None = None, bins: int = 256
) -> float:
    """Kittler-Illingworth minimum-error threshold (two Gaussian classes).

    Minimises J(t) = 1 + 2 [P1 ln s1 + P2 ln s2] - 2 [P1 ln P1 + P2 ln P2]
    (Kittler & Illingworth 1986). Falls back to Otsu when no threshold leaves
    both classes with a positive variance.
    """
    counts, centres = _histogram(values, valid, bins)
    p = counts / counts.sum()
    p1 = np.cumsum(p)
    p2 = 1.0 - p1
    s1 = np.cumsum(p * centres)
    s1q = np.cumsum(p * centres**2)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu1 = s1 / p1
        mu2 = (s1[-1] - s1) / p2
        var1 = s1q / p1 - mu1**2
        var2 = (s1q[-1] - s1q) / p2 - mu2**2
        j = 1.0 + (p1 * np.log(var1) + p2 * np.log(var2)) - 2.0 * (p1 * np.log(p1) + p2 * np.log(p2))
    # Classes thinner than a bin's variance make the criterion meaningless.
    min_var = ((centres[1] - centres[0]) ** 2) / 12.0
    ok = np.isfinite(j) & (var1 > min_var) & (var2 > min_var) & (p1 > 1e-4) & (p2 > 1e-4)
    ok[-1] = False
    if not ok.any():
        return otsu(values, valid, bins)
    k = int(np.argmin(np.where(ok, j, np.inf)))
    return float(0.5 * (centres[k] + centres[k + 1]))


def chi2_threshold(alpha: float, dof: int) -> float:
    """The chi-square value exceeded with probability ``alpha`` under no change."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive); got {alpha!r}")
    return float(stats.chi2.isf(alpha, dof))
