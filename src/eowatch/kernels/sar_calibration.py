"""Radiometry and resampling of Sentinel-1 GRD images in radar geometry.

* :func:`interpolate_lut`: a calibration or noise LUT given as vectors on annotated lines
  (each vector with its own pixel positions) at every (row, col) of a window: linear
  along pixels within each vector, then linear between the two vectors around each line,
  as the product specification defines (S1-RS-MDA-52-7441 sec. 6.5; ESA "Radiometric
  Calibration of S-1 Level-1 Products", 2015); clamped beyond the first and last vector.
* :func:`calibrate`: ``(DN^2 - noise) / A^2`` (ESA thermal noise removal, 2017), DN = 0
  (the swath border the processor zeroed) as NaN, negative power (noise over-removed
  where the scene is darker than the noise floor) as 0.
* :func:`multilook`: the mean of f x f radar pixels, NaN wherever one of them is NaN.
* :func:`sample_bilinear`: an image at fractional (line, pixel) positions, NaN where any
  of the four neighbours is NaN or outside (no bright or dark frame from blending the
  border with no data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from .jit import kernel

__all__ = ["interpolate_lut", "upsample_lattice", "calibrate", "multilook", "sample_bilinear"]


def interpolate_lut(
    lines: NDArray[np.float64],
    pixels: Sequence[NDArray[np.float64]],
    values: Sequence[NDArray[np.float64]],
    rows: NDArray[np.float64],
    cols: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The LUT at every (row, col) of the window ``rows`` x ``cols`` (1-D image coordinates)."""
    j = np.clip(np.searchsorted(lines, rows, side="right") - 1, 0, max(len(lines) - 2, 0))
    if len(lines) == 1:
        return np.broadcast_to(np.interp(cols, pixels[0], values[0]), (rows.size, cols.size)).copy()
    first, last = int(j.min()), int(j.max()) + 1
    along = np.stack([np.interp(cols, pixels[k], values[k]) for k in range(first, last + 1)])
    w = np.clip((rows - lines[j]) / (lines[j + 1] - lines[j]), 0.0, 1.0)
    return _between_vectors(along, (j - first).astype(np.int64), w)


@kernel
def _between_vectors(
    along: NDArray[np.float64], j: NDArray[np.int64], w: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Row r: ``along[j[r]]`` and ``along[j[r] + 1]`` mixed by ``w[r]`` (linear in line)."""
    out = np.empty((j.size, along.shape[1]))
    for r in range(j.size):
        lo, hi, wr = along[j[r]], along[j[r] + 1], w[r]
        for c in range(along.shape[1]):
            out[r, c] = lo[c] + wr * (hi[c] - lo[c])
    return out


@kernel
def upsample_lattice(
    values: NDArray[np.float64], rows: NDArray[np.float64], cols: NDArray[np.float64], height: int, width: int
) -> NDArray[np.float64]:
    """Bilinear interpolation onto every pixel of a ``height`` x ``width`` block of
    ``values`` given on the lattice ``rows`` x ``cols`` (increasing pixel indices spanning
    the block)."""
    out = np.empty((height, width))
    jc = np.empty(width, dtype=np.int64)
    wc = np.empty(width)
    k = 0
    for c in range(width):
        while k < cols.size - 2 and cols[k + 1] <= c:
            k += 1
        jc[c] = k
        wc[c] = (c - cols[k]) / (cols[k + 1] - cols[k]) if cols.size > 1 else 0.0
    k = 0
    for r in range(height):
        while k < rows.size - 2 and rows[k + 1] <= r:
            k += 1
        k1 = min(k + 1, rows.size - 1)
        wr = (r - rows[k]) / (rows[k1] - rows[k]) if k1 > k else 0.0
        for c in range(width):
            a, c1 = jc[c], min(jc[c] + 1, cols.size - 1)
            top = values[k, a] + wc[c] * (values[k, c1] - values[k, a])
            bottom = values[k1, a] + wc[c] * (values[k1, c1] - values[k1, a])
            out[r, c] = top + wr * (bottom - top)
    return out


@kernel
def calibrate(
    dn: NDArray[np.uint16], lut: NDArray[np.float64], noise: NDArray[np.float64]
) -> NDArray[np.float32]:
    """Calibrated power ``(DN^2 - noise) / lut^2`` (float32), NaN where DN is 0."""
    out = np.empty(dn.shape, dtype=np.float32)
    for r in range(dn.shape[0]):
        for c in range(dn.shape[1]):
            d = float(dn[r, c])
            if d == 0.0:
                out[r, c] = np.nan
            else:
                a = lut[r, c]
                out[r, c] = max(d * d - noise[r, c], 0.0) / (a * a)
    return out


@kernel
def multilook(image: NDArray[np.float32], factor: int) -> NDArray[np.float32]:
    """The mean of each ``factor`` x ``factor`` block (a partial last block: its pixels)."""
    rows, cols = -(-image.shape[0] // factor), -(-image.shape[1] // factor)
    out = np.empty((rows, cols), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            total, n = 0.0, 0
            for rr in range(r * factor, min((r + 1) * factor, image.shape[0])):
                for cc in range(c * factor, min((c + 1) * factor, image.shape[1])):
                    total += image[rr, cc]
                    n += 1
            out[r, c] = total / n  # NaN propagates: a block touching no data is no data
    return out


@kernel
def sample_bilinear(
    image: NDArray[np.float32], line: NDArray[np.float64], pixel: NDArray[np.float64]
) -> NDArray[np.float32]:
    """``image`` at fractional positions (``line``, ``pixel`` of any equal shape, flattened
    in C order; pixel centres at integers), NaN where a neighbour is missing."""
    out = np.empty(line.size, dtype=np.float32)
    lf, pf = line.ravel(), pixel.ravel()
    h, w = image.shape
    for i in range(lf.size):
        y, x = lf[i], pf[i]
        if not (y >= 0.0 and x >= 0.0 and y <= h - 1 and x <= w - 1):
            out[i] = np.nan
            continue
        r0, c0 = min(int(math.floor(y)), h - 2), min(int(math.floor(x)), w - 2)
        r0, c0 = max(r0, 0), max(c0, 0)
        dy, dx = y - r0, x - c0
        r1, c1 = min(r0 + 1, h - 1), min(c0 + 1, w - 1)
        top = image[r0, c0] * (1 - dx) + image[r0, c1] * dx
        bottom = image[r1, c0] * (1 - dx) + image[r1, c1] * dx
        out[i] = top * (1 - dy) + bottom * dy  # NaN in any neighbour propagates
    return out
