"""The containers that flow through a detection pass.

A ``Grid`` says where pixels are, a ``Scene`` is one acquisition on a grid,
a ``ChangeResult`` is what a preset returns. Steps take and return these
instead of loose tuples (rio-tiler's ``ImageData`` lesson).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from affine import Affine
from numpy.typing import NDArray

__all__ = [
    "CRS",
    "Grid",
    "Block",
    "Scene",
    "ChangeClass",
    "ChangeResult",
    "Layer",
    "NO_DATA_CLASS",
    "NO_CHANGE_CLASS",
]

#: Value of the change map where either date had no valid data.
NO_DATA_CLASS = 255
#: Value of the change map for valid pixels without change.
NO_CHANGE_CLASS = 0


class CRS(Protocol):
    """What the core asks of a coordinate reference system (``rasterio.crs.CRS`` has it:
    ``eowatch.io`` makes them; nothing else needs GDAL's types)."""

    @property
    def is_geographic(self) -> bool: ...

    @property
    def linear_units_factor(self) -> tuple[str, float]: ...

    def to_epsg(self) -> int | None: ...

    def to_string(self) -> str: ...

    def to_wkt(self) -> str: ...


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


@dataclass(frozen=True, order=True)
class Block:
    """A window of a grid: first row and column, height and width (pixels)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def size(self) -> int:
        return self.height * self.width

    @property
    def slices(self) -> tuple[slice, slice]:
        """Rows and columns of this block in an array of the whole grid."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def grid_of(self, grid: Grid) -> Grid:
        """The sub-grid this block covers."""
        t = grid.transform
        return Grid(grid.crs, t @ Affine.translation(self.col, self.row), self.width, self.height)

    def grown(self, halo: int, grid: Grid) -> Block:
        """This block widened by ``halo`` pixels on every side, clipped to ``grid``."""
        r0, c0 = max(0, self.row - halo), max(0, self.col - halo)
        r1 = min(grid.height, self.row + self.height + halo)
        c1 = min(grid.width, self.col + self.width + halo)
        return Block(r0, c0, r1 - r0, c1 - c0)

    def inside(self, outer: Block) -> tuple[slice, slice]:
        """Slices of this block within ``outer`` (a grown copy of it)."""
        r, c = self.row - outer.row, self.col - outer.col
        return slice(r, r + self.height), slice(c, c + self.width)


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


class Layer(Protocol):
    """An extra per-pixel output of a run (bands, rows, cols), held in memory or spooled
    to a file (``eowatch.engine.layers``); ``read()`` gives it whole."""

    dtype: str
    bands: int

    def read(self) -> NDArray[Any]: ...


@dataclass
class ChangeResult:
    """What a detection returns for one pair (or series).

    ``classes`` is uint8: ``NO_CHANGE_CLASS`` (0), change classes 1..254 and
    ``NO_DATA_CLASS`` (255) where a date had no valid data. ``statistic`` is the
    float per-pixel evidence (NaN where invalid); ``confidence_of`` turns statistic
    values into a 0..1 score (e.g. 1 - p-value) to rate polygons, on the changed
    pixels only (a full tile never holds a confidence array). ``layers`` are the
    preset's extra outputs (e.g. the omnibus series maps).
    """

    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    statistic_name: str
    class_table: tuple[ChangeClass, ...]
    grid: Grid
    confidence_of: Callable[[NDArray[np.floating[Any]]], NDArray[np.float32]] | None = None
    layers: dict[str, Layer] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def valid(self) -> NDArray[np.bool_]:
        return np.asarray(self.classes != NO_DATA_CLASS)

    @property
    def changed(self) -> NDArray[np.bool_]:
        # 1..254 in one compare: 0 wraps round to 255 (~5x faster than two on a full tile).
        return np.asarray((self.classes - np.uint8(1)) < np.uint8(254))

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean()) if self.classes.size else 0.0
