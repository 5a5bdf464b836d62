"""Bring acquisitions onto one grid and read them as physical values.

The grid is chosen once per pair (``pair_grid``) and every band of both dates
is read onto it (``read_scene``): nothing downstream ever resamples again.
Reading goes through GDAL's warper (``WarpedVRT``), which reads only the
needed window and overview of local files and remote COGs alike.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import AOIError, InputError, InputReadError, NoOverlapError
from ..kernels.jit import kernel
from ..model import Grid, Scene
from .remote import open_raster, read_failure
from .sources import Acquisition, BandAsset

__all__ = [
    "crs_from",
    "user_crs",
    "reproject_bounds",
    "snap_grid",
    "utm_epsg",
    "read_plain_band",
    "plain_band_nodata",
    "band_grid",
    "pair_grid",
    "read_scene",
    "read_band",
    "open_asset",
    "read_decimated",
    "aoi_mask",
    "aoi_fraction",
    "to_values",
    "to_values_into",
    "warped",
    "source_nodata",
]

# Order of preference for the band that defines an acquisition's native grid.
_REFERENCE_BANDS = ("B02", "B04", "B03", "B08", "vv", "vh", "hh", "hv")
_EPS = 1e-6  # fraction of a pixel forgiven when snapping bounds to a grid


def crs_from(value: str | int) -> CRS:
    """A CRS from a user value ("EPSG:32631", WKT, an EPSG code)."""
    return CRS.from_epsg(value) if isinstance(value, int) else CRS.from_user_input(value)


def user_crs(value: str) -> CRS:
    """The CRS a user named (an EPSG code, WKT, a PROJ string); ``InputError`` otherwise."""
    try:
        with rasterio.Env():  # PROJ's complaint comes back in the exception, not on stderr
            return CRS.from_user_input(value)
    except rasterio.errors.CRSError as exc:
        raise InputError(f"unknown CRS {value!r} ({exc}); give an EPSG code, e.g. --crs EPSG:32631") from None


def reproject_bounds(
    src_crs: Any, dst_crs: Any, bounds: tuple[float, float, float, float], densify_pts: int = 21
) -> tuple[float, float, float, float]:
    """``bounds`` (left, bottom, right, top) of ``src_crs`` in ``dst_crs`` (edges densified)."""
    left, bottom, right, top = transform_bounds(src_crs, dst_crs, *bounds, densify_pts=densify_pts)
    return left, bottom, right, top


def read_plain_band(path: str | Path, band: int = 1) -> NDArray[Any]:
    """One band of a raster that may carry no georeference (labels on a pixel grid)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                values: NDArray[Any] = ds.read(band)
    except rasterio.errors.RasterioIOError as exc:
        raise InputReadError(f"cannot read {path}: {exc}") from exc
    return values


def plain_band_nodata(path: str | Path) -> float | None:
    """The nodata value of a raster that may carry no georeference (None: none, or unreadable)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return None if ds.nodata is None else float(ds.nodata)
    except rasterio.errors.RasterioIOError:
        return None


def open_asset(asset: BandAsset) -> rasterio.DatasetReader:
    dataset: rasterio.DatasetReader = open_raster(asset.href)
    return dataset


def band_grid(asset: BandAsset) -> Grid:
    """The native grid of one band asset."""
    with open_asset(asset) as ds:
        if ds.crs is None:
            raise InputReadError(f"{asset.href} has no CRS; georeference it (e.g. gdal_edit.py -a_srs) first")
        return Grid(ds.crs, ds.transform, ds.width, ds.height)


def reference_grid(acq: Acquisition) -> Grid:
    """The grid of the acquisition's finest reference band (10 m for Sentinel-2)."""
    names = [b for b in _REFERENCE_BANDS if b in acq.assets] or sorted(acq.assets)
    grids = [band_grid(acq.assets[n]) for n in names[:1]]
    return grids[0]


