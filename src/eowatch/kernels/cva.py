"""Change vector analysis (CVA; Malila 1980, Johnson & Kasischke 1998).

The change vector of a pixel is ``d = after - before`` over its bands. Its
Euclidean length (the magnitude) measures how much changed; its direction says
how. With two features the direction is the polar angle of ``d`` in degrees
(0..360, counter-clockwise from the first feature's axis). With many bands
the direction is summarised, following the "spectral angle" form of CVA
(Carvalho Júnior et al. 2011), as the angle between ``d`` and a reference
direction (by default the all-ones vector, i.e. uniform brightening, so
0 deg = brighter in every band, 180 deg = darker in every band) plus the
per-band sign of ``d``.

Inputs are float arrays shaped (bands, rows, cols); outputs are float32 and
NaN where ``valid`` is false or any band is NaN.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "change_vector",
    "cva_magnitude",
    "cva_polar_angle",
    "cva_reference_angle",
    "cva_sign",
    "standardize_difference",
]


def _check(before: NDArray[np.floating], after: NDArray[np.floating]) -> None:
    if before.shape != after.shape or before.ndim != 3:
        raise ValueError(
            f"before and after must both be (bands, rows, cols) of the same shape; got {before.shape} "
            f"and {after.shape}"
        )


def change_vector(
    before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None = None
) -> NDArray[np.float32]:
    """``after - before`` per band, float32 (bands, rows, cols), NaN where invalid."""
    b = np.asarray(before, dtype=np.float32)
    a = np.asarray(after, dtype=np.float32)
    _check(b, a)
    d = a - b
    if valid is not None:
        d[:, ~np.asarray(valid, dtype=bool)] = np.nan
    return d


def standardize_difference(
    diff: NDArray[np.floating], valid: NDArray[np.bool_] | None = None, scale: ArrayLike | None = None
) -> tuple[NDArray[np.float32], NDArray[np.float64]]:
    """Divide each band of a difference by a robust spread, so every band weighs alike.

    The spread is 1.4826 x the median absolute deviation from the median (an
    estimate of the standard deviation robust to the changed minority) unless
    ``scale`` (one value per band) is given. Returns (standardised, scale).
    """
    d = np.asarray(diff, dtype=np.float32)
    if scale is None:
        mask = np.all(np.isfinite(d), axis=0)
        if valid is not None:
            mask &= np.asarray(valid, dtype=bool)
        sample = d[:, mask].astype(np.float64)
        if sample.shape[1] == 0:
            raise ValueError("no valid pixel to estimate the spread of the difference from")
        med = np.median(sample, axis=1, keepdims=True)
        s = 1.4826 * np.median(np.abs(sample - med), axis=1)
        s = np.where(s > 0, s, np.maximum(sample.std(axis=1), 1e-12))
    else:
        s = np.asarray(scale, dtype=np.float64).reshape(-1)
        if s.shape[0] != d.shape[0] or np.any(s <= 0):
            raise ValueError(f"scale must hold {d.shape[0]} positive values; got {s}")
    return (d / s[:, None, None].astype(np.float32)).astype(np.float32), s


def cva_magnitude(
    before: ArrayLike,
    after: ArrayLike,
    valid: NDArray[np.bool_] | None = None,
    weights: ArrayLike | None = None,
) -> NDArray[np.float32]:
    """Euclidean length of the change vector, sqrt(sum_b w_b (after_b - before_b)^2).

    ``weights`` (one per band, default 1) lets bands be scaled, e.g. by
    1 / spread^2 to standardise them.
    """
    d = change_vector(before, after, valid).astype(np.float64)
    if weights is None:
        sq = np.einsum("brc,brc->rc", d, d)
    else:
        w = np.asarray(weights, dtype=np.float64).reshape(-1)
        if w.shape[0] != d.shape[0]:
            raise ValueError(f"weights must hold one value per band ({d.shape[0]}); got {w.shape[0]}")
        sq = np.einsum("b,brc,brc->rc", w, d, d)
    return np.asarray(np.sqrt(sq), dtype=np.float32)


def cva_polar_angle(
    before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None = None
) -> NDArray[np.float32]:
    """Direction of a two-feature change vector in degrees, 0..360.

    0 deg = increase of feature 0 only, 90 deg = increase of feature 1 only.
    NaN where the vector is zero or invalid.
    """
    d = change_vector(before, after, valid)
    if d.shape[0] != 2:
        raise ValueError(f"the polar angle needs exactly 2 features; got {d.shape[0]}")
    ang = np.degrees(np.arctan2(d[1].astype(np.float64), d[0].astype(np.float64))) % 360.0
    ang[(d[0] == 0) & (d[1] == 0)] = np.nan
    return np.asarray(ang, dtype=np.float32)


def cva_reference_angle(
    before: ArrayLike,
    after: ArrayLike,
    valid: NDArray[np.bool_] | None = None,
    reference: ArrayLike | None = None,
) -> NDArray[np.float32]:
    """Angle in degrees (0..180) between the change vector and a reference direction.

    ``reference`` has one value per band; the default all-ones vector makes
    0 deg = uniformly brighter and 180 deg = uniformly darker. NaN where the
    change vector is zero or invalid.
    """
    d = change_vector(before, after, valid).astype(np.float64)
    nb = d.shape[0]
    r = np.ones(nb) if reference is None else np.asarray(reference, dtype=np.float64).reshape(-1)
    if r.shape[0] != nb or not np.any(r != 0):
        raise ValueError(f"reference must hold {nb} values, not all zero; got {r}")
    r = r / np.linalg.norm(r)
    norm = np.sqrt(np.einsum("brc,brc->rc", d, d))
    dot = np.einsum("b,brc->rc", r, d)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.clip(dot / norm, -1.0, 1.0)
    ang = np.degrees(np.arccos(cos))
    ang[norm == 0] = np.nan
    return np.asarray(ang, dtype=np.float32)


def cva_sign(before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None = None) -> NDArray[np.int8]:
    """Per-band sign of the change vector, int8 (bands, rows, cols): -1, 0, +1 (0 where invalid)."""
    d = change_vector(before, after, valid)
    s = np.sign(d)
    s[~np.isfinite(s)] = 0
    return s.astype(np.int8)
