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

Implementation: compiled single-pass kernels (:func:`.jit.kernel`, GIL released),
row by row, with a few row buffers as working memory besides the output (a
float32 input is read as it is). Box sums (valid count, sum and sum of squares,
float64) cost O(1) per pixel with the van Herk / Gil-Werman block decomposition,
separably: the sum of ``w`` consecutive values is the suffix sum of one block of
``w`` plus the prefix sum of the next, so no sum is ever subtracted and a value
only reaches the sums of the windows that hold it (no running-sum drift along a
row or down the image, and a bright target does not cost a dark neighbourhood
its precision). The refined Lee half windows are ``window`` row segments each,
differences of compensated row prefix sums: O(window) per pixel, as precise.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .jit import kernel

__all__ = ["local_mean_var", "lee_filter", "refined_lee_filter", "gamma_map_filter"]


def _check(window: int, enl: float) -> None:
    if window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3; got {window!r}")
    if not enl > 0:
        raise ValueError(f"enl (equivalent number of looks) must be > 0; got {enl!r}")


def _image(image: NDArray[np.floating]) -> NDArray[np.floating]:
    """The image as a C-contiguous 2-D float32 or float64 array (no copy when it is one)."""
    x = np.asarray(image)
    if x.dtype != np.float32 and x.dtype != np.float64:
        x = x.astype(np.float64)
    if x.ndim != 2:
        raise ValueError(f"image must be 2-D (rows, cols); got shape {x.shape}")
    return np.ascontiguousarray(x)


# -- box sums, row by row -----------------------------------------------------------------------


@kernel
def _add_row(x: NDArray[np.floating], row: int, acc: NDArray[np.float64], r: int) -> None:
    """``acc[:, r + c] += (1, v, v^2)`` for every finite ``v = x[row, c]``; nothing outside
    the image."""
    if row < 0 or row >= x.shape[0]:
        return
    n, s1, s2 = acc[0], acc[1], acc[2]
    for c in range(x.shape[1]):
        v = float(x[row, c])
        ok = np.isfinite(v)
        v = v if ok else 0.0
        n[r + c] += 1.0 if ok else 0.0
        s1[r + c] += v
        s2[r + c] += v * v


