"""Read one acquisition window by window onto a target grid.

A ``SceneSpec`` says what to read (acquisition, grid, bands, AOI, cloud masking)
and pickles cheaply, so Dask workers can open the same files; ``SceneSpec.open()``
gives a ``WindowReader`` that keeps its files open and returns a ``Scene`` per
``Block`` (``eowatch.engine.blocks`` plans them).

A band whose native grid is the target grid shifted by whole pixels (the
usual same-MGRS-tile case) is read with a plain rasterio window; a band twice
as coarse on the same projected lattice (20 m on 10 m) is read with a 1-pixel
halo and upsampled here, bilinearly, bit-identical to GDAL's warper (tested);
any other band (another CRS, geographic grids, other ratios) goes through a
``WarpedVRT`` on the full target grid read one window at a time: GDAL warps
per destination pixel, so a window holds the same values as the whole-grid
read. Only the window's pixels (and their tiles) are ever decoded.
"""

from __future__ import annotations

import math
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InputError, NoOverlapError
from ..kernels.masks import scl_invalid
from ..model import Block, Grid, Scene
from .gdal import gdal_env
from .load import open_asset, read_decimated, reference_grid, source_nodata, to_values, to_values_into, warped
from .remote import read_failure
from .sources import Acquisition, BandAsset

__all__ = ["SceneSpec", "WindowReader", "CoarseMask"]

_EPS = 1e-6
_RASTERIZE_LOCK = threading.Lock()


