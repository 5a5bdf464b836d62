"""Sentinel-1 GRD backscatter simulated from a DEM, for terrain flattening tests.

``simulated_beta0`` images a terrain of constant gamma0 the way Small (2011) models it:
the DEM, resampled to fine facets (default 2.5 m, 16 per GRD pixel), is placed in radar
geometry facet by facet (range-Doppler), and each radar pixel receives the sum of its
facets' areas projected perpendicular to the look (bilinear splatting); beta0 is gamma0
times that sum over the pixel's slant-plane area (ground range spacing x azimuth spacing x
sin of the annotation's incidence angle). This area integration is independent of the
per-pixel projection-angle formula eowatch flattens with; the geometry is eowatch's
(checked against OTB in test_s1_vs_otb.py).
"""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from scipy.interpolate import RegularGridInterpolator

from eowatch.io.geoid import geoid_undulation
from eowatch.io.s1_safe import GrdBand
from eowatch.kernels.sar_geometry import fit_orbit, look_geometry, radar_coordinates


def facet_heights(
    dem: str, bounds: tuple[float, float, float, float], spacing: float, crs: str
) -> tuple[NDArray[np.float64], Affine]:
    """Ellipsoidal heights of the DEM (EGM96 heights) on a ``spacing`` grid over ``bounds``."""
    left, bottom, right, top = bounds
    width, height = round((right - left) / spacing), round((top - bottom) / spacing)
    transform = Affine(spacing, 0, left, 0, -spacing, top)
    with (
        rasterio.open(dem) as ds,
        WarpedVRT(
            ds,
            src_crs="EPSG:4326",
            crs=crs,
            transform=transform,
            width=width,
            height=height,
            resampling=Resampling.bilinear,
        ) as vrt,
    ):
        h = vrt.read(1).astype(np.float64)
    xs = left + (np.arange(width) + 0.5) * spacing
    ys = top - (np.arange(height) + 0.5) * spacing
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(*np.meshgrid(xs, ys))
    return h + geoid_undulation(np.asarray(lon), np.asarray(lat)), transform


def simulated_beta0(
    band: GrdBand,
    dem: str,
    bounds: tuple[float, float, float, float],
    window: tuple[int, int, int, int],
    gamma0: float,
    crs: str = "EPSG:32633",
    spacing: float = 2.5,
) -> NDArray[np.float64]:
    """beta0 on radar rows/cols ``window`` of a terrain of constant ``gamma0`` over ``bounds``
    (map coordinates of ``crs``); NaN where no facet lands."""
    a = band.annotation
    h, transform = facet_heights(dem, bounds, spacing, crs)
    rows, cols = h.shape
    xs = transform.c + (np.arange(cols) + 0.5) * spacing
    ys = transform.f - (np.arange(rows) + 0.5) * spacing
    lon, lat = (
        np.asarray(v)
        for v in Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(*np.meshgrid(xs, ys))
    )
    orbit = fit_orbit(a.orbit_times, a.orbit_positions)
    srgr = (a.srgr_times, a.srgr_origins, a.srgr_coefficients)
    line, pixel = radar_coordinates(
        lon, lat, h, orbit, a.ellipsoid, srgr, a.azimuth_time_interval, a.range_pixel_spacing
    )
    look, _ = look_geometry(lon, lat, h, line * a.azimuth_time_interval, orbit, a.ellipsoid)
    d_row, d_col = np.gradient(h, spacing, spacing)
    # facet area vector (-dh/deast, -dh/dnorth, 1) ds^2 (rows run south) projected on the look
    area = (-d_col * look[..., 0] + d_row * look[..., 1] + look[..., 2]) * spacing**2
    area = np.maximum(area, 0.0)  # facets facing away (shadow) return nothing
    r0, r1, c0, c1 = window
    total = np.zeros((r1 - r0, c1 - c0))
    y, x = line - r0, pixel - c0
    i, j = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - i, x - j
    for di, dj, w in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        ii, jj = i + di, j + dj
        ok = (ii >= 0) & (ii < total.shape[0]) & (jj >= 0) & (jj < total.shape[1])
        np.add.at(total, (ii[ok], jj[ok]), (w * area)[ok])
    g = a.grid
    lines, pixels = np.unique(g[:, 0]), np.unique(g[:, 1])
    order = np.lexsort((g[:, 1], g[:, 0]))
    incidence = RegularGridInterpolator((lines, pixels), g[order, 5].reshape(lines.size, pixels.size))
    rr, cc = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    theta = np.radians(incidence(np.column_stack([rr.ravel(), cc.ravel()])).reshape(rr.shape))
    slant_area = a.range_pixel_spacing * a.azimuth_pixel_spacing * np.sin(theta)
    beta0 = gamma0 * total / slant_area
    return np.where(total > 0, beta0, np.nan)
