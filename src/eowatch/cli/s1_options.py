"""Command-line options of Sentinel-1 GRD inputs (radar geometry), shared by ``detect``,
``detect-series`` and ``ard``."""

from __future__ import annotations

import click

__all__ = ["DEM_OPTION", "CALIBRATION_OPTION"]

DEM_OPTION = click.option(
    "--dem",
    default=None,
    help="Sentinel-1 GRD inputs: DEM raster (file or URL; heights above EGM96/EGM2008 or the ellipsoid) "
    "for terrain correction; default: settings.s1_dem, else the product's geolocation grid heights.",
)
CALIBRATION_OPTION = click.option(
    "--calibration",
    type=click.Choice(["auto", "sigma0", "beta0", "gamma0", "gamma0-rtc"]),
    default=None,
    help="Sentinel-1 GRD inputs: backscatter to calibrate to (gamma0-rtc: terrain flattened, needs --dem; "
    "auto: gamma0-rtc with a DEM, sigma0 without); default: settings.s1_calibration.",
)
