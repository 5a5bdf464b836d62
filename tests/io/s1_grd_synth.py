"""Sentinel-1 GRD products with known backscatter, built on real product metadata.

``grd_from_map`` copies a real SAFE (manifest, annotation, calibration, noise) and writes
its measurement TIFF like a real one (``s1_safe_copy.measured_safe``: GCPs, TIFF tags)
so that the product shows a chosen sigma0 field on the map: every radar pixel of a
window is placed on the ground through the product's own geolocation grid (bilinear in
line/pixel, the annotation's independent statement of the geometry, not eowatch's
range-Doppler), the field is evaluated there, and the DN follows from the product's own
calibration and noise LUTs: DN = sqrt(sigma0 * A_sigma^2 + noise). The pixels are made
up; the metadata is the product's. Outside the window DN is 0 (no data), as the
processor writes at the swath border.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer
from scipy.interpolate import RegularGridInterpolator

from eowatch.io.s1_safe import GrdBand, open_grd
from eowatch.kernels.sar_calibration import interpolate_lut

from .s1_safe_copy import measured_safe

Field = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]


def noise_power(band: GrdBand, rows: NDArray[np.float64], cols: NDArray[np.float64]) -> NDArray[np.float64]:
    """Range x azimuth thermal noise power on the window ``rows`` x ``cols``."""
    nr = band.noise_range
    noise = interpolate_lut(nr.lines, nr.pixels, nr.values, rows, cols)
    for blk in band.noise_azimuth:
        r = (rows >= blk.first_line) & (rows <= blk.last_line)
        c = (cols >= blk.first_sample) & (cols <= blk.last_sample)
        noise[np.ix_(r, c)] *= np.interp(rows[r], blk.lines, blk.values)[:, None]
    return noise


def ground_positions(
    band: GrdBand, rows: NDArray[np.float64], cols: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """lon, lat of every radar pixel of the window, from the annotation's geolocation grid."""
    g = band.annotation.grid
    lines, pixels = np.unique(g[:, 0]), np.unique(g[:, 1])
    order = np.lexsort((g[:, 1], g[:, 0]))
    shape = (lines.size, pixels.size)
    lat = RegularGridInterpolator((lines, pixels), g[order, 2].reshape(shape))
    lon = RegularGridInterpolator((lines, pixels), g[order, 3].reshape(shape))
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    pts = np.column_stack([rr.ravel(), cc.ravel()])
    return lon(pts).reshape(rr.shape), lat(pts).reshape(rr.shape)


def grd_from_map(
    src_safe: Path,
    dest: Path,
    sigma0: Field,
    window: tuple[int, int, int, int],
    crs: str = "EPSG:32633",
    name: str | None = None,
    replace_dates: tuple[str, str] | None = None,
) -> Path:
    """A copy of ``src_safe`` at ``dest/name`` whose VV measurement shows ``sigma0(x, y)``
    (map coordinates of ``crs``) on radar rows/cols ``window`` = (row0, row1, col0, col1).
    ``replace_dates`` = (old, new) rewrites the sensing date in the manifest (another date)."""
    band = open_grd(str(src_safe)).bands["vv"]
    r0, r1, c0, c1 = window
    rows, cols = np.arange(r0, r1, dtype=np.float64), np.arange(c0, c1, dtype=np.float64)
    lon, lat = ground_positions(band, rows, cols)
    x, y = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform(lon, lat)
    cal = band.calibration["sigma0"]
    amp = interpolate_lut(cal.lines, cal.pixels, cal.values, rows, cols)
    dn = np.sqrt(sigma0(np.asarray(x), np.asarray(y)) * amp * amp + noise_power(band, rows, cols))
    staging = dest / f".staging-{name or src_safe.name}"
    written = measured_safe(src_safe, staging, np.clip(np.round(dn), 1, 65535).astype(np.uint16), window)
    target = written.rename(dest / (name or src_safe.name))
    staging.rmdir()
    if replace_dates:
        manifest = target / "manifest.safe"
        manifest.write_text(manifest.read_text().replace(*replace_dates))
    return target