@dataclass(frozen=True)
class CoarseMask:
    """A cloud mask computed once on a coarse grid (s2cloudless at 60 m), looked
    up by nearest neighbour for each window of the fine grid."""

    mask: NDArray[np.bool_]
    fine_shape: tuple[int, int]

    def window(self, block: Block) -> NDArray[np.bool_]:
        (rows, cols), (ch, cw) = self.fine_shape, self.mask.shape
        r = np.minimum(np.arange(block.row, block.row + block.height) * ch // rows, ch - 1)
        c = np.minimum(np.arange(block.col, block.col + block.width) * cw // cols, cw - 1)
        return self.mask[np.ix_(r, c)]


@dataclass
class SceneSpec:
    """What to read of one acquisition: bands on a grid, inside an AOI, with clouds
    masked (``cloud``: "none", "scl" or a precomputed ``CoarseMask``; ``extra_cloud``
    masked besides, e.g. the shadows the SCL missed), and, for the dates of a series
    that may cover less than the grid, only inside the acquisition's own raster bounds
    (``footprint``). Reads run with a ``gdal_cache_mb`` block cache."""

    acq: Acquisition
    grid: Grid
    bands: tuple[str, ...]
    aoi: BaseGeometry | None = None
    cloud: str | CoarseMask = "none"
    mask_snow: bool = True
    footprint: bool = False
    gdal_cache_mb: int = 256
    extra_cloud: CoarseMask | None = None
    _aoi_geom: dict[str, Any] | None = field(default=None, init=False, repr=False)
    _aoi_shape: BaseGeometry | None = field(default=None, init=False, repr=False)
    _bounds: tuple[float, float, float, float] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.acq.require(self.bands)
        if self.aoi is not None:
            self._aoi_geom = transform_geom("EPSG:4326", self.grid.crs, mapping(self.aoi))
            self._aoi_shape = shape(self._aoi_geom).buffer(max(self.grid.resolution))  # all_touched margin
        if self.cloud == "scl" and "SCL" not in self.acq.assets:
            raise InputError(f"{self.acq.id} has no SCL band; use cloud_mask='s2cloudless' (L1C) or 'none'")
        if self.footprint:
            self._bounds = _footprint_bounds(self.acq, self.grid)

    def open(self) -> WindowReader:
        return WindowReader(self)

    def preview(self, bands: tuple[str, ...], shape: tuple[int, int]) -> NDArray[np.float32]:
        """``bands`` over the whole grid reduced to ``shape`` (quicklooks; from overviews
        where the files have them), NaN at nodata."""
        return read_decimated(self.acq, self.grid, bands, shape)


def _footprint_bounds(acq: Acquisition, grid: Grid) -> tuple[float, float, float, float]:
    """The acquisition's raster bounds in the grid's CRS (``NoOverlapError`` when they miss it)."""
    ref = reference_grid(acq)
    area = box(*transform_bounds(ref.crs, grid.crs, *ref.bounds))
    if area.is_empty or not area.intersects(box(*grid.bounds)):
        raise NoOverlapError(
            f"{acq.id} does not overlap the series grid; give acquisitions over the same area"
        )
    left, bottom, right, top = area.bounds
    return left, bottom, right, top


class _BandWindows:
    """One open band file and how to read windows of the target grid from it."""

    def __init__(self, asset: BandAsset, grid: Grid, stack: ExitStack, categorical: bool = False) -> None:
        self.asset, self.categorical, self.grid = asset, categorical, grid
        ds = stack.enter_context(open_asset(asset))
        self.nodata = source_nodata(asset, ds)
        native = Grid(ds.crs, ds.transform, ds.width, ds.height)
        self.offset = _pixel_offset(native, grid)
        # A band twice as coarse on the same lattice (20 m on 10 m): upsampled here, per window.
        self.half = None if self.offset is not None or categorical else _pixel_offset(native, grid, factor=2)
        self.native = native
        self.source: Any = ds
        if self.offset is None and self.half is None:
            self.source = stack.enter_context(warped(ds, grid, native, categorical, self.nodata))

    def read(self, block: Block) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        raw, inside = self._checked_raw(block)
        data, valid = to_values(raw, self.asset, self.nodata, self.categorical)
        if inside is not None:
            valid &= inside
        return data, valid

    def read_into(self, block: Block, out: NDArray[np.float32], valid: NDArray[np.bool_]) -> None:
        """The block's values into ``out``, its validity ANDed into ``valid`` (no copies)."""
        raw, inside = self._checked_raw(block)
        to_values_into(raw, self.asset, self.nodata, out, valid)
        if inside is not None:
            valid &= inside

    def _checked_raw(self, block: Block) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
        try:
            return self._raw(block)
        except RasterioError as exc:
            raise read_failure(self.asset.href, exc, f"cannot read window {block} of") from exc

    def _raw(self, block: Block) -> tuple[NDArray[Any], NDArray[np.bool_] | None]:
        band = self.asset.band_index
        if self.half is not None:
            return self._upsampled(block), None
        if self.offset is None:
            return self.source.read(
                band, window=Window(block.col, block.row, block.width, block.height)
            ), None
        dr, dc = self.offset
        r0, c0 = block.row + dr, block.col + dc
        r1, c1 = r0 + block.height, c0 + block.width
        cr0, cc0 = max(r0, 0), max(c0, 0)
        cr1, cc1 = min(r1, self.native.height), min(c1, self.native.width)
        if (cr0, cc0, cr1, cc1) == (r0, c0, r1, c1):
            return self.source.read(band, window=Window(c0, r0, block.width, block.height)), None
        # The window runs off the source: read what exists, the rest is invalid.
        raw = np.zeros((block.height, block.width), dtype=self.source.dtypes[band - 1])
        inside = np.zeros(raw.shape, dtype=bool)
        if cr1 > cr0 and cc1 > cc0:
            part = (slice(cr0 - r0, cr1 - r0), slice(cc0 - c0, cc1 - c0))
            raw[part] = self.source.read(band, window=Window(cc0, cr0, cc1 - cc0, cr1 - cr0))
            inside[part] = True
        return raw, inside

    def _upsampled(self, block: Block) -> NDArray[Any]:
        """Bilinear 2x upsampling of the native window plus a 1-pixel halo, as GDAL's
        warper does it: pixel-centre geometry, nodata and off-image neighbours
        left out and the remaining weights renormalised, rounded to the source type."""
        assert self.half is not None
        dr, dc = self.half
        fine, coarse = self.grid.transform, self.native.transform
        rows, r_lo = _taps(fine.f, fine.e, coarse.f, coarse.e, block.row, block.height, self.native.height)
        cols, c_lo = _taps(fine.c, fine.a, coarse.c, coarse.a, block.col, block.width, self.native.width)
        r0, r1 = int(rows[0].min()), int(rows[1].max()) + 1
        c0, c1 = int(cols[0].min()), int(cols[1].max()) + 1
        src = self.source.read(self.asset.band_index, window=Window(c0, r0, c1 - c0, r1 - r0))
        good = None if self.nodata is None else src != self.nodata
        if self.asset.saturated is not None:  # saturated pixels lend no value and have none
            unsaturated = src != self.asset.saturated
            good = unsaturated if good is None else good & unsaturated
        if good is not None and good.all():
            good = None
        if good is None and src.dtype.kind in "iu" and src.dtype.itemsize <= 2 and _quarters(r_lo, c_lo):
            return _upsampled_exact(src, rows, r_lo, r0, cols, c_lo, c0)
        values = src.astype(np.float64)
        total = np.zeros((block.height, block.width))
        weight = np.zeros_like(total)
        for ri, wr in ((rows[0], r_lo), (rows[1], 1.0 - r_lo)):
            v_rows = np.take(values, ri - r0, axis=0)
            g_rows = None if good is None else np.take(good, ri - r0, axis=0)
            for ci, wc in ((cols[0], c_lo), (cols[1], 1.0 - c_lo)):
                w = wr[:, None] * wc[None, :]
                if g_rows is not None:
                    w *= np.take(g_rows, ci - c0, axis=1)
                total += w * np.take(v_rows, ci - c0, axis=1)
                weight += w
        out = np.zeros((block.height, block.width), dtype=src.dtype)
        has = weight > 0
        if good is not None:
            # Like GDAL's warper: no data where the source pixel under the centre is no data.
            centre_r = np.where(r_lo >= 0.5, rows[0], rows[1]) - r0
            centre_c = np.where(c_lo >= 0.5, cols[0], cols[1]) - c0
            has &= good[np.ix_(centre_r, centre_c)]
        rounded = np.floor(total[has] / weight[has] + 0.5)
        out[has] = rounded.astype(src.dtype) if src.dtype.kind in "iu" else total[has] / weight[has]
        invalid = self.nodata if self.nodata is not None else self.asset.saturated
        if invalid is not None:
            out[~has] = invalid  # read as no valid data by to_values
        return out


def _quarters(*weights: NDArray[np.float64]) -> bool:
    """Whether every weight is a multiple of 1/4 (the 10 m / 20 m lattice: 0.25 / 0.75)."""
    return all(bool(np.all(w * 4 == np.floor(w * 4))) for w in weights)


def _upsampled_exact(
    src: NDArray[Any],
    rows: tuple[NDArray[np.intp], NDArray[np.intp]],
    r_lo: NDArray[np.float64],
    r0: int,
    cols: tuple[NDArray[np.intp], NDArray[np.intp]],
    c_lo: NDArray[np.float64],
    c0: int,
) -> NDArray[Any]:
    """``_upsampled`` without nodata, quarter weights and 16-bit integers, separably in float32.

    Every product and sum is then exact (at most 16 + 4 fractional bits < float32's 24)
    and the weights sum to 1 exactly, so this is bit-identical to the 4-tap float64 sum
    at a fraction of its passes over the window."""
    values = src.astype(np.float32)
    w0, w1 = r_lo.astype(np.float32)[:, None], (1.0 - r_lo).astype(np.float32)[:, None]
    half = np.take(values, rows[0] - r0, axis=0)
    half *= w0
    half += w1 * np.take(values, rows[1] - r0, axis=0)
    w0, w1 = c_lo.astype(np.float32)[None, :], (1.0 - c_lo).astype(np.float32)[None, :]
    total = np.take(half, cols[0] - c0, axis=1)
    total *= w0
    total += w1 * np.take(half, cols[1] - c0, axis=1)
    total += np.float32(0.5)
    np.floor(total, out=total)
    return total.astype(src.dtype)


def _taps(
    fine_origin: float, fine_step: float, origin: float, step: float, start: int, count: int, size: int
) -> tuple[tuple[NDArray[np.intp], NDArray[np.intp]], NDArray[np.float64]]:
    """For fine pixels ``start .. start+count`` along one axis: the two coarse
    neighbours of each (clipped to ``0 .. size-1``) and the weight of the first
    (0 where it lies off the image, so the other takes all the weight). Source
    positions go through map coordinates as GDAL's transformer computes them,
    so that rounding ties fall the same way."""
    fine = np.arange(start, start + count, dtype=np.float64)
    pos = (fine_origin + (fine + 0.5) * fine_step - origin) / step - 0.5  # coarse pixel-centre coordinate
    lo = np.floor(pos).astype(np.intp)
    w_lo = 1.0 - (pos - lo)
    w_lo = np.where(lo < 0, 0.0, w_lo)
    w_lo = np.where(lo + 1 > size - 1, 1.0, w_lo)
    return (np.clip(lo, 0, size - 1), np.clip(lo + 1, 0, size - 1)), w_lo


def _pixel_offset(native: Grid, grid: Grid, factor: int = 1) -> tuple[int, int] | None:
    """(rows, cols) from ``grid``'s origin to ``native``'s pixel lattice, in ``grid``
    pixels, when both share the CRS, ``native``'s pixels are ``factor`` times
    ``grid``'s and the origins differ by whole ``grid`` pixels; else None."""
    a, b = native.transform, grid.transform
    if native.crs != grid.crs or (a.b, a.d, b.b, b.d) != (0, 0, 0, 0):
        return None
    if factor == 1:
        if not (math.isclose(a.a, b.a, rel_tol=1e-9) and math.isclose(a.e, b.e, rel_tol=1e-9)):
            return None
    elif grid.crs.is_geographic or (a.a, a.e) != (factor * b.a, factor * b.e):
        # Own resampling only on exact projected lattices (10/20 m UTM), where it matches
        # GDAL's warper bit for bit (tests/io/test_windows.py); on geographic grids the
        # warper's coordinate noise decides rounding ties, which only the warper reproduces.
        return None
    dc, dr = (b.c - a.c) / b.a, (b.f - a.f) / b.e
    if abs(dc - round(dc)) > _EPS or abs(dr - round(dr)) > _EPS:
        return None
    return round(dr), round(dc)


class WindowReader:
    """Open files of one ``SceneSpec``; ``read(block)`` returns the block as a
    ``Scene`` whose ``valid`` combines nodata, the AOI and clouds. Not
    thread-safe: use one reader per thread."""

    def __init__(self, spec: SceneSpec) -> None:
        self.spec = spec
        self._stack = ExitStack()
        try:
            self._bands = [_BandWindows(spec.acq.assets[b], spec.grid, self._stack) for b in spec.bands]
            self._scl = (
                _BandWindows(spec.acq.assets["SCL"], spec.grid, self._stack, categorical=True)
                if spec.cloud == "scl"
                else None
            )
        except BaseException:
            self._stack.close()
            raise

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> WindowReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self, block: Block) -> tuple[Scene, NDArray[np.bool_]]:
        """The block as a Scene, and its cloud mask (before it was applied)."""
        spec = self.spec
        data = np.empty((len(spec.bands), block.height, block.width), dtype=np.float32)
        with gdal_env(spec.gdal_cache_mb):
            valid = self._aoi(block)
            for i, band in enumerate(self._bands):
                band.read_into(block, data[i], valid)
            clouds = self._clouds(block)
        valid &= ~clouds
        if spec._bounds is not None:
            valid &= self._inside_footprint(block, spec._bounds)
        scene = Scene(
            data=data,
            valid=valid,
            bands=spec.bands,
            grid=block.grid_of(spec.grid),
            id=spec.acq.id,
            datetime=spec.acq.datetime,
            sensor=spec.acq.sensor,
            properties=spec.acq.properties,
        )
        return scene, clouds

    def _inside_footprint(self, block: Block, bounds: tuple[float, float, float, float]) -> NDArray[np.bool_]:
        """True on the pixels whose centre lies inside ``bounds``."""
        left, bottom, right, top = bounds
        t = self.spec.grid.transform
        xs = t.c + t.a * (np.arange(block.col, block.col + block.width) + 0.5)
        ys = t.f + t.e * (np.arange(block.row, block.row + block.height) + 0.5)
        return ((ys >= bottom) & (ys <= top))[:, None] & ((xs >= left) & (xs <= right))[None, :]

    def _aoi(self, block: Block) -> NDArray[np.bool_]:
        geom = self.spec._aoi_geom
        if geom is None or self.spec._aoi_shape is None:
            return np.ones((block.height, block.width), dtype=bool)
        sub = block.grid_of(self.spec.grid)
        if not self.spec._aoi_shape.intersects(box(*sub.bounds)):
            # Nothing to burn (GDAL would also warn about the empty in-memory raster).
            return np.zeros((block.height, block.width), dtype=bool)
        # rasterio's in-memory rasterize is not safe in concurrent threads (its MEM
        # datasets intermittently come up without a geotransform): one at a time.
        with _RASTERIZE_LOCK:
            return geometry_mask(
                [geom], out_shape=sub.shape, transform=sub.transform, invert=True, all_touched=True
            )

    def _clouds(self, block: Block) -> NDArray[np.bool_]:
        cloud, extra = self.spec.cloud, self.spec.extra_cloud
        if isinstance(cloud, CoarseMask):
            clouds = cloud.window(block)
        elif self._scl is not None:
            scl, scl_valid = self._scl.read(block)
            clouds = np.asarray(scl_invalid(scl, self.spec.mask_snow) | ~scl_valid)
        else:
            clouds = np.zeros((block.height, block.width), dtype=bool)
        return clouds | extra.window(block) if extra is not None else clouds
