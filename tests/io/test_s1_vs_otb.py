"""eowatch's Sentinel-1 GRD calibration and terrain geocoding against Orfeo ToolBox 8.1
(``otbcli_SARCalibration``, ``otbcli_OrthoRectification``), the independent reference,
on the real Rome product's metadata with measurements written like real ones
(``s1_safe_copy.measured_safe``: GCPs and the TIFF tags OTB keys on).

Measured here: sigma0 median |difference| 0.0000 dB (max 1e-6 dB) with and without
noise removal; terrain-corrected radar positions with the Rome DEM and the EGM96 geoid
RMS 0.042 pixel (0.001 range, 0.042 azimuth).
"""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from eowatch.io.s1_geocode import geocoding_coordinates, radar_power
from eowatch.io.s1_safe import open_grd
from eowatch.model import Block, Grid

from .s1_grd_synth import grd_from_map
from .s1_safe_copy import measured_safe

pytestmark = pytest.mark.skipif(
    shutil.which("otbcli_SARCalibration") is None,
    reason="Orfeo ToolBox is not installed (apt-get install otb-bin)",
)
REPO = Path(__file__).resolve().parents[2]
ROME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
WINDOW = (7200, 9000, 21300, 22900)  # radar rows/cols around central Rome


@pytest.fixture(scope="module")
def otb():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import otb_s1
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    return otb_s1


@pytest.fixture(scope="module")
def rome(shared_data: Path) -> Path:
    return shared_data / "scenes" / "s1_grd_rome" / ROME


@pytest.mark.parametrize("remove_noise", [False, True])
def test_sigma0_equals_otb_sarcalibration(otb, rome: Path, tmp_path: Path, remove_noise: bool) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)

    def speckled(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.05 * (1 + 0.5 * np.sin(2 * np.pi * x / 700)) * rng.gamma(4.4, 1 / 4.4, x.shape)

    safe = grd_from_map(rome, tmp_path, speckled, WINDOW)
    band = open_grd(str(safe)).bands["vv"]
    r0, r1, c0, c1 = WINDOW
    out = otb.otb_calibrate(
        Path(band.measurement),
        tmp_path / "otb.tif",
        "sigma",
        remove_noise=remove_noise,
        ram_mb=256,
        box=(c0, r0, c1 - c0, r1 - r0),
        timeout=300,
    )
    with rasterio.open(out) as ds:
        reference = ds.read(1).astype(np.float64)
    if not remove_noise:  # the same product with a zero noise LUT
        zero = tuple(np.zeros_like(v) for v in band.noise_range.values)
        band.noise_range = type(band.noise_range)(band.noise_range.lines, band.noise_range.pixels, zero)
    ours = radar_power(band, "sigma0", WINDOW).astype(np.float64)
    valid = (reference > 0) & (ours > 0)
    assert valid.mean() > 0.99
    difference_db = np.abs(10 * np.log10(ours[valid] / reference[valid]))
    assert np.median(difference_db) <= 0.05
    assert np.percentile(difference_db, 99) < 0.01


def test_terrain_geocoding_matches_otb_orthorectification(otb, rome: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Each map pixel's radar position with the Rome DEM (EGM96 heights, geoid applied):
    OTB's is read off measurements whose DN encode their own column / row (``-lut dn``:
    DN^2 / A_dn^2 with a constant A_dn), eowatch's is what its geocoder samples."""
    r0, r1, c0, c1 = WINDOW
    rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
    dem_dir = tmp_path / "dem"
    dem_dir.mkdir()
    dem = shutil.copy(rome.parent / "Rome-30m-DEM.tif", dem_dir)
    grid = Grid(CRS.from_epsg(32633), Affine(10.0, 0, 289000.0, 0, -10.0, 4651000.0), 300, 300)
    calibration = next((rome / "annotation" / "calibration").glob("calibration-*.xml"))
    a_dn = {float(v) for e in ET.parse(calibration).getroot().iter("dn") for v in (e.text or "").split()}
    assert len(a_dn) == 1  # constant: sqrt(OTB output) * A_dn is the DN itself
    otb_position = {}
    for name, dn in (("col", cols - c0 + 100), ("row", rows - r0 + 100)):
        safe = measured_safe(rome, tmp_path / name, dn.astype(np.uint16), WINDOW)
        measurement = Path(open_grd(str(safe)).bands["vv"].measurement)
        box = (c0, r0, c1 - c0, r1 - r0)
        amplitude = otb.otb_calibrate(
            measurement, tmp_path / f"{name}.tif", "dn", remove_noise=False, ram_mb=256, box=box, timeout=300
        )
        target = (32633, grid.transform, 300, 300)
        ortho = otb.otb_orthorectify(
            amplitude, tmp_path / f"{name}_ortho.tif", target, dem_dir, 256,
            interpolator="linear", grid_spacing=10, timeout=300,
        )  # fmt: skip
        with rasterio.open(ortho) as ds:
            otb_position[name] = np.sqrt(ds.read(1).astype(np.float64)) * min(a_dn) - 100
    line, pixel = geocoding_coordinates(
        open_grd(str(rome)).bands["vv"], grid, Block(0, 0, 300, 300), str(dem)
    )
    d_pixel = pixel - (otb_position["col"] + c0)
    d_line = line - (otb_position["row"] + r0)
    ok = np.isfinite(d_pixel) & np.isfinite(d_line)
    assert ok.mean() > 0.99
    rms = float(np.sqrt(np.mean(d_pixel[ok] ** 2 + d_line[ok] ** 2)))
    assert rms <= 1.0, rms  # measured 0.042
