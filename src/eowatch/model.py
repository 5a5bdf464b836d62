"""The containers that flow through a detection pass.

A ``Grid`` says where pixels are, a ``Scene`` is one acquisition on a grid,
a ``ChangeResult`` is what a preset returns. Steps take and return these
instead of loose tuples (rio-tiler's ``ImageData`` lesson).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS

__all__ = ["Grid", "Scene", "ChangeClass", "ChangeResult", "NO_DATA_CLASS", "NO_CHANGE_CLASS"]

#: Value of the change map where either date had no valid data.
NO_DATA_CLASS = 255
#: Value of the change map for valid pixels without change.
NO_CHANGE_CLASS = 0


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform and size in pixels."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        t = self.transform
        xs = (t.c, t.c + t.a * self.width)
        ys = (t.f, t.f + t.e * self.height)
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def resolution(self) -> tuple[float, float]:
        return (abs(self.transform.a), abs(self.transform.e))

    def pixel_area_m2(self) -> NDArray[np.float64]:
        """Area of one pixel in square metres, per row (it varies with latitude
        on geographic grids, and is constant on projected ones)."""
        rx, ry = self.resolution
        if not self.crs.is_geographic:
            factor = self.crs.linear_units_factor[1] if self.crs.linear_units_factor else 1.0
            return np.full(self.height, rx * ry * factor * factor)
        # Spherical approximation on the authalic radius: good to ~0.3 %.
        radius = 6371007.2
        rows = np.arange(self.height) + 0.5
        lat = np.radians(self.transform.f + self.transform.e * rows)
        return (math.radians(rx) * radius * np.cos(lat)) * (math.radians(ry) * radius)


@dataclass
class Scene:
    """One acquisition on a grid.

    ``data`` is float32 (bands, rows, cols) in physical units (reflectance for
    optical, linear power for radar); ``valid`` is true where every band holds a
    usable observation (not nodata, not cloud or shadow).
    """

    data: NDArray[np.float32]
    valid: NDArray[np.bool_]
    bands: tuple[str, ...]
    grid: Grid
    id: str = ""
    datetime: datetime | None = None
    sensor: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    hrefs: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data.ndim != 3 or self.data.shape[0] != len(self.bands):
            raise ValueError(
                f"scene data must be (bands, rows, cols) with {len(self.bands)} bands; got {self.data.shape}"
            )
        if self.valid.shape != self.data.shape[1:]:
            raise ValueError(f"valid mask {self.valid.shape} does not match data {self.data.shape[1:]}")

    def band(self, name: str) -> NDArray[np.float32]:
        """One band by name (e.g. ``"B04"`` or ``"vv"``)."""
        from .errors import MissingBandError

        try:
            return self.data[self.bands.index(name)]
        except ValueError:
            raise MissingBandError(
                f"band {name!r} is not in scene {self.id or '(unnamed)'}; it has {list(self.bands)}. "
                "Add the band file/asset to the input."
            ) from None


@dataclass(frozen=True)
class ChangeClass:
    """One value of the change map: its code, name and display colour."""

    value: int
    name: str
    colour: tuple[int, int, int]
    description: str = ""


@dataclass
class ChangeResult:
    """What a preset returns for one pair (or series).

    ``classes`` is uint8: ``NO_CHANGE_CLASS`` (0), change classes 1..254 and
    ``NO_DATA_CLASS`` (255) where either date had no valid data. ``statistic``
    is the float per-pixel evidence (NaN where invalid) and ``confidence``
    a 0..1 score per pixel (e.g. 1 - p-value) used to rate polygons.
    """

    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    statistic_name: str
    class_table: tuple[ChangeClass, ...]
    grid: Grid
    confidence: NDArray[np.float32] | None = None
    extra_layers: dict[str, NDArray[Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> NDArray[np.bool_]:
        return self.classes != NO_DATA_CLASS

    @property
    def changed(self) -> NDArray[np.bool_]:
        c = self.classes
        if c.dtype == np.uint8 and (NO_CHANGE_CLASS, NO_DATA_CLASS) == (0, 255):
            # 1..254 in one compare: 0 wraps round to 255 (~5x faster than two on a full tile).
            return np.asarray((c - np.uint8(1)) < np.uint8(254))
        return (c != NO_CHANGE_CLASS) & (c != NO_DATA_CLASS)

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean()) if self.classes.size else 0.0
