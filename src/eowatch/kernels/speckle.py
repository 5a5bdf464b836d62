"""Adaptive speckle filters for SAR intensity images.

All filters take linear power intensity (float, NaN = nodata), a square window
size and the equivalent number of looks ``enl`` of the input, and return a
float32 image of the same shape; NaN stays NaN and is ignored in every window
(windows near the image border or nodata use only their valid pixels, so
chunked processing with a ``window // 2`` overlap gives seamless results).

* :func:`lee_filter` - Lee (1980, 1981) local linear minimum-mean-square-error
  filter on a square window.
* :func:`refined_lee_filter` - Lee, Grunes & de Grandi (1999, IEEE TGRS 37(5)):
  the same estimator on the one of 8 edge-aligned half windows (7x7 default)
  chosen from the gradients of 3x3 sub-window means.
* :func:`gamma_map_filter` - Gamma maximum a posteriori filter (Lopes, Touzi &
  Nezry 1990, IEEE TGRS 28(6); Lopes et al. 1990 IJRS) with the usual
  homogeneous / heterogeneous / point-target thresholds on the variation
  coefficient.

Under fully developed speckle an intensity with ``L`` looks has a noise
variation coefficient ``Cu = 1 / sqrt(L)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = ["local_mean_var", "lee_filter", "refined_lee_filter", "gamma_map_filter"]


def _check(window: int, enl: float) -> None:
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3; got {window!r}")
    if not enl > 0:
        raise ValueError(f"enl (equivalent number of looks) must be > 0; got {enl!r}")


def _prepare(image: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Image as float64 with NaN (and inf) set to 0, and the 0/1 validity weight."""
    x = np.asarray(image, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, cols); got shape {x.shape}")
    ok = np.isfinite(x)
    return np.where(ok, x, 0.0), ok.astype(np.float64)


def _row_segments(window: int) -> list[list[tuple[int, int, int]]]:
    """The 8 edge-aligned windows of Lee et al. (1999) as (row offset, first col,
    last col) segments, in the order [left, right, top, bottom, upper-right,
    lower-left, upper-left, lower-right]: each is the half window, centre line
    included, on one side of a vertical, horizontal, main-diagonal or
    anti-diagonal edge."""
    r = window // 2
    rows = range(-r, r + 1)
    return [
        [(d, -r, 0) for d in rows],
        [(d, 0, r) for d in rows],
        [(d, -r, r) for d in rows if d <= 0],
        [(d, -r, r) for d in rows if d >= 0],
        [(d, d, r) for d in rows],  # upper-right triangle (col >= row)
        [(d, -r, d) for d in rows],  # lower-left triangle
        [(d, -r, -d) for d in rows],  # upper-left triangle (col <= -row)
        [(d, -d, r) for d in rows],  # lower-right triangle
    ]


def _masked_sums(a: NDArray[np.float64], segments: list[tuple[int, int, int]], r: int) -> NDArray[np.float64]:
    """Sum of ``a`` over a window given as row segments (zero outside the image),
    from horizontal prefix sums: a few array additions per window row."""
    rows, cols = a.shape
    padded = np.pad(a, r)
    prefix = np.zeros((rows + 2 * r, cols + 2 * r + 1))
    np.cumsum(padded, axis=1, out=prefix[:, 1:])
    out = np.zeros_like(a)
    for d, c0, c1 in segments:
        rs = slice(r + d, r + d + rows)
        out += prefix[rs, r + c1 + 1 : r + c1 + 1 + cols] - prefix[rs, r + c0 : r + c0 + cols]
    return out


