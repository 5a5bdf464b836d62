"""Whole small rasters read and written as arrays with their profile (demo data,
test fixtures): everything else reads window by window (``eowatch.io.windows``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray

from ..errors import InputReadError

__all__ = ["read_float_raster", "write_float_raster"]


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
