"""Sentinel-1 backscatter helpers: units, ENL, log-ratio and classic change rules.

Backscatter is linear power intensity (float32, NaN = nodata) unless a name
says ``_db``. Change direction codes are uint8: :data:`NO_CHANGE` (0),
:data:`INCREASE` (1), :data:`DECREASE` (2) and :data:`NODATA` (255, the same
value as ``eowatch.model.NO_DATA_CLASS``).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .speckle import local_mean_var

__all__ = [
    "NO_CHANGE",
    "INCREASE",
    "DECREASE",
    "NODATA",
    "to_db",
    "from_db",
    "looks_like_db",
    "estimate_enl",
    "log_ratio",
    "direction_codes",
    "bright_target_change",
    "acd_composite",
]

NO_CHANGE = 0
INCREASE = 1
DECREASE = 2
NODATA = 255


def to_db(intensity: NDArray[np.floating], floor_db: float = -50.0) -> NDArray[np.float32]:
    """``10 log10(intensity)``; zero/negative power becomes ``floor_db``, NaN stays NaN.

    Values below ``floor_db`` are raised to it, so that noise-floor zeros do
    not become ``-inf``.
    """
    x = np.asarray(intensity, dtype=np.float64)
    floor_lin = 10.0 ** (floor_db / 10.0)
    with np.errstate(invalid="ignore"):
        out = 10.0 * np.log10(np.maximum(x, floor_lin))
    return np.where(np.isnan(x), np.nan, out).astype(np.float32)


def from_db(values_db: NDArray[np.floating], floor_db: float | None = None) -> NDArray[np.float32]:
    """``10 ** (dB / 10)``; values below ``floor_db`` (if given) are raised to it first."""
    x = np.asarray(values_db, dtype=np.float64)
    if floor_db is not None:
        x = np.where(np.isnan(x), np.nan, np.maximum(x, floor_db))
    return (10.0 ** (x / 10.0)).astype(np.float32)


def looks_like_db(values: NDArray[np.floating]) -> bool:
    """Guess whether backscatter values are in dB (True) or linear power (False).

    dB backscatter is mostly negative with most values within about -40..+10
    dB; linear power is never negative (apart from rare noise-corrected
    samples) and has a median far below 1. The rule: dB when more than 5 % of
    the finite values are negative, or when the median is above 1 (linear
    sigma0/gamma0 medians are ~0.01-0.2). All-NaN input returns False.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return False
    if float(np.mean(v < 0)) > 0.05:
        return True
    return bool(float(np.median(v)) > 1.0)


