"""``eowatch ard``: Sentinel-1 GRD products to analysis-ready backscatter (calibrated,
noise-removed, geocoded COGs on one map grid, each with a STAC Item), for reuse as inputs
of ``detect``, ``detect-series`` and monitoring; a few lines over ``eowatch.io.s1_ard``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..aoi import check_aoi, parse_aoi
from ..errors import InputError
from ..io.load import user_crs
from ..io.s1_ard import ard_grid, geocode_acquisitions, is_radar_geometry, write_ard_item
from ..io.sources import resolve_input
from ..services import Services
from .checks import writable_folder
from .s1_options import CALIBRATION_OPTION, DEM_OPTION

__all__ = ["ard"]


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--aoi", default=None, help="AOI: GeoJSON file/text, WKT, or bbox minlon,minlat,maxlon,maxlat.")
@click.option("--crs", default=None, help="Target CRS (default: the UTM zone of the AOI or of the products).")
@click.option("--resolution", type=float, default=None, help="Pixel size in CRS units (default 10 m).")
@DEM_OPTION
@CALIBRATION_OPTION
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.pass_obj
def ard(
    services: Services,
    inputs: tuple[str, ...],
    aoi: str | None,
    crs: str | None,
    resolution: float | None,
    dem: str | None,
    calibration: str | None,
    out_dir: Path,
) -> None:
    """Calibrate and geocode Sentinel-1 GRD products (SAFE folders or zips) onto one grid:
    where the first and last overlap (and the AOI). Prints the STAC Items written."""
    settings = services.settings
    writable_folder(out_dir, "--out")
    if crs is not None:
        user_crs(crs)
    acqs = [resolve_input(text, "sentinel-1") for text in inputs]
    for text, acq in zip(inputs, acqs, strict=True):
        if not is_radar_geometry(acq):
            raise InputError(
                f"{text} is not a Sentinel-1 GRD product in radar geometry; give a GRD SAFE or zip"
            )
    region = check_aoi(parse_aoi(aoi), settings.max_aoi_area_km2) if aoi else None
    grid = ard_grid(acqs, region, crs, resolution)
    dem = dem or (str(settings.s1_dem) if settings.s1_dem else None)
    geocoded = geocode_acquisitions(
        acqs, grid, out_dir, calibration or settings.s1_calibration, dem, settings.scene_workers
    )
    click.echo(json.dumps({"items": [str(write_ard_item(acq, grid)) for acq in geocoded]}, indent=1))