def pair_grid(
    before: Acquisition,
    after: Acquisition,
    aoi: BaseGeometry | None = None,
    crs: str | CRS | None = None,
    resolution: float | None = None,
) -> Grid:
    """The common grid of a pair: the before date's reference grid (or the given
    CRS and resolution), cropped to where both dates and the AOI overlap."""
    ref = reference_grid(before)
    other = reference_grid(after)
    dst_crs = CRS.from_user_input(crs) if crs else ref.crs
    if resolution is not None and resolution <= 0:
        raise AOIError(f"resolution must be positive; got {resolution}")
    if crs is None and resolution is None:
        origin = ref.transform
    else:
        res = resolution or _default_resolution(ref, dst_crs)
        origin = Affine(res, 0, 0, 0, -res, 0)  # aligned on multiples of res (like gdalwarp -tap)
    footprint = box(*transform_bounds(ref.crs, dst_crs, *ref.bounds)).intersection(
        box(*transform_bounds(other.crs, dst_crs, *other.bounds))
    )
    if footprint.is_empty or footprint.area == 0:
        raise NoOverlapError(
            f"{before.id} and {after.id} do not overlap; choose two acquisitions over the same area"
        )
    if aoi is not None:
        aoi_dst = box(*transform_bounds("EPSG:4326", dst_crs, *aoi.bounds))
        clipped = footprint.intersection(aoi_dst)
        if clipped.is_empty or clipped.area == 0:
            raise AOIError(
                f"the AOI {tuple(round(v, 5) for v in aoi.bounds)} lies outside the common footprint of "
                f"{before.id} and {after.id}; check the AOI (lon/lat order) or the inputs"
            )
        footprint = clipped
    return snap_grid(origin, dst_crs, footprint.bounds)


def _default_resolution(ref: Grid, dst_crs: CRS) -> float:
    if ref.crs == dst_crs:
        return ref.resolution[0]
    left, bottom, right, top = transform_bounds(ref.crs, dst_crs, *ref.bounds)
    return min((right - left) / ref.width, (top - bottom) / ref.height)


def utm_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the UTM zone of a lon/lat point (WGS 84)."""
    return (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) % 60 + 1


def snap_grid(origin: Affine, crs: CRS, bounds: tuple[float, float, float, float]) -> Grid:
    """The smallest window of the grid defined by ``origin`` that covers ``bounds``."""
    left, bottom, right, top = bounds
    rx, ry = origin.a, -origin.e
    col0 = math.floor((left - origin.c) / rx + _EPS)
    col1 = math.ceil((right - origin.c) / rx - _EPS)
    row0 = math.floor((origin.f - top) / ry + _EPS)
    row1 = math.ceil((origin.f - bottom) / ry - _EPS)
    if col1 <= col0 or row1 <= row0:
        raise AOIError("the overlap of the inputs and the AOI is smaller than one pixel; enlarge the AOI")
    transform = Affine(rx, 0, origin.c + col0 * rx, 0, -ry, origin.f - row0 * ry)
    return Grid(crs, transform, col1 - col0, row1 - row0)


def read_band(
    asset: BandAsset, grid: Grid, categorical: bool = False
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """One band on ``grid`` as float32 physical values, with its valid mask.

    Continuous bands are resampled bilinearly when upsampled (20/60 m to 10 m)
    and averaged when downsampled; categorical bands (SCL) use nearest.
    """
    with open_asset(asset) as ds:
        native = Grid(ds.crs, ds.transform, ds.width, ds.height)
        src_nodata = source_nodata(asset, ds)
        if native == grid:
            raw = ds.read(asset.band_index, masked=False)
        else:
            try:
                with warped(ds, grid, native, categorical, src_nodata) as vrt:
                    raw = vrt.read(asset.band_index)
            except rasterio.errors.RasterioError as exc:
                raise read_failure(asset.href, exc, "cannot read onto the target grid:") from exc
    return to_values(raw, asset, src_nodata, categorical)


def read_band_coarse(
    asset: BandAsset, grid: Grid, categorical: bool = False
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """``read_band`` onto a grid coarser than the band's by a whole factor (the 60 m
    reads of the cloud and shadow masks). Where ``grid`` lies on the band's own pixel
    lattice, GDAL reads it decimated, from overviews (COGs) or JPEG2000 resolution
    levels where the file has them: about 10x faster on a full tile than warping
    every 10 m pixel, the same averages up to the overviews' own rounding."""
    with open_asset(asset) as ds:
        native = Grid(ds.crs, ds.transform, ds.width, ds.height)
        window = _decimation_window(native, grid)
        if window is None:
            return read_band(asset, grid, categorical)
        method = Resampling.nearest if categorical else Resampling.average
        raw = ds.read(asset.band_index, window=window, out_shape=grid.shape, resampling=method)
        return to_values(raw, asset, source_nodata(asset, ds), categorical)