@kernel
def _box_buffers(
    cols: int, window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The buffers of one box-sum stream (see :func:`_box_row`): vertical suffix (w, 3, span)
    and prefix (3, span) sums, horizontal suffix sums (3, span), the result (3, cols); rows of
    ``cols`` values padded with ``r`` zeros on the left and at least ``r`` on the right, to
    ``span``, a whole number of blocks of ``w``."""
    r = window // 2
    span = (cols + 2 * r + window - 1) // window * window
    return np.zeros((window, 3, span)), np.zeros((3, span)), np.zeros((3, span)), np.zeros((3, cols))


@kernel
def _box_row(
    x: NDArray[np.floating],
    i: int,
    r: int,
    suffix: NDArray[np.float64],
    prefix: NDArray[np.float64],
    hsuffix: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Count, sum and sum of squares of the valid pixels of the (2 r + 1)^2 box around every
    pixel of row ``i`` into ``out`` (3, cols). Called for ``i = 0, 1, 2, ...`` in turn with the
    same buffers (:func:`_box_buffers`).

    The sum of ``w = 2 r + 1`` consecutive values is the suffix sum of one block of ``w`` (from
    the first of the values to the end of its block) plus the prefix sum of the next block (from
    that block's start to the last of the values), or one whole block: no subtraction. Down
    the columns, with the image padded by ``r`` empty rows on top, the window of row ``i`` is
    padded rows ``i .. i + w - 1``: the suffix sums of the block holding padded row ``i`` are
    computed once, when ``i`` starts it, and the next block's prefix is accumulated one row per
    call. Then the same along the row.
    """
    w = 2 * r + 1
    span = prefix.shape[1]
    cols = out.shape[1]
    k = i % w
    if k == 0:  # a new block: padded rows i .. i + w - 1 = image rows i - r .. i + r
        suffix[w - 1] = 0.0
        _add_row(x, i + r, suffix[w - 1], r)
        for q in range(w - 2, -1, -1):
            suffix[q] = suffix[q + 1]
            _add_row(x, i + q - r, suffix[q], r)
        prefix[:] = 0.0
    else:  # padded row i + w - 1 = image row i + r is the k-th row of the next block
        _add_row(x, i + r, prefix, r)
        for t in range(3):
            col, pre = suffix[k, t], prefix[t]
            for q in range(span):
                col[q] += pre[q]  # this block's rows from i on, plus the next block's (in place)
    for t in range(3):
        row, suf, res = suffix[k, t], hsuffix[t], out[t]
        for b0 in range(0, span, w):
            acc = 0.0
            for q in range(b0 + w - 1, b0 - 1, -1):
                acc += row[q]
                suf[q] = acc
        for b0 in range(0, span, w):
            acc = 0.0
            for d in range(w):
                acc += row[b0 + d]
                c = b0 + d - w + 1  # the column whose window (padded c .. c + w - 1) ends here
                if 0 <= c < cols:
                    res[c] = suf[c] if d == w - 1 else suf[c] + acc


# -- kernels ------------------------------------------------------------------------------------


@kernel
def _lee_gain(z: float, mean: float, var: float, cu2: float) -> float:
    """Lee's LMMSE estimate ``mean + b (z - mean)``, ``b = var_x / var_z`` clipped to [0, 1]
    (0 where ``var_z`` is not > 0), ``var_x = (var_z - mean^2 Cu^2) / (1 + Cu^2)``."""
    b = 0.0
    if var > 0:
        var_x = (var - mean * mean * cu2) / (1.0 + cu2)
        b = var_x / var
        if b < 0.0:
            b = 0.0
        elif b > 1.0:
            b = 1.0
    return mean + b * (z - mean)


@kernel
def _local_mean_var(
    x: NDArray[np.floating], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    rows, cols = x.shape
    r = window // 2
    mean, var, count = np.empty((rows, cols)), np.empty((rows, cols)), np.empty((rows, cols))
    suffix, prefix, hsuffix, box = _box_buffers(cols, window)
    for i in range(rows):
        _box_row(x, i, r, suffix, prefix, hsuffix, box)
        for c in range(cols):
            n = box[0, c]
            count[i, c] = n
            if n > 0:
                m = box[1, c] / n
                v = box[2, c] / n - m * m
                mean[i, c] = m
                var[i, c] = 0.0 if v < 0.0 else v
            else:
                mean[i, c] = np.nan
                var[i, c] = np.nan
    return mean, var, count


@kernel
def _box_filter(x: NDArray[np.floating], window: int, enl: float, gamma: bool) -> NDArray[np.float32]:
    """Lee (``gamma`` false) or Gamma-MAP filter on a ``window`` box."""
    rows, cols = x.shape
    r = window // 2
    cu2 = 1.0 / enl
    out = np.empty((rows, cols), dtype=np.float32)
    suffix, prefix, hsuffix, box = _box_buffers(cols, window)
    for i in range(rows):
        _box_row(x, i, r, suffix, prefix, hsuffix, box)
        for c in range(cols):
            z = float(x[i, c])
            if not np.isfinite(z):
                out[i, c] = np.nan
                continue
            n = box[0, c]  # >= 1: the centre is valid
            mean = box[1, c] / n
            var = box[2, c] / n - mean * mean
            if var < 0.0:
                var = 0.0
            if not gamma:
                out[i, c] = _lee_gain(z, mean, var, cu2)
                continue
            ci2 = var / (mean * mean)
            if ci2 <= cu2:
                est = mean
            elif ci2 >= 2.0 * cu2:
                est = z
            else:  # also where ci2 is NaN (an all-zero window): NaN, as the array code
                alpha = (1.0 + cu2) / (ci2 - cu2)
                b = alpha - enl - 1.0
                d = mean * mean * b * b + 4.0 * alpha * enl * mean * z
                if d < 0.0:
                    d = 0.0
                est = (b * mean + np.sqrt(d)) / (2.0 * alpha)
            out[i, c] = est if np.isfinite(mean) else np.nan
    return out


def _half_windows(window: int) -> NDArray[np.int64]:
    """The 8 edge-aligned windows of Lee et al. (1999) as (8, window, 2) first and last column
    offsets of each row offset ``-r .. r`` (last < first: row not in the window), in the order
    [left, right, top, bottom, upper-right, lower-left, upper-left, lower-right]: each is the
    half window, centre line included, on one side of a vertical, horizontal, main-diagonal or
    anti-diagonal edge."""
    r = window // 2
    spans = np.empty((8, window, 2), dtype=np.int64)
    for k, d in enumerate(range(-r, r + 1)):
        spans[0, k] = -r, 0
        spans[1, k] = 0, r
        spans[2, k] = (-r, r) if d <= 0 else (0, -1)
        spans[3, k] = (-r, r) if d >= 0 else (0, -1)
        spans[4, k] = d, r  # upper-right triangle (col >= row)
        spans[5, k] = -r, d  # lower-left triangle
        spans[6, k] = -r, -d  # upper-left triangle (col <= -row)
        spans[7, k] = -d, r  # lower-right triangle
    return spans


@kernel
def _row_prefix(x: NDArray[np.floating], row: int, r: int, p: NDArray[np.float64]) -> None:
    """Prefix sums of (1, v, v^2) over the valid pixels of image row ``row`` padded with ``r``
    empty columns each side: ``p[q]`` (cols + 2 r + 1, 5) holds the count, sum and sum of squares
    of padded columns ``0 .. q - 1`` as (count, sum, its error, square sum, its error), the
    errors compensated (TwoSum), so that the difference of two prefixes is the sum of the
    segment between them to float64 precision however large the values before it."""
    cols = x.shape[1]
    n, h1, e1, h2, e2 = 0.0, 0.0, 0.0, 0.0, 0.0
    for q in range(cols + 2 * r):
        c = q - r
        v = float(x[row, c]) if 0 <= c < cols else 0.0
        ok = 0 <= c < cols and np.isfinite(v)
        v = v if ok else 0.0
        n += 1.0 if ok else 0.0
        t = h1 + v
        b = t - h1
        e1 += (h1 - (t - b)) + (v - b)
        h1 = t
        v = v * v
        t = h2 + v
        b = t - h2
        e2 += (h2 - (t - b)) + (v - b)
        h2 = t
        p[q + 1, 0] = n
        p[q + 1, 1] = h1
        p[q + 1, 2] = e1
        p[q + 1, 3] = h2
        p[q + 1, 4] = e2


@kernel
def _refined_lee(
    x: NDArray[np.floating], window: int, s: int, enl: float, spans: NDArray[np.int64]
) -> NDArray[np.float32]:
    rows, cols = x.shape
    r = window // 2
    step = s - 1
    cu2 = 1.0 / enl
    out = np.empty((rows, cols), dtype=np.float32)
    # Sub-window (s x s) means of rows i - step .. i + step, a ring of 2 step + 1 rows; 0 where
    # a sub-window has no valid pixel.
    ring = 2 * step + 1
    sub = np.zeros((ring, cols + 2 * step))
    suffix, prefix, hsuffix, box = _box_buffers(cols, s)
    done = 0  # sub-window mean rows computed so far
    # Row prefix sums (_row_prefix) of rows i - r .. i + r, a ring of ``window`` rows, and one
    # zero row (slot ``window``) for rows off the image.
    pref = np.zeros((window + 1, cols + 2 * r + 1, 5))
    slot = np.empty(window, dtype=np.int64)
    for i in range(rows):
        while done < rows and done <= i + step:
            _box_row(x, done, s // 2, suffix, prefix, hsuffix, box)
            line = sub[done % ring]
            for c in range(cols):
                mc = box[1, c] / box[0, c] if box[0, c] > 0 else 0.0
                line[step + c] = mc if np.isfinite(mc) else 0.0
            for c in range(step):  # edge values beyond the first and last columns
                line[c] = line[step]
                line[step + cols + c] = line[step + cols - 1]
            done += 1
        for row in range(i + r if i > 0 else 0, min(i + r + 1, rows)):  # new rows of the ring
            _row_prefix(x, row, r, pref[row % window])
        for d in range(-r, r + 1):
            slot[d + r] = (i + d) % window if 0 <= i + d < rows else window
        top = sub[max(i - step, 0) % ring]
        mid = sub[i % ring]
        bot = sub[min(i + step, rows - 1) % ring]
        for j in range(cols):
            z = float(x[i, j])
            if not np.isfinite(z):
                out[i, j] = np.nan
                continue
            jc = j + step
            m00, m01, m02 = top[jc - step], top[jc], top[jc + step]
            m10, m11, m12 = mid[jc - step], mid[jc], mid[jc + step]
            m20, m21, m22 = bot[jc - step], bot[jc], bot[jc + step]
            g_h = abs((m02 + m12 + m22) - (m00 + m10 + m20))  # vertical edge
            g_v = abs((m20 + m21 + m22) - (m00 + m01 + m02))
            g_d1 = abs((m01 + m02 + m12) - (m10 + m20 + m21))
            g_d2 = abs((m00 + m01 + m10) - (m12 + m21 + m22))
            # The first strongest gradient, and whether the centre is closer to the first side.
            orient, g = 0, g_h
            first = abs(m10 - m11) <= abs(m12 - m11)  # left vs right
            if g_v > g:
                orient, g = 1, g_v
                first = abs(m01 - m11) <= abs(m21 - m11)  # top vs bottom
            if g_d1 > g:
                orient, g = 2, g_d1
                first = abs(m02 - m11) <= abs(m20 - m11)  # upper-right vs lower-left
            if g_d2 > g:
                orient = 3
                first = abs(m00 - m11) <= abs(m22 - m11)  # upper-left vs lower-right
            # The valid pixels of the chosen half window: one row segment per row offset.
            half = spans[2 * orient + (0 if first else 1)]
            n, s1, s2 = 0.0, 0.0, 0.0
            for k in range(window):
                p = pref[slot[k]]
                a, b = j + r + half[k, 0], j + r + half[k, 1] + 1
                n += p[b, 0] - p[a, 0]
                s1 += (p[b, 1] - p[a, 1]) + (p[b, 2] - p[a, 2])
                s2 += (p[b, 3] - p[a, 3]) + (p[b, 4] - p[a, 4])
            mean = s1 / n
            var = s2 / n - mean * mean
            if var < 0.0:
                var = 0.0
            out[i, j] = _lee_gain(z, mean, var, cu2)
    return out


# -- public API ---------------------------------------------------------------------------------


def local_mean_var(
    image: NDArray[np.floating], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """NaN-aware local mean, population variance and valid-pixel count on a square window.

    Border and nodata (NaN, inf) pixels are left out of each window: float64 sums over
    the valid pixels divided by their number; mean and variance are NaN where a window
    has no valid pixel (count 0).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be an odd positive integer; got {window!r}")
    return _local_mean_var(_image(image), window)


def lee_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Lee (1981) adaptive filter on a ``window`` x ``window`` box.

    ``x = m + b (z - m)`` with the local mean ``m`` and ``b = var_x / var_z``,
    ``var_x = (var_z - m^2 Cu^2) / (1 + Cu^2)``, ``Cu^2 = 1 / enl``.
    """
    _check(window, enl)
    return _box_filter(_image(image), window, float(enl), False)


def refined_lee_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Refined Lee filter (Lee, Grunes & de Grandi 1999).

    The window (7x7 by default; any odd size ``3 s - 2`` with odd ``s``: 7, 13,
    19) is split into 3x3 sub-windows of ``s`` x ``s`` pixels whose means give
    four gradients (horizontal, vertical, two diagonals). The strongest gradient
    picks the edge orientation; the side whose sub-window mean is closer to the
    centre sub-window picks one of 8 edge-aligned half windows, on which the
    local mean and variance of Lee's estimator are computed. Sub-window means
    beyond the image border are those of the border pixels; a sub-window without
    a valid pixel has mean 0.
    """
    _check(window, enl)
    s = (window + 2) // 3
    if 3 * s - 2 != window or s % 2 == 0:
        raise ValueError(f"refined Lee needs a window of 7, 13, 19, ... (3 s - 2 with s odd); got {window}")
    return _refined_lee(_image(image), window, s, float(enl), _half_windows(window))


def gamma_map_filter(image: NDArray[np.floating], window: int = 7, enl: float = 1.0) -> NDArray[np.float32]:
    """Gamma-MAP filter (Lopes, Touzi & Nezry 1990).

    With ``Ci`` the local variation coefficient, ``Cu = 1/sqrt(L)`` and
    ``Cmax = sqrt(2) Cu``: homogeneous (``Ci <= Cu``) pixels get the local mean,
    point targets (``Ci >= Cmax``) keep their value, others get the MAP
    estimate ``(B m + sqrt(B^2 m^2 + 4 a L m z)) / (2 a)``, with
    ``a = (1 + Cu^2) / (Ci^2 - Cu^2)`` and ``B = a - L - 1``.
    """
    _check(window, enl)
    return _box_filter(_image(image), window, float(enl), True)
