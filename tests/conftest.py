"""Shared fixtures: paths to the bundled pair and the shared labelled data,
and factories for small rasters written to a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data" / "oscd-paris"
SHARED = Path(os.environ.get("EOWATCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def paris() -> Path:
    """The bundled real Sentinel-2 L1C pair (OSCD Paris, imagery only)."""
    assert (BUNDLED / "imgs_1").is_dir(), f"bundled pair missing at {BUNDLED}"
    return BUNDLED


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared labelled data. CI always has it (a missing folder fails there);
    elsewhere tests that need it are skipped with the reason shown."""
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared data not found at {SHARED}; set EOWATCH_SHARED_DATA")
        pytest.skip(f"shared data not found at {SHARED} (set EOWATCH_SHARED_DATA)")
    return SHARED


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str = "EPSG:32631",
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
) -> Path:
    """Write a small GeoTIFF (2-D or (bands, rows, cols))."""
    arr = data[np.newaxis] if data.ndim == 2 else data
    transform = transform or Affine(10, 0, 600000, 0, -10, 5400000)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=arr.shape[2],
        height=arr.shape[1],
        count=arr.shape[0],
        dtype=arr.dtype,
        crs=crs,
        transform=transform,
        nodata=nodata,
    ) as ds:
        ds.write(arr)
        if descriptions:
            ds.descriptions = tuple(descriptions)
    return path


@pytest.fixture
def raster_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    """``make(name, data, **kw)`` writes a GeoTIFF under a temporary folder."""

    def make(name: str, data: np.ndarray, **kw: object) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_raster(path, data, **kw)  # type: ignore[arg-type]

    return make
