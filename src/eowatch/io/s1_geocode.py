"""Sentinel-1 GRD (radar geometry, digital numbers) to calibrated backscatter on a map
grid, block by block with bounded memory.

For every output block:

1. the map position of each pixel centre (lon/lat through PROJ on a 16-pixel lattice,
   bilinear in between: a UTM-to-geographic map is smooth at that scale);
2. its height above the ellipsoid: the DEM resampled bilinearly onto the block plus the
   geoid undulation (``terrain`` mode), or the product's geolocation grid heights
   (``ellipsoid`` mode: the terrain height the processor projected the GRD on);
3. its radar (line, pixel) by range-Doppler (``eowatch.kernels.sar_geometry``): exact per
   pixel with a DEM, on the lattice without one (a smooth surface);
4. the radar window those positions cover is read, calibrated with thermal noise removed
   (``eowatch.kernels.sar_calibration``), averaged over f x f pixels when the output
   spacing is f times the GRD spacing (multilooking: 20 m from 10 m GRDH averages 2 x 2,
   on a lattice fixed to the image so neighbouring blocks share it), then sampled
   bilinearly; a block of radar pixels touching no data (DN 0 at the swath border) is
   no data.

With a DEM, ``rtc=True`` flattens the terrain's radiometry to gamma0 RTC (Small 2011,
"Flattening gamma"): beta0 times the ratio of a radar pixel's slant-plane area to the
terrain's area projected perpendicular to the look, computed per map pixel from the DEM
facet's normal n, the unit look vector l and the image plane's normal p as
(n . p) / (n . l) (Ulander 1996's projection angle; Small's area integration reduces to
it where one facet fills a pixel, i.e. away from layover). Facets facing away from the
sensor (n . l <= 0: shadow) and tilted towards it beyond the incidence angle (n . p <= 0:
layover) are no data. Cast shadow (a facet hidden behind a ridge) is not traced.
"""

from __future__ import annotations

import math
import threading
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window
from scipy.interpolate import RegularGridInterpolator

from ..errors import InputError, InputReadError
from ..kernels.sar_calibration import calibrate, interpolate_lut, multilook, sample_bilinear, upsample_lattice
from ..kernels.sar_geometry import Orbit, fit_orbit, look_geometry, radar_coordinates
from ..model import Block, Grid
from .cog import CogSpool
from .geoid import geoid_undulation
from .s1_safe import GrdBand

__all__ = [
    "GeocodeOptions",
    "DemView",
    "geocode_band",
    "geocode_bands",
    "geocoded_blocks",
    "radar_power",
    "geocoding_coordinates",
    "multilook_factor",
    "CALIBRATIONS",
]

CALIBRATIONS = ("sigma0", "beta0", "gamma0")
_LATTICE = 16  # map pixels between exact geographic positions (and radar ones without a DEM)
_BLOCK = 512
_MARGIN = 2  # radar pixels read around the positions a block needs (bilinear neighbours)


@dataclass(frozen=True)
class GeocodeOptions:
    calibration: str = "sigma0"
    dem: str | None = None  # a raster GDAL opens (file, VRT of tiles, COG URL); None: ellipsoid mode
    rtc: bool = False  # terrain flattening to gamma0 RTC (needs the DEM)
    block: int = _BLOCK

    def __post_init__(self) -> None:
        if self.rtc and not self.dem:
            raise InputError("terrain flattening (gamma0 RTC) needs a DEM; give --dem or leave RTC off")

    @property
    def lut(self) -> str:
        """The calibration LUT the DN go through: beta0 under terrain flattening."""
        return "beta0" if self.rtc else self.calibration


def multilook_factor(band: GrdBand, resolution: float) -> int:
    """Radar pixels averaged per side for an output spacing of ``resolution`` metres."""
    spacing = min(band.annotation.range_pixel_spacing, band.annotation.azimuth_pixel_spacing)
    return max(1, round(resolution / spacing))