def _decimation_window(native: Grid, grid: Grid) -> Window | None:
    """The window of ``native`` that ``grid`` covers when ``grid`` is ``native``
    decimated by whole factors (same CRS, north-up, origin on ``native``'s pixel
    edges, inside it); else None."""
    a, b = native.transform, grid.transform
    if native.crs != grid.crs or (a.b, a.d, b.b, b.d) != (0, 0, 0, 0):
        return None
    fx, fy = b.a / a.a, b.e / a.e
    col, row = (b.c - a.c) / a.a, (b.f - a.f) / a.e
    if not all(abs(v - round(v)) < 1e-6 for v in (fx, fy, col, row)) or round(fx) < 2 or round(fy) < 2:
        return None
    col0, row0, width, height = round(col), round(row), grid.width * round(fx), grid.height * round(fy)
    if col0 < 0 or row0 < 0 or col0 + width > native.width or row0 + height > native.height:
        return None
    return Window(col0, row0, width, height)


def source_nodata(asset: BandAsset, ds: rasterio.DatasetReader) -> float | None:
    """The nodata value of a band: the asset's declaration first, else the file's."""
    return asset.nodata if asset.nodata is not None else ds.nodata


def warped(
    ds: rasterio.DatasetReader, grid: Grid, native: Grid, categorical: bool, src_nodata: float | None
) -> WarpedVRT:
    """A warped view of ``ds`` on ``grid``: bilinear when upsampling, average when
    downsampling (same CRS), nearest for categorical bands. Reading a window of
    it gives the same values as reading the whole view (GDAL warps per pixel)."""
    if categorical:
        method = Resampling.nearest
    else:
        coarser = grid.resolution[0] > native.resolution[0] * 1.5 and grid.crs == native.crs
        method = Resampling.average if coarser else Resampling.bilinear
    return WarpedVRT(
        ds,
        crs=grid.crs,
        transform=grid.transform,
        width=grid.width,
        height=grid.height,
        resampling=method,
        src_nodata=src_nodata,
        nodata=src_nodata,
    )