def estimate_enl(
    intensity: NDArray[np.floating], window: int = 7, homogeneous_fraction: float = 0.1
) -> float:
    """Equivalent number of looks estimated from the image itself.

    The local ENL ``mean^2 / var`` (unbiased variance) is computed on
    non-overlapping ``window`` x ``window`` blocks with all pixels valid. Texture
    and edges only lower the local ENL, so the most homogeneous blocks carry the
    speckle statistics; but picking the top-ENL blocks on the same noisy
    estimate biases upward. We therefore rank blocks by a *different*
    homogeneity measure - the relative spread (std / mean) of the block means in
    the 3x3 neighbourhood of blocks - and return the median local ENL of the
    ``homogeneous_fraction`` (10 %) of blocks whose neighbourhood varies least
    (block means are nearly speckle-free, so the selection is almost
    independent of each block's own ENL estimate). Simulated Gamma speckle over
    piecewise-constant and textured fields gives the true ENL within ~5 %.
    Spatially correlated speckle (real GRD) lowers the estimate, as it should.

    Returns NaN when fewer than 10 usable blocks exist.
    """
    if window < 3:
        raise ValueError(f"window must be >= 3; got {window!r}")
    if not 0.0 < homogeneous_fraction <= 1.0:
        raise ValueError(f"homogeneous_fraction must be in (0, 1]; got {homogeneous_fraction!r}")
    x = np.asarray(intensity, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"intensity must be 2-D; got shape {x.shape}")
    rb, cb = x.shape[0] // window, x.shape[1] // window
    if rb < 3 or cb < 3:
        return float("nan")
    tiles = x[: rb * window, : cb * window].reshape(rb, window, cb, window).swapaxes(1, 2)
    blocks = tiles.reshape(rb, cb, window * window)
    ok = np.all(np.isfinite(blocks) & (blocks > 0), axis=2)
    bm = np.where(ok, blocks.mean(axis=2), np.nan)
    bv = np.where(ok, blocks.var(axis=2, ddof=1), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        local_enl = bm * bm / bv
    # Homogeneity of each block's neighbourhood: relative spread of the 3x3 block means.
    nm, nv, nn = local_mean_var(bm, 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt(nv) / nm
    use = ok & np.isfinite(local_enl) & np.isfinite(spread) & (nn >= 9)
    if int(use.sum()) < 10:
        return float("nan")
    sp = spread[use]
    cut = np.quantile(sp, homogeneous_fraction)
    return float(np.median(local_enl[use][sp <= cut]))


def log_ratio(before: NDArray[np.floating], after: NDArray[np.floating]) -> NDArray[np.float32]:
    """Log-ratio change in dB, ``10 log10(after / before)`` of linear intensities.

    NaN where either date is NaN or not positive.
    """
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    ok = (b > 0) & (a > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 10.0 * (np.log10(np.where(ok, a, 1.0)) - np.log10(np.where(ok, b, 1.0)))
    return np.where(ok, out, np.nan).astype(np.float32)


def direction_codes(
    change: NDArray[np.floating], changed: NDArray[np.bool_], valid: NDArray[np.bool_] | None = None
) -> NDArray[np.uint8]:
    """Direction codes from a signed change and a change mask.

    :data:`INCREASE` where ``changed`` and ``change > 0``, :data:`DECREASE` where
    ``changed`` and ``change < 0``, :data:`NO_CHANGE` elsewhere and
    :data:`NODATA` where ``valid`` is false or ``change`` is NaN.
    """
    c = np.asarray(change, dtype=np.float64)
    ok = np.isfinite(c)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    ch = np.asarray(changed, dtype=bool)
    out = np.full(c.shape, NO_CHANGE, dtype=np.uint8)
    out[ch & (c > 0)] = INCREASE
    out[ch & (c < 0)] = DECREASE
    out[~ok] = NODATA
    return out


def bright_target_change(
    before_db: NDArray[np.floating],
    after_db: NDArray[np.floating],
    min_change_db: float = 10.0,
    bright_db: float = -13.0,
    floor_db: float = -40.0,
) -> NDArray[np.uint8]:
    """Classic bright-target (appearing/disappearing object) change rule.

    Change where ``|after - before| > min_change_db`` dB, the brighter of the two
    dates is above ``bright_db`` and both are above ``floor_db`` (to skip noise
    floor and shadow). Returns direction codes (:data:`INCREASE` = target
    appeared, :data:`DECREASE` = disappeared, :data:`NODATA` where either is NaN).
    """
    b = np.asarray(before_db, dtype=np.float64)
    a = np.asarray(after_db, dtype=np.float64)
    valid = np.isfinite(b) & np.isfinite(a)
    with np.errstate(invalid="ignore"):
        d = a - b
        changed = (np.abs(d) > min_change_db) & (np.fmax(a, b) > bright_db) & (np.fmin(a, b) > floor_db)
    return direction_codes(d, changed & valid, valid)


def acd_composite(
    before_db: NDArray[np.floating], after_db: NDArray[np.floating], vmin: float = -25.0, vmax: float = 0.0
) -> NDArray[np.uint8]:
    """Amplitude change detection (ACD) RGB composite, uint8 ``(3, rows, cols)``.

    Red = before, green = blue = after, each scaled linearly from
    ``[vmin, vmax]`` dB to 0..255 (clipped). Decreases show red, increases cyan,
    no change grey. NaN becomes 0.
    """
    if not vmax > vmin:
        raise ValueError(f"vmax must be greater than vmin; got vmin={vmin}, vmax={vmax}")

    def scale(x: NDArray[np.floating]) -> NDArray[np.uint8]:
        v = (np.asarray(x, dtype=np.float64) - vmin) / (vmax - vmin)
        v = np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0)
        return np.rint(v * 255.0).astype(np.uint8)

    r = scale(before_db)
    g = scale(after_db)
    if r.shape != g.shape:
        raise ValueError(f"before and after must have the same shape; got {r.shape} and {g.shape}")
    return np.stack([r, g, g.copy()])
