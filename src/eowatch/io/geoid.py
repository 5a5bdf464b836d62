"""Geoid undulation: DEM heights above the geoid (EGM96 / EGM2008, as the Copernicus and
SRTM DEMs give them) to heights above the WGS 84 ellipsoid, which radar geometry needs
(near Rome the two differ by ~48 m, 7 GRD pixels of ground range).

The EGM96 15' grid comes from PROJ's data (Debian ``proj-data``: ``egm96_15.gtx``, or
``us_nga_egm96_15.tif`` from PROJ's CDN), or from the file named by ``EOWATCH_GEOID``.
EGM2008 heights are corrected with EGM96 too when no EGM2008 grid is found: the two
geoids differ by less than 1 m over most land (0.1 pixel of GRD ground range).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

from ..errors import InputError

__all__ = ["geoid_undulation", "geoid_file", "GEOID_NAMES"]

GEOID_NAMES = ("us_nga_egm96_15.tif", "egm96_15.gtx")


def _search_dirs() -> list[Path]:
    dirs = [
        os.environ.get("PROJ_DATA"),
        os.environ.get("PROJ_LIB"),
        "/usr/share/proj",
        "/usr/local/share/proj",
    ]
    try:
        import pyproj

        dirs.append(pyproj.datadir.get_data_dir())
    except ImportError:  # pragma: no cover - pyproj comes with the project
        pass
    return [Path(d) for d in dirs if d]


def geoid_file() -> Path:
    """The geoid grid to use; ``InputError`` naming the fix when there is none."""
    named = os.environ.get("EOWATCH_GEOID")
    if named:
        if not Path(named).is_file():
            raise InputError(f"EOWATCH_GEOID={named} does not exist; name an EGM96 geoid grid (egm96_15.gtx)")
        return Path(named)
    for folder in _search_dirs():
        for name in GEOID_NAMES:
            if (folder / name).is_file():
                return folder / name
    raise InputError(
        "no EGM96 geoid grid found to turn the DEM's heights above the geoid into ellipsoidal heights; "
        "install PROJ's grids (Debian: apt-get install proj-data) or set EOWATCH_GEOID to egm96_15.gtx"
    )


@lru_cache(maxsize=2)
def _grid(path: Path) -> tuple[NDArray[np.float32], tuple[float, float, float, float]]:
    with rasterio.open(path) as ds:
        values = ds.read(1).astype(np.float32)
        t = ds.transform
        return values, (t.c + t.a / 2, t.a, t.f + t.e / 2, t.e)  # first pixel centre lon/lat, steps


def geoid_undulation(lon: NDArray[np.float64], lat: NDArray[np.float64]) -> NDArray[np.float64]:
    """Geoid height above the ellipsoid (m) at ``lon``/``lat`` (degrees), bilinear."""
    values, (lon0, dlon, lat0, dlat) = _grid(geoid_file())
    col = np.mod(np.asarray(lon) - lon0, 360.0) / dlon  # grids start at -180 or 0 and wrap
    row = (np.asarray(lat) - lat0) / dlat
    wrapped = np.concatenate([values, values[:, :1]], axis=1)  # bilinear across the date line
    out: NDArray[np.float64] = map_coordinates(wrapped, [row, col], order=1, mode="nearest").astype(
        np.float64
    )
    return out
