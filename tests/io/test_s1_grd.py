"""Sentinel-1 GRD products in radar geometry: reading, radiometry, geometry, geocoding.

Built on real product metadata (../shared/data/scenes/s1_grd_rome: a real S1B IW GRDH
SAFE over Rome whose measurement is a placeholder; s1_safe_metadata: a real S1A zip,
metadata only). Where pixels are needed, ``s1_grd_synth.grd_from_map`` writes a
measurement whose DN show a known sigma0 field through the product's own geolocation
grid and LUTs (made-up pixels on real metadata).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS
from scipy.interpolate import griddata

from eowatch.errors import InputError, PairingError
from eowatch.io.geoid import geoid_undulation
from eowatch.io.s1_ard import ard_grid, check_dem_coverage, resolve_s1_product
from eowatch.io.s1_geocode import GeocodeOptions, geocode_band
from eowatch.io.s1_safe import is_s1_product, open_grd
from eowatch.io.sources import resolve_input
from eowatch.kernels.sar_calibration import calibrate, interpolate_lut
from eowatch.kernels.sar_geometry import fit_orbit, radar_coordinates
from eowatch.model import Grid
from eowatch.plan import DetectRequest, plan_pair
from eowatch.settings import Settings

from .s1_grd_synth import grd_from_map

ROME = "S1B_IW_GRDH_1SDV_20211223T051122_20211223T051147_030148_039993_5371.SAFE"
S1A_ZIP = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255.zip"
# Radar rows/cols (row0, row1, col0, col1) around central Rome (lon 12.45-12.55, lat 41.95-42.05).
WINDOW = (7200, 9000, 21300, 22900)
# A 3 km square map grid in UTM 33N over the window, and a bright 600 m square in it.
UTM = CRS.from_epsg(32633)
X0, Y0 = 289000.0, 4651000.0
SQUARE = (290000.0, 290600.0, 4650000.0, 4650600.0)


@pytest.fixture(scope="module")
def rome(shared_data: Path) -> Path:
    return shared_data / "scenes" / "s1_grd_rome" / ROME


@pytest.fixture(scope="module")
def s1a_zip(shared_data: Path) -> Path:
    return shared_data / "scenes" / "s1_safe_metadata" / S1A_ZIP


def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth sigma0 pattern (0.025-0.075) with a bright (0.5) square."""
    smooth = 0.05 * (1 + 0.5 * np.sin(2 * np.pi * x / 700.0) * np.cos(2 * np.pi * y / 900.0))
    x0, x1, y0, y1 = SQUARE
    return np.where((x > x0) & (x < x1) & (y > y0) & (y < y1), 0.5, smooth)


def map_grid(res: float) -> Grid:
    n = int(3000 / res)
    return Grid(UTM, Affine(res, 0, X0, 0, -res, Y0), n, n)


