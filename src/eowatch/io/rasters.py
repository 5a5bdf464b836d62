"""Whole small rasters read and written as arrays with their profile (demo data,
test fixtures, label rasters): everything else reads window by window
(``eowatch.io.windows``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from numpy.typing import NDArray
from pyproj import CRS, Transformer
from rasterio.features import rasterize
from shapely.geometry import mapping
from shapely.geometry.base import BaseGeometry

from ..errors import InputReadError
from ..model import Grid

__all__ = ["read_float_raster", "write_float_raster", "write_label_raster"]


def read_float_raster(
    path: Path, what: str = ""
) -> tuple[NDArray[np.float32], dict[str, Any], tuple[str, ...]]:
    """Every band of ``path`` as float32, its profile and band descriptions; ``what`` names
    the file in the error."""
    try:
        with rasterio.open(path) as ds:
            return ds.read().astype(np.float32), dict(ds.profile), tuple(d or "" for d in ds.descriptions)
    except rasterio.errors.RasterioIOError as exc:
        raise InputReadError(f"cannot read {what or path} {path}: {exc}") from exc


def write_float_raster(
    path: Path, data: NDArray[np.float32], profile: dict[str, Any], descriptions: tuple[str, ...],
    tags: dict[str, str] | None = None,
) -> None:  # fmt: skip
    """A tiled, DEFLATE-compressed float32 GeoTIFF (NaN nodata) on ``profile``'s grid."""
    out = {
        **profile,
        "driver": "GTiff",
        "dtype": "float32",
        "compress": "deflate",
        "predictor": 3,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "nodata": float("nan"),
    }
    with rasterio.open(path, "w", **out) as ds:
        ds.write(data.astype(np.float32))
        ds.descriptions = descriptions
        if tags:
            ds.update_tags(**tags)


def write_label_raster(
    path: Path, shapes: Sequence[tuple[BaseGeometry, int]], grid: Grid
) -> None:  # fmt: skip
    """A uint8 GeoTIFF on ``grid`` with each (WGS 84 geometry, value) of ``shapes`` burnt
    in order (later ones over earlier ones), 0 elsewhere: labels drawn from polygons."""
    project = Transformer.from_crs(CRS.from_epsg(4326), grid.crs, always_xy=True).transform
    burnt = rasterize(
        [(mapping(shapely.transform(geom, project, interleaved=False)), value) for geom, value in shapes],
        out_shape=grid.shape,
        transform=grid.transform,
        fill=0,
        dtype="uint8",
    )
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "uint8"}
    with rasterio.open(path, "w", **profile, crs=grid.crs, transform=grid.transform) as ds:
        ds.write(np.asarray(burnt, dtype=np.uint8), 1)
