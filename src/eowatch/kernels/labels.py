"""Connected-component labelling of a boolean mask, by runs.

The same labels as ``scipy.ndimage.label`` with the 4- or 8-connected structure
(components numbered 1.. in the raster order of their first pixel), in one
compiled pass: every row is cut into runs of true pixels, each run is joined
(union-find) to the runs of the row above that touch it, then each run lists
its pixels and their component. Work follows the runs, not the pixels, so the sparse
change masks of full tiles label in ~0.15 s where ``ndimage.label`` took ~1 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .jit import kernel

__all__ = ["Components", "components", "label"]


def label(mask: ArrayLike, connectivity: int = 8) -> tuple[NDArray[np.int32], int]:
    """Labels (int32, 0 = background) of the ``connectivity``-connected (4 or 8) components
    of the 2-D boolean ``mask``, and their number."""
    m = np.asarray(mask)
    found = components(m, connectivity)
    return found.image(m.shape), found.count


@dataclass(frozen=True)
class Components:
    """Connected components as flat pixel lists: ``inside`` the flat indices of the mask's
    pixels (ascending), ``pixel_labels`` their component (1..``count``, scipy's numbering)."""

    inside: NDArray[np.int64]
    pixel_labels: NDArray[np.int32]
    count: int

    def value_counts(self, values: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
        """Pixels per (component, value) of ``values`` (one per pixel of ``inside``, >= 0):
        row = label (row 0 unused), column = value, from one ``np.bincount``."""
        k = int(values.max()) + 1 if values.size else 1
        flat = self.pixel_labels.astype(np.int64) * k + values
        counts: NDArray[np.int64] = np.bincount(flat, minlength=(self.count + 1) * k).reshape(
            self.count + 1, k
        )
        return counts

    def image(self, shape: tuple[int, ...]) -> NDArray[np.int32]:
        """The label image (int32, 0 = background) of a mask of ``shape``."""
        labels = np.zeros(shape, dtype=np.int32)
        labels.ravel()[self.inside] = self.pixel_labels
        return labels


def components(mask: ArrayLike, connectivity: int = 8) -> Components:
    """``label`` without the label image: for sparse masks (changes on a tile) the pixel
    lists are ~40x smaller than a full int32 image and need no second scan of the mask."""
    m = _checked(mask, connectivity)
    starts, ends, row_first = _runs(m.view(np.uint8))
    component, count = _join(starts, ends, row_first, connectivity == 8)
    total = int((ends - starts).sum())
    inside = np.empty(total, dtype=np.int64)
    pixel_labels = np.empty(total, dtype=np.int32)
    _flatten(starts, ends, row_first, component, m.shape[1], inside, pixel_labels)
    return Components(inside, pixel_labels, int(count))


def _checked(mask: ArrayLike, connectivity: int) -> NDArray[np.bool_]:
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity}")
    m = np.ascontiguousarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"mask must be 2-D; got shape {m.shape}")
    return m


@kernel
def _find(parent: NDArray[np.int64], k: int) -> int:
    while parent[k] != k:
        parent[k] = parent[parent[k]]  # path halving
        k = parent[k]
    return k


@kernel
def _count_runs(mask: NDArray[np.uint8]) -> int:
    rows, cols = mask.shape
    n = 0
    for r in range(rows):
        row = mask[r]
        prev = 0
        for c in range(cols):
            v = row[c]
            if v != prev:  # a tight loop without stores: vectorised, ~10 ms on a full tile
                n += v
                prev = v
    return n


@kernel
def _fill_runs(
    mask: NDArray[np.uint8], starts: NDArray[np.int64], ends: NDArray[np.int64], row_first: NDArray[np.int64]
) -> None:
    rows, cols = mask.shape
    n = 0
    for r in range(rows):
        row_first[r] = n
        row = mask[r]
        prev = 0
        for c in range(cols):
            v = row[c]
            if v != prev:
                if v:
                    starts[n] = c
                else:
                    ends[n] = c
                    n += 1
                prev = v
        if prev:
            ends[n] = cols
            n += 1
    row_first[rows] = n


def _runs(mask: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Runs of non-zero pixels: start and end columns, and the first run of each row (+ total).
    Counted first, then filled: growing arrays inside the scan made it 40x slower."""
    n = _count_runs(mask)
    starts, ends = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    row_first = np.empty(mask.shape[0] + 1, dtype=np.int64)
    _fill_runs(mask, starts, ends, row_first)
    return starts, ends, row_first


@kernel
def _join(
    starts: NDArray[np.int64], ends: NDArray[np.int64], row_first: NDArray[np.int64], diagonal: bool
) -> tuple[NDArray[np.int32], int]:
    """The component (1..) of every run, and the number of components."""
    reach = 1 if diagonal else 0  # runs of adjacent rows touch if they overlap, or meet at a corner
    n = starts.size
    parent = np.arange(n)
    rows = row_first.size - 1
    for r in range(1, rows):
        j, above_end = row_first[r - 1], row_first[r]
        for i in range(row_first[r], row_first[r + 1]):
            # Runs above that end before this one starts (less the corner reach) touch no later run.
            while j < above_end and ends[j] + reach <= starts[i]:
                j += 1
            k = j
            while k < above_end and starts[k] < ends[i] + reach:
                a, b = _find(parent, k), _find(parent, i)
                if a < b:
                    parent[b] = a
                elif b < a:
                    parent[a] = b
                k += 1
    # Components numbered by their first run in raster order (scipy's numbering): the root of a
    # component is its smallest run index.
    component = np.zeros(n, dtype=np.int32)
    count = 0
    for i in range(n):
        root = _find(parent, i)
        if component[root] == 0:
            count += 1
            component[root] = count
        component[i] = component[root]
    return component, count


@kernel
def _flatten(
    starts: NDArray[np.int64],
    ends: NDArray[np.int64],
    row_first: NDArray[np.int64],
    component: NDArray[np.int32],
    cols: int,
    inside: NDArray[np.int64],
    pixel_labels: NDArray[np.int32],
) -> None:
    k = 0
    for r in range(row_first.size - 1):
        for i in range(row_first[r], row_first[r + 1]):
            for c in range(starts[i], ends[i]):
                inside[k] = r * cols + c
                pixel_labels[k] = component[i]
                k += 1