class _Radar:
    """One polarisation's measurement and tables, opened once for all blocks."""

    def __init__(self, band: GrdBand, calibration: str) -> None:
        if calibration not in CALIBRATIONS:
            raise InputError(f"unknown calibration {calibration!r}; choose one of {', '.join(CALIBRATIONS)}")
        if not band.measurement:
            raise InputError(
                f"the {band.polarisation.upper()} measurement TIFF is missing from the product; it holds "
                "metadata only: download the complete GRD product"
            )
        self.band, self.lut = band, band.calibration[calibration]
        a = band.annotation
        self.orbit: Orbit = fit_orbit(a.orbit_times, a.orbit_positions)
        self.srgr = (a.srgr_times, a.srgr_origins, a.srgr_coefficients)
        grid = a.grid
        lines, pixels = np.unique(grid[:, 0]), np.unique(grid[:, 1])
        if lines.size * pixels.size == len(grid):
            order = np.lexsort((grid[:, 1], grid[:, 0]))
            heights = grid[order, 4].reshape(lines.size, pixels.size)
            self._height = RegularGridInterpolator(
                (lines, pixels), heights, bounds_error=False, fill_value=None
            )
        else:  # an irregular grid: its mean height
            mean = float(np.mean(grid[:, 4]))
            self._height = lambda pts: np.full(len(pts), mean)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            try:
                self.ds: Any = rasterio.open(band.measurement)
            except rasterio.errors.RasterioIOError as exc:
                raise InputReadError(f"cannot read {band.measurement}: {exc}") from exc

    def close(self) -> None:
        self.ds.close()

    def coordinates(
        self, lon: NDArray[np.float64], lat: NDArray[np.float64], h: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        a = self.band.annotation
        return radar_coordinates(
            lon, lat, h, self.orbit, a.ellipsoid, self.srgr, a.azimuth_time_interval, a.range_pixel_spacing
        )

    def look(
        self,
        lon: NDArray[np.float64],
        lat: NDArray[np.float64],
        h: NDArray[np.float64],
        line: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Unit look and image-plane normal vectors (east, north, up) of ground points."""
        a = self.band.annotation
        return look_geometry(lon, lat, h, line * a.azimuth_time_interval, self.orbit, a.ellipsoid)

    def grid_height(self, line: NDArray[np.float64], pixel: NDArray[np.float64]) -> NDArray[np.float64]:
        pts = np.column_stack([line.ravel(), pixel.ravel()])
        return np.asarray(self._height(pts), dtype=np.float64).reshape(line.shape)

    def power(self, row0: int, row1: int, col0: int, col1: int) -> NDArray[np.float32]:
        """Calibrated, noise-removed power of radar rows/cols [row0, row1) x [col0, col1)."""
        dn = self.ds.read(1, window=Window(col0, row0, col1 - col0, row1 - row0), boundless=False)
        rows, cols = np.arange(row0, row1, dtype=np.float64), np.arange(col0, col1, dtype=np.float64)
        lut = interpolate_lut(self.lut.lines, self.lut.pixels, self.lut.values, rows, cols)
        noise_lut = self.band.noise_range
        noise = interpolate_lut(noise_lut.lines, noise_lut.pixels, noise_lut.values, rows, cols)
        for blk in self.band.noise_azimuth:
            r0, r1 = max(blk.first_line, row0), min(blk.last_line + 1, row1)
            c0, c1 = max(blk.first_sample, col0), min(blk.last_sample + 1, col1)
            if r0 < r1 and c0 < c1:
                scale = np.interp(np.arange(r0, r1, dtype=np.float64), blk.lines, blk.values)
                noise[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0] *= scale[:, None]
        return calibrate(np.ascontiguousarray(dn, dtype=np.uint16), lut, noise)


def radar_power(band: GrdBand, calibration: str, window: tuple[int, int, int, int]) -> NDArray[np.float32]:
    """Calibrated, noise-removed power of radar rows/cols ``window`` = (row0, row1, col0, col1),
    in radar geometry (NaN: no data)."""
    radar = _Radar(band, calibration)
    try:
        return radar.power(*window)
    finally:
        radar.close()


def _lattice(n: int) -> NDArray[np.float64]:
    """Lattice positions (pixel indices) spanning 0 .. n-1 every ``_LATTICE`` pixels."""
    return np.unique(np.append(np.arange(0, n, _LATTICE, dtype=np.float64), n - 1))


def _upsample(
    values: NDArray[np.float64], rows: NDArray[np.float64], cols: NDArray[np.float64], height: int, width: int
) -> NDArray[np.float64]:
    """Bilinear interpolation of lattice ``values`` (rows x cols) onto every pixel."""
    return upsample_lattice(np.ascontiguousarray(values, dtype=np.float64), rows, cols, height, width)


class DemView:
    """A DEM read onto a grid's blocks (bilinear), heights made ellipsoidal (NaN: no DEM)."""

    def __init__(self, href: str, grid: Grid) -> None:
        try:
            self.ds: Any = rasterio.open(href)
        except rasterio.errors.RasterioIOError as exc:
            raise InputReadError(f"cannot read the DEM {href}: {exc}") from exc
        self.href, self.nodata = href, self.ds.nodata
        wkt = self.ds.crs.to_wkt() if self.ds.crs else ""
        self.ellipsoidal = (
            "ellipsoid" in wkt.lower() and "geoid" not in wkt.lower() and "egm" not in wkt.lower()
        )
        # A compound CRS (WGS 84 + EGM96 height): warp with its horizontal part only.
        horizontal = "EPSG:4326" if wkt.startswith(("COMPD_CS", "COMPOUNDCRS")) else self.ds.crs
        self.vrt = WarpedVRT(
            self.ds,
            src_crs=horizontal,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=Resampling.bilinear,
            src_nodata=self.nodata,
            nodata=np.nan,
            dtype="float32",
        )

    def terrain(
        self, block: Block, grid: Grid, geoid: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Heights above the ellipsoid on ``block`` (``geoid``: the undulation at its pixels,
        ignored for an ellipsoidal DEM), and the east and north components of the terrain's
        upward normal (-dh/dx, -dh/dy, 1) from central differences (one read of the block
        and a 1-pixel rim; the geoid's own slope, ~1e-5, is left out)."""
        grown = block.grown(1, grid)
        window = Window(grown.col, grown.row, grown.width, grown.height)
        h = self.vrt.read(1, window=window).astype(np.float64)
        d_row, d_col = (
            np.asarray(g, dtype=np.float64)
            for g in np.gradient(h, abs(grid.transform.e), abs(grid.transform.a))
        )
        r, c = block.row - grown.row, block.col - grown.col
        crop = (slice(r, r + block.height), slice(c, c + block.width))
        heights = h[crop] if self.ellipsoidal else h[crop] + geoid
        return heights, -d_col[crop], d_row[crop]  # rows run south: dh/dnorth = -dh/drow

    def overview(self, shape: tuple[int, int]) -> NDArray[np.float32]:
        """The DEM's (geoid) heights on the whole grid, decimated to ``shape``."""
        values: NDArray[np.float32] = self.vrt.read(1, out_shape=shape, resampling=Resampling.bilinear)
        return values

    def close(self) -> None:
        self.vrt.close()
        self.ds.close()

    def __enter__(self) -> DemView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _positions(
    radar: _Radar, dem: DemView | None, to_lonlat: Transformer, grid: Grid, block: Block, rtc: bool = False
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64] | None]:
    """Radar (line, pixel) of every pixel centre of ``block``, and under ``rtc`` the
    terrain flattening factor (n . p) / (n . l) of each (NaN: layover or shadow)."""
    rows, cols = _lattice(block.height), _lattice(block.width)
    t = grid.transform
    xs = t.c + (block.col + cols + 0.5) * t.a
    ys = t.f + (block.row + rows + 0.5) * t.e
    xx, yy = np.meshgrid(xs, ys)
    lon_l, lat_l = (np.asarray(v, dtype=np.float64) for v in to_lonlat.transform(xx, yy))
    shape = (block.height, block.width)
    if dem is None:
        line_l, pixel_l = radar.coordinates(lon_l, lat_l, np.zeros_like(lon_l))
        line_l, pixel_l = radar.coordinates(lon_l, lat_l, radar.grid_height(line_l, pixel_l))
        return _upsample(line_l, rows, cols, *shape), _upsample(pixel_l, rows, cols, *shape), None
    lon, lat = _upsample(lon_l, rows, cols, *shape), _upsample(lat_l, rows, cols, *shape)
    geoid = _upsample(geoid_undulation(lon_l, lat_l), rows, cols, *shape)  # smooth: on the lattice
    h, east, north = dem.terrain(block, grid, geoid)
    line, pixel = radar.coordinates(lon, lat, h)
    if not rtc:
        return line, pixel, None
    nodes = np.ix_(rows.astype(int), cols.astype(int))
    look_l, plane_l = radar.look(lon_l, lat_l, h[nodes], line[nodes])
    look = [_upsample(look_l[..., k], rows, cols, *shape) for k in range(3)]
    plane = [_upsample(plane_l[..., k], rows, cols, *shape) for k in range(3)]
    n_look = east * look[0] + north * look[1] + look[2]
    n_plane = east * plane[0] + north * plane[1] + plane[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where((n_look > 0) & (n_plane > 0), n_plane / n_look, np.nan)
    return line, pixel, factor


def geocoding_coordinates(
    band: GrdBand, grid: Grid, block: Block, dem: str | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The radar (line, pixel) the geocoder samples for each pixel of ``block`` of ``grid``."""
    radar = _Radar(band, "sigma0")
    view = DemView(dem, grid) if dem else None
    try:
        to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
        line, pixel, _ = _positions(radar, view, to_lonlat, grid, block)
        return line, pixel
    finally:
        radar.close()
        if view is not None:
            view.close()


def _block(
    radars: list[_Radar],
    dem: DemView | None,
    to_lonlat: Transformer,
    grid: Grid,
    block: Block,
    factor: int,
    rtc: bool,
) -> NDArray[np.float32]:
    """Every band's calibrated power on ``block`` (bands, rows, cols); the geometry, shared by
    a product's polarisations, is computed once."""
    a = radars[0].band.annotation
    out = np.full((len(radars), block.height, block.width), np.nan, dtype=np.float32)
    line, pixel, flattening = _positions(radars[0], dem, to_lonlat, grid, block, rtc)
    inside = (line > -1) & (line < a.height) & (pixel > -1) & (pixel < a.width)
    if not inside.any():
        return out
    r0 = max(0, math.floor(np.nanmin(line[inside])) - _MARGIN * factor)
    r1 = min(a.height, math.ceil(np.nanmax(line[inside])) + 1 + _MARGIN * factor)
    c0 = max(0, math.floor(np.nanmin(pixel[inside])) - _MARGIN * factor)
    c1 = min(a.width, math.ceil(np.nanmax(pixel[inside])) + 1 + _MARGIN * factor)
    r0, c0 = r0 - r0 % factor, c0 - c0 % factor  # the multilook lattice is fixed to the image
    centre = (factor - 1) / 2
    at_line, at_pixel = (line - r0 - centre) / factor, (pixel - c0 - centre) / factor
    for k, radar in enumerate(radars):
        power = radar.power(r0, r1, c0, c1)
        if factor > 1:
            power = multilook(power, factor)
        out[k] = sample_bilinear(power, at_line, at_pixel).reshape(block.height, block.width)
    if flattening is not None:
        out *= flattening.astype(np.float32)
    return out


class _Worker:
    """What one thread reads with: its own open measurements and DEM (GDAL datasets are
    not shared between threads)."""

    def __init__(self, bands: list[GrdBand], grid: Grid, options: GeocodeOptions) -> None:
        self.radars = [_Radar(b, options.lut) for b in bands]
        self.dem = DemView(options.dem, grid) if options.dem else None
        self.to_lonlat = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)

    def close(self) -> None:
        for radar in self.radars:
            radar.close()
        if self.dem is not None:
            self.dem.close()


def geocoded_blocks(
    bands: list[GrdBand], grid: Grid, resolution: float, options: GeocodeOptions, workers: int = 1
) -> Iterator[tuple[Block, NDArray[np.float32]]]:
    """(block, calibrated power of every band) on ``grid``, in block order, computed by
    ``workers`` threads (the kernels release the GIL) with at most 2 x ``workers`` blocks
    in flight (NaN: no data)."""
    factor = multilook_factor(bands[0], resolution)
    blocks = [
        Block(row, col, min(options.block, grid.height - row), min(options.block, grid.width - col))
        for row in range(0, grid.height, options.block)
        for col in range(0, grid.width, options.block)
    ]
    state: dict[int, _Worker] = {}
    lock = threading.Lock()

    def run(block: Block) -> NDArray[np.float32]:
        ident = threading.get_ident()
        with lock:
            worker = state.get(ident)
        if worker is None:
            worker = _Worker(bands, grid, options)
            with lock:
                state[ident] = worker
        return _block(worker.radars, worker.dem, worker.to_lonlat, grid, block, factor, options.rtc)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="geocode") as pool:
            pending: deque[tuple[Block, Future[NDArray[np.float32]]]] = deque()
            for block in blocks:
                pending.append((block, pool.submit(run, block)))
                if len(pending) >= 2 * workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
    finally:
        for worker in state.values():
            worker.close()


def geocode_bands(
    bands: list[GrdBand],
    grid: Grid,
    resolution: float,
    options: GeocodeOptions,
    dests: list[Path],
    tags: dict[str, Any] | None = None,
    workers: int = 1,
) -> list[Path]:
    """Each of ``bands`` (a product's polarisations) calibrated and geocoded onto ``grid``,
    written as float32 COGs (linear power) at ``dests``; the geometry is computed once."""
    for dest in dests:
        dest.parent.mkdir(parents=True, exist_ok=True)
    spools = [
        CogSpool(dest.parent, dest.stem, grid, "float32", 1, float("nan"), blocksize=512) for dest in dests
    ]
    try:
        for block, values in geocoded_blocks(bands, grid, resolution, options, workers):
            for spool, band_values in zip(spools, values, strict=True):
                spool.write(block, band_values[None])
        return [
            spool.publish(dest, [band.polarisation], resampling="average", compress="ZSTD", tags=tags)
            for spool, dest, band in zip(spools, dests, bands, strict=True)
        ]
    finally:
        for spool in spools:
            spool.done()
            spool.path.unlink(missing_ok=True)


def geocode_band(
    band: GrdBand,
    grid: Grid,
    resolution: float,
    options: GeocodeOptions,
    dest: Path,
    tags: dict[str, Any] | None = None,
) -> Path:
    """``band`` calibrated and geocoded onto ``grid``, written as a float32 COG (linear power)."""
    return geocode_bands([band], grid, resolution, options, [dest], tags)[0]