def to_values(
    raw: NDArray[Any], asset: BandAsset, src_nodata: float | None, categorical: bool = False
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Raw band numbers -> float32 physical values and the valid mask (not nodata, finite)."""
    if src_nodata is None:
        valid = np.ones(raw.shape, dtype=bool)
    elif isinstance(src_nodata, float) and math.isnan(src_nodata):
        valid = ~np.isnan(raw)
    else:
        valid = raw != src_nodata
    if asset.saturated is not None and not categorical:
        valid &= raw != asset.saturated
    data = raw.astype(np.float32)  # a copy: scaled in place below
    if categorical:
        return data, valid
    if asset.scale != 1.0:
        data *= np.float32(asset.scale)
    if asset.offset != 0.0:
        data += np.float32(asset.offset)
    data = _to_physical(data, asset.units)
    if raw.dtype.kind == "f" or asset.units == "db":
        valid &= np.isfinite(data)  # scaled integers stay finite (10^(dB/10) need not)
    return data.astype(np.float32, copy=False), valid


def to_values_into(
    raw: NDArray[Any],
    asset: BandAsset,
    src_nodata: float | None,
    out: NDArray[np.float32],
    valid: NDArray[np.bool_],
) -> None:
    """:func:`to_values` written into ``out``, its valid mask ANDed into ``valid``: in one
    compiled pass for integer reflectance-like bands (the bulk of a full-tile read),
    else through ``to_values``."""
    if raw.dtype.kind in "iu" and asset.units not in ("db", "dn") and out.shape == raw.shape:
        _scaled_into(
            raw,
            np.float32(asset.scale),
            np.float32(asset.offset),
            0.0 if src_nodata is None else float(src_nodata),
            src_nodata is not None,
            0.0 if asset.saturated is None else float(asset.saturated),
            asset.saturated is not None,
            out,
            valid,
        )
        return
    data, band_valid = to_values(raw, asset, src_nodata)
    out[...] = data
    valid &= band_valid


@kernel
def _scaled_into(
    raw: NDArray[Any],
    scale: np.float32,
    offset: np.float32,
    nodata: float,
    has_nodata: bool,
    saturated: float,
    has_saturated: bool,
    out: NDArray[np.float32],
    valid: NDArray[np.bool_],
) -> None:
    """``out = float32(raw) * scale + offset`` (as ``to_values``); ``valid &= raw != nodata``
    and ``raw != saturated``."""
    rows, cols = raw.shape
    for r in range(rows):
        for c in range(cols):
            v = raw[r, c]
            out[r, c] = np.float32(v) * scale + offset
            if (has_nodata and float(v) == nodata) or (has_saturated and float(v) == saturated):
                valid[r, c] = False


def _to_physical(data: NDArray[np.float32], units: str) -> NDArray[np.float32]:
    """SAR values as linear power: dB -> 10^(dB/10); GRD amplitude DN -> DN²."""
    if units == "db":
        return np.power(np.float32(10.0), data / np.float32(10.0))
    if units == "dn":
        return np.square(data)
    return data


def read_decimated(
    acq: Acquisition, grid: Grid, bands: Iterable[str], shape: tuple[int, int]
) -> NDArray[np.float32]:
    """``bands`` of ``acq`` over ``grid`` reduced to ``shape`` for display (quicklooks),
    NaN at nodata. Bands on ``grid`` itself are read with ``out_shape``, so GDAL
    serves them from overviews when the file has them; others go through the warper."""
    names = tuple(bands)
    out = np.empty((len(names), *shape), dtype=np.float32)
    small = Grid(
        grid.crs,
        grid.transform @ Affine.scale(grid.width / shape[1], grid.height / shape[0]),
        shape[1],
        shape[0],
    )
    for i, name in enumerate(names):
        asset = acq.assets[name]
        with open_asset(asset) as ds:
            native = Grid(ds.crs, ds.transform, ds.width, ds.height)
            if native != grid:
                data, valid = read_band(asset, small)
                out[i] = np.where(valid, data, np.nan)
                continue
            raw = ds.read(asset.band_index, out_shape=shape, resampling=Resampling.nearest)
            data, valid = to_values(raw, asset, source_nodata(asset, ds))
            out[i] = np.where(valid, data, np.nan)
    return out


def aoi_mask(grid: Grid, aoi: BaseGeometry | None) -> NDArray[np.bool_]:
    """True inside the AOI polygon (all true without an AOI)."""
    if aoi is None:
        return np.ones(grid.shape, dtype=bool)
    geom = transform_geom("EPSG:4326", grid.crs, mapping(aoi))
    return geometry_mask(
        [geom], out_shape=grid.shape, transform=grid.transform, invert=True, all_touched=True
    )


def aoi_fraction(grid: Grid, aoi: BaseGeometry | None) -> float:
    """The share of ``grid``'s area inside the AOI polygon (1 without an AOI)."""
    if aoi is None:
        return 1.0
    inside = shape(transform_geom("EPSG:4326", grid.crs, mapping(aoi))).intersection(box(*grid.bounds))
    return min(1.0, inside.area / box(*grid.bounds).area)


def read_scene(
    acq: Acquisition,
    grid: Grid,
    bands: Iterable[str],
    aoi: BaseGeometry | None = None,
) -> Scene:
    """Read ``bands`` of ``acq`` onto ``grid``. ``valid`` is the AND of every
    band's nodata mask and the AOI polygon; cloud masks are applied later by
    ``eowatch.io.masks``."""
    names = tuple(bands)
    acq.require(names)
    data = np.empty((len(names), *grid.shape), dtype=np.float32)
    valid = aoi_mask(grid, aoi)
    for i, name in enumerate(names):
        data[i], band_valid = read_band(acq.assets[name], grid)
        valid &= band_valid
    return Scene(
        data=data,
        valid=valid,
        bands=names,
        grid=grid,
        id=acq.id,
        datetime=acq.datetime,
        sensor=acq.sensor,
        properties=dict(acq.properties),
        hrefs={n: acq.assets[n].href for n in names},
    )