def local_mean_var(
    image: NDArray[np.floating], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """NaN-aware local mean, population variance and valid-pixel count on a square window.

    Border and nodata pixels are left out of each window (zero-padded sums
    divided by the number of valid pixels), computed with
    ``scipy.ndimage.uniform_filter``.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd positive integer; got {window!r}")
    x, w = _prepare(image)
    area = float(window * window)
    n = ndimage.uniform_filter(w, window, mode="constant", cval=0.0) * area
    s1 = ndimage.uniform_filter(x, window, mode="constant", cval=0.0) * area
    s2 = ndimage.uniform_filter(x * x, window, mode="constant", cval=0.0) * area
    n = np.rint(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(n > 0, s1 / n, np.nan)
        var = np.where(n > 0, np.maximum(s2 / n - mean * mean, 0.0), np.nan)
    return mean, var, n


def _lee_estimate(
    z: NDArray[np.float64], mean: NDArray[np.float64], var: NDArray[np.float64], enl: float
) -> NDArray[np.float64]:
    """Lee's LMMSE estimate x = mean + b (z - mean), b = var_x / var_z (clipped to [0, 1])."""
    cu2 = 1.0 / enl
    with np.errstate(divide="ignore", invalid="ignore"):
        var_x = (var - mean * mean * cu2) / (1.0 + cu2)
        b = np.clip(var_x / var, 0.0, 1.0)
    b = np.where(var > 0, b, 0.0)
    return mean + b * (z - mean)


def lee_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Lee (1981) adaptive filter on a ``window`` x ``window`` box.

    ``x = m + b (z - m)`` with the local mean ``m`` and ``b = var_x / var_z``,
    ``var_x = (var_z - m^2 Cu^2) / (1 + Cu^2)``, ``Cu^2 = 1 / enl``.
    """
    _check(window, enl)
    z = np.asarray(image, dtype=np.float64)
    mean, var, _ = local_mean_var(z, window)
    out = _lee_estimate(z, mean, var, enl)
    return np.where(np.isfinite(z), out, np.nan).astype(np.float32)


def refined_lee_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Refined Lee filter (Lee, Grunes & de Grandi 1999), fully vectorised.

    The window (7x7 by default; any odd size ``3 s - 2`` with odd ``s``: 7, 13,
    19) is split into 3x3 sub-windows of ``s`` x ``s`` pixels whose means give
    four gradients (horizontal, vertical, two diagonals). The strongest gradient
    picks the edge orientation; the side whose sub-window mean is closer to the
    centre sub-window picks one of 8 edge-aligned half windows, on which the
    local mean and variance of Lee's estimator are computed.
    """
    _check(window, enl)
    s = (window + 2) // 3
    if 3 * s - 2 != window or s % 2 == 0:
        raise ValueError(f"refined Lee needs a window of 7, 13, 19, ... (3 s - 2 with s odd); got {window}")
    z = np.asarray(image, dtype=np.float64)
    x, w = _prepare(z)
    # Sub-window means, shifted to the 3x3 grid positions around each pixel.
    sub_mean, _, _ = local_mean_var(z, s)
    sub_mean = np.where(np.isfinite(sub_mean), sub_mean, 0.0)
    step = s - 1
    pad = np.pad(sub_mean, step, mode="edge")
    rows, cols = z.shape

    def sub(i: int, j: int) -> NDArray[np.float64]:
        return pad[step + i * step : step + i * step + rows, step + j * step : step + j * step + cols]

    m = {(i, j): sub(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    g_h = np.abs(
        (m[(-1, 1)] + m[(0, 1)] + m[(1, 1)]) - (m[(-1, -1)] + m[(0, -1)] + m[(1, -1)])
    )  # vertical edge
    g_v = np.abs((m[(1, -1)] + m[(1, 0)] + m[(1, 1)]) - (m[(-1, -1)] + m[(-1, 0)] + m[(-1, 1)]))
    g_d1 = np.abs((m[(-1, 0)] + m[(-1, 1)] + m[(0, 1)]) - (m[(0, -1)] + m[(1, -1)] + m[(1, 0)]))
    g_d2 = np.abs((m[(-1, -1)] + m[(-1, 0)] + m[(0, -1)]) - (m[(0, 1)] + m[(1, 0)] + m[(1, 1)]))
    orient = np.argmax(np.stack([g_h, g_v, g_d1, g_d2]), axis=0)
    c = m[(0, 0)]
    # For each orientation: is the centre closer to the first side than the second?
    first_side = np.select(
        [orient == 0, orient == 1, orient == 2],
        [
            np.abs(m[(0, -1)] - c) <= np.abs(m[(0, 1)] - c),  # left vs right
            np.abs(m[(-1, 0)] - c) <= np.abs(m[(1, 0)] - c),  # top vs bottom
            np.abs(m[(-1, 1)] - c) <= np.abs(m[(1, -1)] - c),  # upper-right vs lower-left
        ],
        np.abs(m[(-1, -1)] - c) <= np.abs(m[(1, 1)] - c),  # upper-left vs lower-right
    )
    choice = 2 * orient + np.where(first_side, 0, 1)
    mean = np.empty_like(z)
    var = np.empty_like(z)
    r = window // 2
    for k, segments in enumerate(_row_segments(window)):
        sel = choice == k
        if not sel.any():
            continue
        n = _masked_sums(w, segments, r)[sel]
        s1 = _masked_sums(x, segments, r)[sel]
        s2 = _masked_sums(x * x, segments, r)[sel]
        with np.errstate(divide="ignore", invalid="ignore"):
            mk = s1 / n
            mean[sel] = mk
            var[sel] = np.maximum(s2 / n - mk * mk, 0.0)
    out = _lee_estimate(z, mean, var, enl)
    return np.where(np.isfinite(z), out, np.nan).astype(np.float32)


def gamma_map_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Gamma-MAP filter (Lopes, Touzi & Nezry 1990).

    With ``Ci`` the local variation coefficient, ``Cu = 1/sqrt(L)`` and
    ``Cmax = sqrt(2) Cu``: homogeneous (``Ci <= Cu``) pixels get the local mean,
    point targets (``Ci >= Cmax``) keep their value, others get the MAP
    estimate ``(B m + sqrt(B^2 m^2 + 4 a L m z)) / (2 a)``, with
    ``a = (1 + Cu^2) / (Ci^2 - Cu^2)`` and ``B = a - L - 1``.
    """
    _check(window, enl)
    z = np.asarray(image, dtype=np.float64)
    mean, var, _ = local_mean_var(z, window)
    cu2 = 1.0 / enl
    with np.errstate(divide="ignore", invalid="ignore"):
        ci2 = var / (mean * mean)
        alpha = (1.0 + cu2) / (ci2 - cu2)
        b = alpha - enl - 1.0
        d = mean * mean * b * b + 4.0 * alpha * enl * mean * z
        est = (b * mean + np.sqrt(np.maximum(d, 0.0))) / (2.0 * alpha)
    out = np.where(ci2 <= cu2, mean, np.where(ci2 >= 2.0 * cu2, z, est))
    out = np.where(np.isfinite(z) & np.isfinite(mean), out, np.nan)
    return out.astype(np.float32)
