"""Spatial clean-up of change masks: minimum mapping unit and morphology.

``sieve`` removes connected components smaller than an area in square metres
(a minimum mapping unit). Pixel area is given per row because it varies with
latitude on geographic (EPSG:4326) grids; see ``Grid.pixel_area_m2``.
``clean`` is a morphological opening and/or closing with a disk.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage

from .labels import Components, components

__all__ = [
    "disk",
    "connectivity_structure",
    "component_areas",
    "sieve",
    "sieve_classes",
    "clean",
    "region_majority",
]


def disk(radius: int) -> NDArray[np.bool_]:
    """A boolean disk of the given radius in pixels ((2r+1) x (2r+1); radius 0 = one pixel)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0; got {radius}")
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return np.asarray(xx * xx + yy * yy <= radius * radius + 1e-9)


def connectivity_structure(connectivity: int) -> NDArray[np.bool_]:
    """3x3 structuring element for 4- or 8-connectivity."""
    if connectivity in (4, 8):
        return np.asarray(ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2), dtype=bool)
    raise ValueError(f"connectivity must be 4 or 8; got {connectivity}")


def _row_areas(pixel_area_m2_per_row: ArrayLike, rows: int) -> NDArray[np.float64]:
    area = np.asarray(pixel_area_m2_per_row, dtype=np.float64).reshape(-1)
    if area.size == 1:
        area = np.full(rows, float(area[0]))
    if area.shape[0] != rows:
        raise ValueError(f"pixel_area_m2_per_row must hold one value per row ({rows}); got {area.shape[0]}")
    return area


def component_areas(
    mask: NDArray[np.bool_],
    pixel_area_m2_per_row: ArrayLike,
    connectivity: int = 8,
) -> tuple[NDArray[np.int32], NDArray[np.float64]]:
    """Label image of the connected true components of ``mask`` and the area of each
    (``areas[0]`` = 0, the background)."""
    m = np.asarray(mask, dtype=bool)
    found = components(m, connectivity)
    return found.image(m.shape), _areas(found, pixel_area_m2_per_row, m.shape)


def _areas(
    found: Components, pixel_area_m2_per_row: ArrayLike, shape: tuple[int, ...]
) -> NDArray[np.float64]:
    area = _row_areas(pixel_area_m2_per_row, shape[0])
    n = found.count
    if np.all(area == area[0]):  # projected grids: one pixel area
        areas = np.bincount(found.pixel_labels, minlength=n + 1) * area[0]
    else:
        areas = np.bincount(found.pixel_labels, weights=area[found.inside // shape[1]], minlength=n + 1)
    out = np.asarray(areas, dtype=np.float64)
    out[0] = 0.0
    return out


def sieve(
    mask: NDArray[np.bool_],
    pixel_area_m2_per_row: ArrayLike,
    min_area_m2: float,
    connectivity: int = 8,
) -> NDArray[np.bool_]:
    """Drop connected true components of ``mask`` whose area is below ``min_area_m2``.

    ``pixel_area_m2_per_row`` holds the area of one pixel in each row (a scalar
    is accepted for projected grids).
    """
    if min_area_m2 < 0:
        raise ValueError(f"min_area_m2 must be >= 0; got {min_area_m2}")
    m = np.asarray(mask, dtype=bool)
    if min_area_m2 == 0:
        return m.copy()
    found = components(m, connectivity)
    keep = _areas(found, pixel_area_m2_per_row, m.shape) >= min_area_m2
    keep[0] = False
    out = np.zeros(m.shape, dtype=bool)
    out.ravel()[found.inside] = keep[found.pixel_labels]
    return out


def sieve_classes(
    classes: NDArray[np.uint8],
    pixel_area_m2_per_row: ArrayLike,
    min_area_m2: float,
    connectivity: int = 8,
    fill: int = 0,
    reserved: tuple[int, ...] = (0, 255),
) -> NDArray[np.uint8]:
    """Sieve each class of a uint8 class map separately.

    Components of one class smaller than ``min_area_m2`` are set to ``fill``
    (default 0, no change); the ``reserved`` values (no change, no data) are
    never sieved nor overwritten.
    """
    c = np.asarray(classes)
    if c.dtype != np.uint8 or c.ndim != 2:
        raise ValueError(f"classes must be a 2-D uint8 array; got {c.dtype} {c.shape}")
    out = c.copy()
    for value in np.unique(c):
        if int(value) in reserved:
            continue
        m = c == value
        kept = sieve(m, pixel_area_m2_per_row, min_area_m2, connectivity)
        out[m & ~kept] = fill
    return out


def clean(
    mask: NDArray[np.bool_],
    radius: int,
    operation: Literal["open_close", "open", "close", "close_open"] = "open_close",
) -> NDArray[np.bool_]:
    """Morphological clean-up of a boolean mask with a disk of ``radius`` pixels.

    ``open`` removes specks thinner than the disk, ``close`` fills gaps
    narrower than it; ``open_close`` (default) does both in that order.
    Pixels outside the image are treated as false.
    """
    m = np.asarray(mask, dtype=bool)
    if radius == 0:
        return m.copy()
    se = disk(radius)
    steps = {"open_close": "oc", "close_open": "co", "open": "o", "close": "c"}
    if operation not in steps:
        raise ValueError(f"operation must be one of {sorted(steps)}; got {operation!r}")
    pad = radius + 1
    out = np.pad(m, pad, constant_values=False)
    for step in steps[operation]:
        if step == "o":
            out = ndimage.binary_opening(out, structure=se)
        else:
            out = ndimage.binary_closing(out, structure=se)
    return np.asarray(out[pad:-pad, pad:-pad])


def region_majority(
    classes: NDArray[np.uint8], changed: NDArray[np.bool_], connectivity: int = 8
) -> NDArray[np.uint8]:
    """Give every connected changed region the class most of its pixels have.

    One object, one class: a new building whose edge pixels mix with the
    street becomes one "new bare/built" region instead of a patchwork, and
    its polygon is one feature. Pixels outside ``changed`` are untouched.
    """
    c = np.asarray(classes)
    m = np.asarray(changed, dtype=bool)
    found = components(m, connectivity)
    if found.count == 0:
        return c.copy()
    counts = found.value_counts(c.ravel()[found.inside])
    out = c.copy()
    out.ravel()[found.inside] = counts.argmax(axis=1).astype(np.uint8)[found.pixel_labels]
    return out