@pytest.fixture(scope="module")
def synthetic(rome: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return grd_from_map(rome, tmp_path_factory.mktemp("grd"), field, WINDOW)


def _square_extent(values: np.ndarray, res: float) -> tuple[float, float, float, float]:
    xs = X0 + (np.arange(values.shape[1]) + 0.5) * res
    ys = Y0 - (np.arange(values.shape[0]) + 0.5) * res
    row = int((Y0 - (SQUARE[2] + SQUARE[3]) / 2) / res)
    col = int(((SQUARE[0] + SQUARE[1]) / 2 - X0) / res)
    inside_x, inside_y = xs[values[row] > 0.2], ys[values[:, col] > 0.2]
    return (
        inside_x.min() - res / 2,
        inside_x.max() + res / 2,
        inside_y.min() - res / 2,
        inside_y.max() + res / 2,
    )


# --- reading -----------------------------------------------------------------------------------


def test_reads_the_real_rome_product(rome: Path) -> None:
    product = open_grd(str(rome))
    assert (product.mission, product.mode, product.product_type, product.resolution_class) == (
        "S1B",
        "IW",
        "GRD",
        "H",
    )
    assert (product.orbit_pass, product.relative_orbit, product.absolute_orbit) == ("descending", 22, 30148)
    assert product.ipf == "003.40"
    band = product.bands["vv"]
    a = band.annotation
    assert (a.width, a.height) == (26102, 16705)
    assert a.grid.shape == (210, 7) and len(a.orbit_times) == 16
    assert a.azimuth_time_interval == pytest.approx(1.49657e-3, rel=1e-5)
    assert len(band.calibration["sigma0"].lines) == 27 and len(band.noise_azimuth) == 3
    assert band.noise_azimuth[1].first_sample == 8890
    props = product.properties()
    assert props["sat:relative_orbit"] == 22 and props["sar:polarizations"] == ["VV"]


def test_reads_a_zipped_safe_in_place(s1a_zip: Path) -> None:
    assert is_s1_product(str(s1a_zip))
    product = open_grd(str(s1a_zip))
    assert sorted(product.bands) == ["vh", "vv"]
    assert product.relative_orbit == 79 and product.orbit_pass == "descending"
    assert product.bands["vh"].annotation.width == 25931


def test_a_metadata_only_product_is_refused_before_reading(s1a_zip: Path) -> None:
    with pytest.raises(InputError, match="no measurement TIFF for VH, VV.*download the complete GRD product"):
        resolve_input(s1a_zip)


def test_slc_and_ocn_products_name_what_is_supported(rome: Path, tmp_path: Path) -> None:
    for kind in ("SLC", "OCN"):
        copy = tmp_path / kind / ROME
        shutil.copytree(rome, copy)
        manifest = copy / "manifest.safe"
        manifest.chmod(0o644)
        text = manifest.read_text().replace("<s1sarl1:productType>GRD<", f"<s1sarl1:productType>{kind}<")
        manifest.write_text(text)
        with pytest.raises(InputError, match=f"{kind} product; eowatch reads Level-1 GRD products"):
            resolve_input(copy)


def test_missing_calibration_or_noise_xml_is_named(rome: Path, tmp_path: Path) -> None:
    copy = tmp_path / ROME
    shutil.copytree(rome, copy)
    noise = next((copy / "annotation" / "calibration").glob("noise-*.xml"))
    noise.chmod(0o644)
    noise.unlink()
    with pytest.raises(
        InputError, match=r"noise-s1b-iw-grd-vv.*missing; eowatch needs the calibration and noise"
    ):
        resolve_input(copy)


def test_a_zip_that_is_not_a_safe(tmp_path: Path) -> None:
    import zipfile

    bad = tmp_path / "download.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("readme.txt", "not a product")
    with pytest.raises(InputError, match="is not a zipped SAFE product"):
        resolve_input(bad)


# --- radiometry --------------------------------------------------------------------------------


def test_luts_equal_the_annotation_on_its_nodes_and_are_linear_between(rome: Path) -> None:
    cal = open_grd(str(rome)).bands["vv"].calibration["sigma0"]
    rows = np.array([cal.lines[3], (cal.lines[3] + cal.lines[4]) / 2])
    cols = np.array([cal.pixels[3][10], (cal.pixels[3][10] + cal.pixels[3][11]) / 2])
    lut = interpolate_lut(cal.lines, cal.pixels, cal.values, rows, cols)
    assert lut[0, 0] == cal.values[3][10]
    assert lut[0, 1] == pytest.approx((cal.values[3][10] + cal.values[3][11]) / 2, rel=1e-12)
    mid = (cal.values[3][10] + cal.values[4][10]) / 2  # vectors 3 and 4 share their pixel positions here
    assert cal.pixels[4][10] == cal.pixels[3][10] and lut[1, 0] == pytest.approx(mid, rel=1e-12)


def test_calibration_removes_noise_and_marks_the_border_as_no_data() -> None:
    dn = np.array([[0, 100, 10]], dtype=np.uint16)
    lut = np.full((1, 3), 500.0)
    noise = np.full((1, 3), 400.0)
    out = calibrate(dn, lut, noise)
    assert np.isnan(out[0, 0])
    assert out[0, 1] == pytest.approx((100**2 - 400) / 500**2)
    assert out[0, 2] == 0.0  # darker than the noise floor: no power left, not negative


# --- geometry ----------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["rome", "s1a_zip"])
def test_range_doppler_hits_the_geolocation_grid(which: str, request: pytest.FixtureRequest) -> None:
    """The annotation's 210 geolocation grid points (lat, lon, height -> line, pixel) are
    found within 0.5 pixel RMS by eowatch's range-Doppler solution (measured: 0.11 line,
    0.19 / 0.11 pixel)."""
    product = open_grd(str(request.getfixturevalue(which)))
    for band in product.bands.values():
        a = band.annotation
        g = a.grid
        line, pixel = radar_coordinates(
            g[:, 3],
            g[:, 2],
            g[:, 4],
            fit_orbit(a.orbit_times, a.orbit_positions),
            a.ellipsoid,
            (a.srgr_times, a.srgr_origins, a.srgr_coefficients),
            a.azimuth_time_interval,
            a.range_pixel_spacing,
        )
        rms = np.sqrt(np.mean((line - g[:, 0]) ** 2 + (pixel - g[:, 1]) ** 2))
        assert rms < 0.5, rms


def test_height_moves_a_point_towards_the_sensor_by_its_cotangent(rome: Path) -> None:
    """Raising a point by dh shortens its ground range by dh / tan(incidence) (the
    annotation's incidence angle, an independent statement of the geometry)."""
    a = open_grd(str(rome)).bands["vv"].annotation
    g = a.grid[(a.grid[:, 0] == 8020)]
    args = (
        fit_orbit(a.orbit_times, a.orbit_positions),
        a.ellipsoid,
        (a.srgr_times, a.srgr_origins, a.srgr_coefficients),
        a.azimuth_time_interval,
        a.range_pixel_spacing,
    )
    _, p0 = radar_coordinates(g[:, 3], g[:, 2], g[:, 4], *args)
    _, p1 = radar_coordinates(g[:, 3], g[:, 2], g[:, 4] + 100.0, *args)
    expected = 100.0 / np.tan(np.radians(g[:, 5])) / a.range_pixel_spacing
    np.testing.assert_allclose(p0 - p1, expected, rtol=0.03)


# --- geocoding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("res", [10.0, 20.0])
def test_round_trip_gives_back_the_map_sigma0(synthetic: Path, tmp_path: Path, res: float) -> None:
    """sigma0 on the map -> DN through the product's geolocation grid and LUTs -> eowatch:
    the same sigma0 (median |error| <= 0.05 dB; DN rounding alone is ~0.02 dB) and the
    bright square's edges where they are on the map (within half a pixel)."""
    band = open_grd(str(synthetic)).bands["vv"]
    out = geocode_band(band, map_grid(res), res, GeocodeOptions("sigma0"), tmp_path / "vv.tif")
    with rasterio.open(out) as ds:
        values = ds.read(1)
        assert ds.crs == UTM and ds.res == (res, res)
    xs = X0 + (np.arange(values.shape[1]) + 0.5) * res
    ys = Y0 - (np.arange(values.shape[0]) + 0.5) * res
    x, y = np.meshgrid(xs, ys)
    margin = 2 * res
    near_square = (
        (x > SQUARE[0] - margin)
        & (x < SQUARE[1] + margin)
        & (y > SQUARE[2] - margin)
        & (y < SQUARE[3] + margin)
    )
    assert np.isfinite(values).all()
    error_db = 10 * np.log10(values[~near_square] / field(x, y)[~near_square])
    assert np.median(np.abs(error_db)) <= 0.05
    np.testing.assert_allclose(_square_extent(values, res), SQUARE, atol=res / 2)


def test_outside_the_measured_window_is_no_data_without_a_dark_frame(synthetic: Path, tmp_path: Path) -> None:
    """DN 0 (the border) is no data, and no pixel next to it blends it in (no dark frame)."""
    band = open_grd(str(synthetic)).bands["vv"]
    wide = Grid(UTM, Affine(20.0, 0, X0 - 20000, 0, -20.0, Y0 + 20000), 2150, 2150)
    out = geocode_band(band, wide, 20.0, GeocodeOptions("sigma0"), tmp_path / "vv.tif")
    with rasterio.open(out) as ds:
        values = ds.read(1)
    valid = values[np.isfinite(values)]
    assert 0.02 < np.isfinite(values).mean() < 0.9
    assert valid.min() > 0.02  # the field's minimum is 0.025: nothing darker at the edges


def test_a_dem_holding_the_grid_heights_reproduces_the_ellipsoid_geometry(
    synthetic: Path, rome: Path, tmp_path: Path
) -> None:
    """Terrain mode with a DEM of the geolocation grid's own heights (given above the
    EGM96 geoid, like the Copernicus DEM) puts the square where the ellipsoid mode does:
    the DEM is read, the geoid added, the heights used."""
    a = open_grd(str(rome)).bands["vv"].annotation
    lon, lat = np.meshgrid(np.linspace(12.4, 12.6, 241), np.linspace(42.1, 41.9, 241))
    h = griddata(a.grid[:, [3, 2]], a.grid[:, 4], (lon, lat), method="linear")
    orthometric = (h - geoid_undulation(lon, lat)).astype(np.float32)
    dem = tmp_path / "dem.tif"
    with rasterio.open(
        dem,
        "w",
        driver="GTiff",
        width=241,
        height=241,
        count=1,
        dtype="float32",
        crs="EPSG:9707",
        transform=Affine(0.2 / 240, 0, 12.4 - 0.1 / 240, 0, -0.2 / 240, 42.1 + 0.1 / 240),
    ) as ds:
        ds.write(orthometric[None])
    band = open_grd(str(synthetic)).bands["vv"]
    out = geocode_band(band, map_grid(10.0), 10.0, GeocodeOptions("sigma0", str(dem)), tmp_path / "vv.tif")
    with rasterio.open(out) as ds:
        values = ds.read(1)
    np.testing.assert_allclose(_square_extent(values, 10.0), SQUARE, atol=10.0)


def test_the_real_rome_dem_shifts_the_square_by_its_height_above_the_grid(
    synthetic: Path, rome: Path, tmp_path: Path
) -> None:
    """With the real Rome DEM (EGM96 heights), the square moves towards the sensor (east:
    the descending pass looks west) by (DEM + geoid - grid height) / tan(incidence)."""
    dem = rome.parent / "Rome-30m-DEM.tif"
    band = open_grd(str(synthetic)).bands["vv"]
    out = geocode_band(band, map_grid(10.0), 10.0, GeocodeOptions("sigma0", str(dem)), tmp_path / "vv.tif")
    with rasterio.open(out) as ds:
        values = ds.read(1)
    west, east, _, _ = _square_extent(values, 10.0)
    assert -40.0 <= west - SQUARE[0] <= -10.0 and -40.0 <= east - SQUARE[1] <= -10.0  # measured: -20 m


def test_a_dem_that_does_not_cover_the_area_says_how_much_is_missing(rome: Path) -> None:
    dem = rome.parent / "Rome-30m-DEM.tif"
    grid = Grid(UTM, Affine(20.0, 0, 285000, 0, -20.0, 4660000), 1000, 1000)  # 20 km, the DEM ~8 km
    with pytest.raises(InputError, match=r"does not cover \d+% of the area.*km2.*give a DEM covering it"):
        check_dem_coverage(str(dem), grid)


# --- as an input of a run --------------------------------------------------------------------


def _pair(rome: Path, tmp: Path, after_field=field, orbit: str | None = None) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    before = grd_from_map(rome, tmp, field, WINDOW)
    name = ROME.replace("20211223T05", "20220104T05")
    after = grd_from_map(
        rome, tmp, after_field, WINDOW, name=name, replace_dates=("2021-12-23", "2022-01-04")
    )
    if orbit:
        manifest = after / "manifest.safe"
        manifest.write_text(
            manifest.read_text().replace(
                ">22</safe:relativeOrbitNumber>", f">{orbit}</safe:relativeOrbitNumber>"
            )
        )
    return before, after


def test_grd_pair_is_geocoded_onto_one_utm_grid_and_recorded(rome: Path, tmp_path: Path) -> None:
    before, after = _pair(rome, tmp_path)
    settings = Settings(output_dir=tmp_path / "out")
    plan = plan_pair(DetectRequest(before, after, "s1-flood", aoi="12.46,41.96,12.50,41.99"), settings)
    assert plan.grid.crs == UTM and plan.grid.resolution == (10.0, 10.0)
    assert plan.grid.transform.c % 10 == 0 and plan.grid.transform.f % 10 == 0
    for acq in plan.acquisitions:
        assert acq.assets["vv"].units == "linear" and Path(acq.assets["vv"].href).is_relative_to(
            tmp_path / "out" / "ard"
        )
    props = plan.properties
    assert props["eowatch:calibration"] == "sigma0 calibrated by eowatch from GRD, thermal noise removed"
    assert props["eowatch:s1_processing"]["before"]["geometry"].startswith("ellipsoid")
    assert props["eowatch:pairing"]["relative_orbit"] == [22, 22]
    assert plan.acquisitions[0].properties["sar:looks_equivalent_number"] == 4.4


def test_ard_grid_takes_the_aoi_utm_zone_and_the_requested_resolution(rome: Path) -> None:
    acq = resolve_s1_product(str(rome))
    from shapely.geometry import box

    grid = ard_grid([acq, acq], box(12.46, 41.96, 12.50, 41.99), None, 20.0)
    assert grid.crs == UTM and grid.resolution == (20.0, 20.0)
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds("EPSG:4326", UTM, 12.46, 41.96, 12.50, 41.99, densify_pts=21)
    assert grid.width == pytest.approx((right - left) / 20, abs=2)  # snapped outwards
    assert grid.height == pytest.approx((top - bottom) / 20, abs=2)


def test_mismatched_orbits_are_refused_before_geocoding(rome: Path, tmp_path: Path) -> None:
    before, after = _pair(rome, tmp_path, orbit="95")
    settings = Settings(output_dir=tmp_path / "out")
    with pytest.raises(PairingError, match="relative orbit"):
        plan_pair(DetectRequest(before, after, "s1-flood", aoi="12.46,41.96,12.50,41.99"), settings)
    assert not (tmp_path / "out" / "ard").exists()


def test_detect_on_grd_products_finds_the_flood_where_it_is(rome: Path, tmp_path: Path) -> None:
    """End to end: two GRD SAFEs (real metadata, speckled made-up pixels), a 1 km square
    flooded on the second date: s1-flood reports one polygon on it."""
    from shapely.geometry import box, shape

    rng = np.random.default_rng(0)
    water = (290000.0, 291000.0, 4650000.0, 4651000.0)

    def land(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.08 * (1 + 0.5 * np.sin(2 * np.pi * x / 700.0)) * rng.gamma(4.4, 1 / 4.4, x.shape)

    def flooded(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        inside = (x > water[0]) & (x < water[1]) & (y > water[2]) & (y < water[3])
        return np.where(inside, 0.003 * rng.gamma(4.4, 1 / 4.4, x.shape), land(x, y))

    before = grd_from_map(rome, tmp_path, land, WINDOW)
    after = grd_from_map(
        rome,
        tmp_path,
        flooded,
        WINDOW,
        name=ROME.replace("20211223T05", "20220104T05"),
        replace_dates=("2021-12-23", "2022-01-04"),
    )
    out = tmp_path / "out"
    result = _cli(
        "detect",
        "--before",
        str(before),
        "--after",
        str(after),
        "--preset",
        "s1-flood",
        "--aoi",
        "12.46,41.96,12.50,41.99",
        "--out",
        str(out),
        "--quiet",
        out=out,
    )
    assert result.exit_code == 0, result.output
    folder = Path(json.loads(result.stdout)["folder"])
    features = json.loads((folder / "changes.geojson").read_text())["features"]
    from rasterio.warp import transform_geom

    polygons = [shape(transform_geom("EPSG:4326", UTM, f["geometry"])) for f in features]
    truth = box(water[0], water[2], water[1], water[3])
    found = max(polygons, key=lambda p: p.intersection(truth).area)
    assert found.intersection(truth).area / truth.area > 0.9
    assert found.intersection(truth).area / found.area > 0.75
    item = json.loads((folder / "item.json").read_text())
    assert item["properties"]["eowatch:calibration"].startswith("sigma0 calibrated by eowatch from GRD")


def _cli(*args: str, out: Path):  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from eowatch.cli.main import cli

    return CliRunner().invoke(cli, list(args), env={"EOWATCH_OUTPUT_DIR": str(out)})


def test_ard_writes_items_that_detect_reads(rome: Path, tmp_path: Path) -> None:
    """`eowatch ard` with the Rome DEM: gamma0 RTC COGs and STAC Items that are inputs of
    `eowatch detect` as they are (no second geocoding, the provenance carried over)."""

    def flooded(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.where((x > 290000) & (x < 291000) & (y > 4650000) & (y < 4651000), 0.003, field(x, y))

    before, after = _pair(rome, tmp_path, flooded)
    dem = str(rome.parent / "Rome-30m-DEM.tif")
    ard = tmp_path / "ard"
    result = _cli(
        "ard",
        str(before),
        str(after),
        "--aoi",
        "12.46,41.96,12.50,41.99",
        "--dem",
        dem,
        "--resolution",
        "20",
        "--out",
        str(ard),
        out=tmp_path / "out",
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert len(items) == 2
    item = json.loads(Path(items[0]).read_text())
    assert item["properties"]["eowatch:s1_processing"]["calibration"] == "gamma0 RTC (terrain flattened)"
    assert item["properties"]["proj:code"] == "EPSG:32633"
    with rasterio.open(Path(items[0]).parent / "vv.tif") as ds:
        assert ds.res == (20.0, 20.0) and ds.tags()["units"] == "linear"
    result = _cli(
        "detect",
        "--before",
        items[0],
        "--after",
        items[1],
        "--preset",
        "s1-flood",
        "--out",
        str(tmp_path / "products"),
        "--quiet",
        out=tmp_path / "out",
    )
    assert result.exit_code == 0, result.output
    product = json.loads((Path(json.loads(result.stdout)["folder"]) / "item.json").read_text())
    assert product["properties"]["eowatch:calibration"].startswith(
        "gamma0 RTC (terrain flattened) calibrated"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--calibration", "gamma0-rtc"], "terrain flattening (gamma0 RTC) needs a DEM"),
        (["--dem", "{dem}", "--aoi", "12.40,41.96,12.50,41.99"], "does not cover 50% of the area"),
    ],
)
def test_grd_options_fail_in_one_line(rome: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    before, after = _pair(rome, tmp_path)
    dem = str(rome.parent / "Rome-30m-DEM.tif")
    args = [a.replace("{dem}", dem) for a in extra]
    if "--aoi" not in args:
        args += ["--aoi", "12.46,41.96,12.50,41.99"]
    result = _cli(
        "detect",
        "--before",
        str(before),
        "--after",
        str(after),
        "--preset",
        "s1-flood",
        *args,
        "--quiet",
        "--out",
        str(tmp_path / "products"),
        out=tmp_path / "out",
    )
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def _earth_search_layout(safe: Path, dest: Path, template: dict) -> Path:  # type: ignore[type-arg]
    """``safe`` laid out as Earth Search's sentinel-s1-l1c bucket holds a product (files
    renamed iw-vv.xml, calibration-iw-vv.xml, ..., measurement/iw-vv.tiff) with a STAC Item
    shaped like the real recorded one (``template``), its assets local files."""
    root = dest / safe.name
    (root / "annotation" / "calibration").mkdir(parents=True)
    (root / "annotation" / "rfi").mkdir()
    (root / "measurement").mkdir()
    shutil.copy(safe / "manifest.safe", root / "manifest.safe")
    (name,) = [p.name for p in (safe / "annotation").glob("*.xml")]
    shutil.copy(safe / "annotation" / name, root / "annotation" / "iw-vv.xml")
    for kind in ("calibration", "noise"):
        shutil.copy(
            safe / "annotation" / "calibration" / f"{kind}-{name}",
            root / "annotation" / "calibration" / f"{kind}-iw-vv.xml",
        )
    shutil.copy(safe / "annotation" / "rfi" / f"rfi-{name}", root / "annotation" / "rfi" / "rfi-iw-vv.xml")
    shutil.copy(next((safe / "measurement").glob("*.tiff")), root / "measurement" / "iw-vv.tiff")
    product = open_grd(str(safe))
    item = json.loads(json.dumps(template))
    item["id"] = product.id
    props = item["properties"]
    props.update(
        {
            "sar:polarizations": ["VV"],
            "sat:relative_orbit": 22,
            "sat:orbit_state": "descending",
            "datetime": product.start.isoformat(),
            "s1:product_identifier": product.id,
        }
    )
    for key in [k for k in props if k.startswith("storage:")]:
        props.pop(key)  # local files: no storage scheme (requester pays) to state
    item["stac_extensions"] = [e for e in item["stac_extensions"] if "/storage/" not in e]
    files = {
        "safe-manifest": "manifest.safe",
        "schema-product-vv": "annotation/rfi/rfi-iw-vv.xml",
        "schema-calibration-vv": "annotation/calibration/calibration-iw-vv.xml",
        "schema-noise-vv": "annotation/calibration/noise-iw-vv.xml",
        "vv": "measurement/iw-vv.tiff",
    }
    assets = {}
    for key, rel in files.items():
        asset = dict(template["assets"][key.replace("vv", "hh")])
        asset["href"] = str(root / rel)
        asset.pop("storage:refs", None)
        assets[key] = asset
    item["assets"] = assets
    item["links"] = []
    path = dest / f"{product.id}.json"
    path.write_text(json.dumps(item))
    return path


def test_earth_search_grd_items_read_like_the_safe(rome: Path, shared_data: Path, tmp_path: Path) -> None:
    """An Earth Search sentinel-1-grd Item (the recorded one's shape, its schema-product
    asset the RFI annotation as Earth Search has it; files local instead of requester-pays
    S3) gives the same backscatter as the SAFE folder it was made from."""
    template = json.loads(
        (shared_data / "stac" / "earth_search_v1" / "sentinel-1-grd_items.json").read_text()
    )["features"][0]
    before, after = _pair(rome, tmp_path / "safe", lambda x, y: field(x, y) * 0.5)
    items = [_earth_search_layout(p, tmp_path / "es", template) for p in (before, after)]
    aoi = "12.46,41.96,12.50,41.99"
    from_items = plan_pair(
        DetectRequest(str(items[0]), str(items[1]), "s1-flood", aoi=aoi), Settings(output_dir=tmp_path / "a")
    )
    from_safes = plan_pair(
        DetectRequest(before, after, "s1-flood", aoi=aoi), Settings(output_dir=tmp_path / "b")
    )
    assert from_items.grid == from_safes.grid
    for x, y in zip(from_items.acquisitions, from_safes.acquisitions, strict=True):
        with rasterio.open(x.assets["vv"].href) as a, rasterio.open(y.assets["vv"].href) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
