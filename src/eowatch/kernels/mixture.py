"""Two-component Gaussian mixtures of one-dimensional values, and the bimodality test
that decides whether a threshold between the two is supported by the data.

Histogram thresholds (Otsu, Kittler-Illingworth) always return a split, even of a
single Gaussian: Otsu's two classes of one Gaussian are half a distribution each and
their Ashman's D is about 2.75, so a test on them passes by construction. Here the two
components are fitted by expectation-maximisation (EM) on a histogram, so that one
Gaussian gives two overlapping components (D ~ 1.5) and two populations give two
separated ones. A split is *supported* when

* Ashman's D = sqrt(2) |mu1 - mu2| / sqrt(s1² + s2²) >= ``min_d`` (2 is "clean
  separation", Ashman et al. 1994: below it a mixture of two equal Gaussians is not even
  bimodal),
* the smaller component holds at least ``min_weight`` of the values, and
* the weighted densities cross between the two means (the threshold: the Bayes
  decision boundary of the two components).

``tiled_split`` is the split-based search of Martinis et al. (2009) and Chini et al.
(2017): a population too small to show in the whole histogram (a little water in a big
scene) or too large (a scene mostly flooded) is bimodal in the sub-tiles that straddle
its edges. The tiles that pass the test are pooled, and the pooled values must pass it
again. Everything is numpy on histograms, batched over tiles; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Mixture",
    "Split",
    "fit_mixtures",
    "fit_mixture",
    "bimodal_split",
    "tiled_split",
]

_LIMITS = (0.5, 99.5)  # robust histogram range (percentiles)
_TINY = 1e-12


@dataclass(frozen=True)
class Mixture:
    """Two Gaussian components, the darker first: weights, means and standard deviations."""

    weights: tuple[float, float]
    means: tuple[float, float]
    sds: tuple[float, float]

    @property
    def ashman_d(self) -> float:
        """Ashman's D: separation of the means in units of the pooled spread."""
        spread = np.sqrt(self.sds[0] ** 2 + self.sds[1] ** 2)
        return float(np.sqrt(2.0) * abs(self.means[1] - self.means[0]) / max(spread, _TINY))

    def crossing(self) -> float | None:
        """Where the weighted densities are equal between the two means (None: one
        component dominates everywhere between them)."""
        (w0, w1), (m0, m1), (s0, s1) = self.weights, self.means, self.sds
        if not m1 > m0 or min(w0, w1) <= 0:
            return None
        # Solve w0 N(x; m0, s0) = w1 N(x; m1, s1): a x² + b x + c = 0.
        a = 1.0 / s1**2 - 1.0 / s0**2
        b = 2.0 * (m0 / s0**2 - m1 / s1**2)
        c = m1**2 / s1**2 - m0**2 / s0**2 + 2.0 * np.log((w0 * s1) / (w1 * s0))
        if abs(a) < 1e-9:
            roots = [-c / b] if abs(b) > _TINY else []
        else:
            disc = b * b - 4.0 * a * c
            if disc < 0:
                return None
            r = np.sqrt(disc)
            roots = [(-b - r) / (2 * a), (-b + r) / (2 * a)]
        inside = [float(x) for x in roots if m0 < x < m1]
        return inside[0] if inside else None


@dataclass(frozen=True)
class Split:
    """The outcome of a bimodality test: the threshold when supported (else None), the
    fitted mixture, and why (for provenance)."""

    threshold: float | None
    mixture: Mixture | None
    reason: str
    tiles: int = 0  # sub-tiles that passed (tiled search only)

    @property
    def supported(self) -> bool:
        return self.threshold is not None

    def describe(self) -> dict[str, object]:
        """Plain data for a fit summary."""
        out: dict[str, object] = {"supported": self.supported, "reason": self.reason}
        if self.mixture is not None:
            m = self.mixture
            out.update(
                ashman_d=round(m.ashman_d, 3),
                weights=[round(w, 4) for w in m.weights],
                means=[round(x, 3) for x in m.means],
                sds=[round(x, 3) for x in m.sds],
            )
        if self.tiles:
            out["bimodal_tiles"] = self.tiles
        return out


