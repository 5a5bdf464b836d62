"""The measured copy of the real Rome S1 GRD SAFE: GDAL's SAFE driver reads it as a product (210 GCPs,
the DN as written) and, where Orfeo ToolBox is installed, OTB calibrates it to exactly DN^2 / A_sigma^2
on the calibration vector nodes, which makes OTB usable as a reference."""

from __future__ import annotations

import filecmp
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio

from .s1_safe_copy import geolocation_gcps, measured_safe, measurement_path

REPO = Path(__file__).resolve().parents[2]
ROME = "scenes/s1_grd_rome/S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
SHAPE = (16705, 26102)  # numberOfLines, numberOfSamples
# Rows and columns holding calibration vectors (lines 8018 and 8687) and nodes (every 40th pixel).
WINDOW = (7990, 8710, 11990, 12330)  # row0, row1, col0, col1
FILL = 3


def coordinate_dn(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """DN that tell where they were written, 1..1999."""
    return 1 + (3 * rows + 7 * cols) % 1999


@pytest.fixture(scope="module")
def rome(shared_data: Path) -> Path:
    src = shared_data / ROME
    if not src.is_dir():
        pytest.skip(f"the Rome S1 GRD product is not in the shared data ({src})")
    return src


@pytest.fixture(scope="module")
def measured(rome: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return measured_safe(rome, tmp_path_factory.mktemp("s1"), coordinate_dn, WINDOW, fill=FILL)


def test_copy_keeps_every_metadata_file(rome: Path, measured: Path) -> None:
    for src in rome.rglob("*.xml"):
        assert filecmp.cmp(src, measured / src.relative_to(rome), shallow=False)
    assert filecmp.cmp(rome / "manifest.safe", measured / "manifest.safe", shallow=False)


def test_measurement_looks_like_a_real_one(rome: Path, measured: Path) -> None:
    path = measurement_path(measured, "vv")
    assert path.name == measurement_path(rome, "vv").name
    with rasterio.open(path) as ds:
        assert (ds.height, ds.width, ds.count, ds.dtypes[0]) == (*SHAPE, 1, "uint16")
        assert ds.nodata is None
        assert ds.tags()["TIFFTAG_IMAGEDESCRIPTION"] == "Sentinel-1B IW GRD HR L1"
        assert ds.tags()["TIFFTAG_SOFTWARE"] == "Sentinel-1 IPF 003.40"
        assert ds.tags()["TIFFTAG_DATETIME"] == "2021:12:23 06:06:18"
        gcps, crs = ds.gcps
        assert crs == "EPSG:4326" and len(gcps) == 210
        assert path.stat().st_size < 5e6  # tiled and compressed: cheap to write


def test_gdal_safe_driver_reads_the_product(measured: Path) -> None:
    row0, row1, col0, col1 = WINDOW
    with rasterio.open(measured / "manifest.safe") as ds:
        assert ds.driver == "SAFE" and ds.shape == SHAPE
        gcps, _ = ds.gcps
        assert len(gcps) == 210
        ours = geolocation_gcps(next((measured / "annotation").glob("*-vv-*.xml")))
        got = np.array([(g.row, g.col, g.x, g.y, g.z) for g in gcps])
        np.testing.assert_allclose(got, [(g.row, g.col, g.x, g.y, g.z) for g in ours], rtol=1e-12)
        # the window and a margin of fill around it
        dn = ds.read(1, window=((row0 - 5, row1 + 5), (col0 - 5, col1 + 5)))
    rows, cols = np.mgrid[row0 - 5 : row1 + 5, col0 - 5 : col1 + 5]
    inside = (rows >= row0) & (rows < row1) & (cols >= col0) & (cols < col1)
    np.testing.assert_array_equal(dn, np.where(inside, coordinate_dn(rows, cols), FILL))


def test_dn_as_an_array_and_bad_windows(rome: Path, tmp_path: Path) -> None:
    dn = np.arange(12, dtype=np.uint16).reshape(3, 4) + 100
    safe = measured_safe(rome, tmp_path / "a", dn, (10, 13, 20, 24))
    with rasterio.open(measurement_path(safe)) as ds:
        np.testing.assert_array_equal(ds.read(1, window=((10, 13), (20, 24))), dn)
        assert ds.read(1, window=((0, 2), (0, 2))).max() == 0
    with pytest.raises(ValueError, match="shape"):
        measured_safe(rome, tmp_path / "b", dn, (10, 14, 20, 24))
    with pytest.raises(ValueError, match="outside"):
        measured_safe(rome, tmp_path / "c", None, (0, SHAPE[0] + 1, 0, 10))


def sigma_nodes(calibration: Path, window: tuple[int, int, int, int]) -> list[tuple[int, int, float]]:
    """(line, pixel, A_sigma) of the calibration vector nodes inside ``window``."""
    row0, row1, col0, col1 = window
    nodes = []
    for vector in ET.parse(calibration).getroot().iterfind("calibrationVectorList/calibrationVector"):
        line = int(vector.findtext("line"))
        pixels = [int(p) for p in vector.findtext("pixel").split()]
        sigma = [float(a) for a in vector.findtext("sigmaNought").split()]
        nodes += [
            (line, p, a)
            for p, a in zip(pixels, sigma, strict=True)
            if row0 <= line < row1 and col0 <= p < col1
        ]
    return nodes


@pytest.mark.skipif(shutil.which("otbcli_SARCalibration") is None, reason="Orfeo ToolBox is not installed")
def test_otb_sigma0_is_dn_squared_over_a_sigma_squared(measured: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from otb_s1 import otb_calibrate
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    row0, row1, col0, col1 = WINDOW
    measurement = measurement_path(measured)
    out = otb_calibrate(
        measurement, tmp_path / "sigma0.tif", "sigma", remove_noise=False, ram_mb=256,
        box=(col0, row0, col1 - col0, row1 - row0), timeout=300,
    )  # fmt: skip
    with rasterio.open(out) as ds:
        assert ds.shape == (row1 - row0, col1 - col0) and ds.dtypes[0] == "float32"
        sigma0 = ds.read(1).astype(np.float64)
    nodes = sigma_nodes(
        next((measured / "annotation" / "calibration").glob("calibration-*-vv-*.xml")), WINDOW
    )
    assert len({line for line, _, _ in nodes}) == 2 and len(nodes) >= 16
    for line, pixel, a_sigma in nodes:
        dn = float(coordinate_dn(np.array(line), np.array(pixel)))
        assert sigma0[line - row0, pixel - col0] == pytest.approx(dn**2 / a_sigma**2, rel=1e-6), (line, pixel)