def _histograms(groups: list[NDArray[np.float64]], bins: int
                ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Counts and bin centres (n, bins) of each group, each over its robust range."""
    counts = np.zeros((len(groups), bins))
    centres = np.zeros((len(groups), bins))
    for i, v in enumerate(groups):
        lo, hi = np.percentile(v, _LIMITS) if v.size else (0.0, 0.0)
        if not hi > lo:
            lo, hi = lo - 0.5, lo + 0.5  # constant: one bin holds everything
        c, edges = np.histogram(v, bins=bins, range=(lo, hi))
        counts[i], centres[i] = c, 0.5 * (edges[:-1] + edges[1:])
    return counts, centres


def fit_mixtures(counts: NDArray[np.float64], centres: NDArray[np.float64], iterations: int = 60
                 ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """EM fits of two Gaussians to each histogram row: weights, means, variances (n, 2),
    the darker component first. Started from Otsu's two classes of the row."""
    n, bins = counts.shape
    total = np.maximum(counts.sum(1, keepdims=True), _TINY)
    p = counts / total
    # Otsu's split of each row as the starting partition.
    w0 = np.cumsum(p, 1)
    mcum = np.cumsum(p * centres, 1)
    mt = mcum[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - mcum) ** 2 / (w0 * (1.0 - w0))
    between[~np.isfinite(between)] = -1.0
    between[:, -1] = -1.0
    k = np.argmax(between, 1)
    lower = np.arange(bins)[None, :] <= k[:, None]
    resp = np.stack([lower, ~lower], 1).astype(np.float64)  # (n, 2, bins)
    width = centres[:, 1] - centres[:, 0]
    min_var = (width**2 / 12.0)[:, None]
    for _ in range(iterations + 1):
        rc = resp * p[:, None, :]
        weight = rc.sum(2)
        mean = (rc * centres[:, None, :]).sum(2) / np.maximum(weight, _TINY)
        var = (rc * (centres[:, None, :] - mean[:, :, None]) ** 2).sum(2) / np.maximum(weight, _TINY)
        var = np.maximum(var, min_var)
        dens = (
            weight[:, :, None]
            / np.sqrt(2 * np.pi * var[:, :, None])
            * np.exp(-((centres[:, None, :] - mean[:, :, None]) ** 2) / (2 * var[:, :, None]))
        )
        resp = dens / np.maximum(dens.sum(1, keepdims=True), 1e-300)
    order = np.argsort(mean, 1)
    take = np.take_along_axis
    return take(weight, order, 1), take(mean, order, 1), take(var, order, 1)


def fit_mixture(values: NDArray[np.floating], bins: int = 128, iterations: int = 60) -> Mixture | None:
    """Two Gaussians fitted to the finite ``values`` (None: fewer than 10 or all equal)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size < 10 or not np.ptp(v) > 0:
        return None
    w, m, var = fit_mixtures(*_histograms([v], bins), iterations)
    return _mixture(w[0], m[0], var[0])


def _mixture(w: NDArray[np.float64], m: NDArray[np.float64], var: NDArray[np.float64]) -> Mixture:
    return Mixture(
        (float(w[0]), float(w[1])),
        (float(m[0]), float(m[1])),
        (float(np.sqrt(var[0])), float(np.sqrt(var[1]))),
    )


def _test(mixture: Mixture | None, min_d: float, min_weight: float, min_gap: float = 0.0) -> Split:
    if mixture is None:
        return Split(None, None, "too few distinct values")
    if mixture.ashman_d < min_d:
        return Split(None, mixture, f"unimodal: Ashman's D {mixture.ashman_d:.2f} < {min_d:g}")
    gap = mixture.means[1] - mixture.means[0]
    if gap < min_gap:
        return Split(None, mixture, f"the means are {gap:.2f} apart < {min_gap:g}")
    if min(mixture.weights) < min_weight:
        return Split(None, mixture, f"one component holds {min(mixture.weights):.1%} < {min_weight:.0%}")
    t = mixture.crossing()
    if t is None:
        return Split(None, mixture, "the components' densities do not cross between their means")
    return Split(t, mixture, "bimodal")


def bimodal_split(values: NDArray[np.floating], min_d: float = 2.0, min_weight: float = 0.02,
                  min_gap: float = 0.0, bins: int = 128) -> Split:  # fmt: skip
    """The threshold between two components of ``values`` when the test supports one."""
    return _test(fit_mixture(values, bins), min_d, min_weight, min_gap)


def tiled_split(
    image: NDArray[np.floating],
    tile: int = 32,
    min_d: float = 2.0,
    min_weight: float = 0.1,
    pooled_min_weight: float = 0.02,
    min_gap: float = 0.0,
    bins: int = 64,
) -> Split:
    """Split-based search: the ``tile`` x ``tile`` sub-tiles of ``image`` (NaN = not
    valid, at least half valid) whose values are bimodal (``min_d``, ``min_weight``) are
    pooled and tested again (``min_d``, ``pooled_min_weight``); its split is the threshold.
    Both tests also ask the means to be ``min_gap`` apart. When the pooled sub-tiles do
    not pass, the whole image is tested (``pooled_min_weight``): edges along the tile grid
    leave no sub-tile bimodal. The rows and columns left over by whole tiles are only
    seen by that test; an image smaller than a tile is tested whole.
    """
    x = np.asarray(image, dtype=np.float64)
    rows, cols = x.shape[0] // tile, x.shape[1] // tile
    if rows == 0 or cols == 0:
        return bimodal_split(x, min_d, pooled_min_weight, min_gap)
    tiles = x[: rows * tile, : cols * tile].reshape(rows, tile, cols, tile).swapaxes(1, 2)
    blocks = tiles.reshape(rows * cols, tile * tile)
    groups = [b[np.isfinite(b)] for b in blocks]
    groups = [g for g in groups if g.size >= tile * tile // 2 and np.ptp(g) > 0]
    if not groups:
        return Split(None, None, "no sub-tile with enough valid values")
    w, m, var = fit_mixtures(*_histograms(groups, bins))
    passed = [
        g
        for i, g in enumerate(groups)
        if _test(_mixture(w[i], m[i], var[i]), min_d, min_weight, min_gap).supported
    ]
    if passed:
        pooled = _test(fit_mixture(np.concatenate(passed)), min_d, pooled_min_weight, min_gap)
        reason = f"{len(passed)} of {len(groups)} sub-tiles bimodal; pooled: {pooled.reason}"
        if pooled.supported:
            return Split(pooled.threshold, pooled.mixture, reason, len(passed))
    else:
        reason = "no bimodal sub-tile"
    # Edges that follow the tile grid leave every sub-tile one-sided: the whole image
    # may still show both populations.
    whole = bimodal_split(x, min_d, pooled_min_weight, min_gap, bins)
    return Split(whole.threshold, whole.mixture, f"{reason}; whole image: {whole.reason}", len(passed))
