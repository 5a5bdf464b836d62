"""Tests of change polygonization and the vector writers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyogrio
import pyogrio.raw
import pytest
from affine import Affine
from pyproj import Geod, Transformer
from rasterio.crs import CRS
from shapely.geometry import shape

from eowatch.errors import ProductWriteError
from eowatch.io.vector import ChangePolygons, polygonize_changes, write_flatgeobuf, write_geojson
from eowatch.model import NO_DATA_CLASS, ChangeClass, ChangeResult, Grid

UTM = Grid(CRS.from_epsg(32631), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5400000.0), 60, 50)
GEO = Grid(CRS.from_epsg(4326), Affine(1e-4, 0.0, 2.3, 0.0, -1e-4, 48.85), 60, 50)
#: A 10 m pixel of UTM on its central meridian (scale 0.9996) on the ellipsoid, in m².
UTM_PIXEL_M2 = 100.0 / 0.9996**2
TABLE = (
    ChangeClass(0, "no change", (0, 0, 0)),
    ChangeClass(1, "increase", (255, 0, 0)),
    ChangeClass(2, "decrease", (0, 0, 255)),
    ChangeClass(3, "loss", (255, 255, 0)),
)


def _result(grid: Grid, *, confidence: bool = True) -> ChangeResult:
    """A 10x10 'increase' block, a 3x5 'decrease' block, a lone 'loss' pixel and some no-data."""
    classes = np.zeros(grid.shape, np.uint8)
    classes[5:15, 5:15] = 1
    classes[30:33, 40:45] = 2
    classes[45, 2] = 3
    classes[:, 58:] = NO_DATA_CLASS
    statistic = np.arange(grid.height * grid.width, dtype=np.float32).reshape(grid.shape) / 100
    statistic[classes == NO_DATA_CLASS] = np.nan
    # 0.9 on the first five rows of the 'increase' block (statistic below 6), 0.5 elsewhere.
    conf = _confidence if confidence else None
    return ChangeResult(classes, statistic, "log_ratio", TABLE, grid, confidence_of=conf)


def _confidence(statistic: np.ndarray) -> np.ndarray:
    return np.where(statistic < 6.0, 0.9, 0.5).astype(np.float32)


def _features(result: ChangeResult, **kw: float) -> list[dict]:
    return polygonize_changes(result, **kw).to_features()


def _by_class(features: list[dict]) -> dict[int, dict]:
    return {f["properties"]["class"]: f for f in features}


def test_projected_areas_stats_and_order() -> None:
    result = _result(UTM)
    features = _features(result)
    assert [f["id"] for f in features] == [1, 2, 3]
    assert [f["properties"]["class"] for f in features] == [1, 2, 3]  # area descending
    block = _by_class(features)[1]["properties"]
    assert block["area_m2"] == pytest.approx(10_000.0, rel=1e-3)
    assert block["pixel_count"] == 100
    assert block["mean_statistic"] == pytest.approx(float(result.statistic[5:15, 5:15].mean()), rel=1e-6)
    assert block["max_statistic"] == pytest.approx(float(result.statistic[14, 14]))
    assert block["confidence"] == pytest.approx(0.7)
    assert block["direction"] == "increase" and block["class_name"] == "increase"
    assert _by_class(features)[2]["properties"]["direction"] == "decrease"
    assert _by_class(features)[2]["properties"]["area_m2"] == pytest.approx(1_500.0, rel=1e-3)
    assert "direction" not in _by_class(features)[3]["properties"]


def test_geographic_areas_are_geodesic() -> None:
    result = _result(GEO)
    block = _by_class(_features(result))[1]["properties"]
    expected = float(GEO.pixel_area_m2()[5:15].sum() * 10)  # spherical estimate, ~0.3 %
    assert block["area_m2"] == pytest.approx(expected, rel=1e-2)
    exact = _ellipsoid_zone_area(48.85 - 5e-4, 48.85 - 15e-4, 10e-4)  # ~7.3 m x 11.1 m pixels
    assert block["area_m2"] == pytest.approx(exact, rel=1e-4)


def _ellipsoid_zone_area(lat1: float, lat2: float, dlon: float) -> float:
    """Exact area of a lat/lon rectangle on the WGS84 ellipsoid (authalic-latitude formula)."""
    geod = Geod(ellps="WGS84")
    e2 = geod.es
    e, b2 = math.sqrt(e2), geod.b**2

    def q(lat: float) -> float:
        s = math.sin(math.radians(lat))
        return s / (1 - e2 * s * s) + math.log((1 + e * s) / (1 - e * s)) / (2 * e)

    return abs(math.radians(dlon) * b2 / 2 * (q(lat2) - q(lat1)))


def test_long_thin_geographic_polygon_follows_parallels() -> None:
    grid = Grid(CRS.from_epsg(4326), Affine(1e-4, 0.0, 2.3, 0.0, -1e-4, 48.85), 2200, 6)
    classes = np.zeros(grid.shape, np.uint8)
    classes[2:4, 100:2100] = 3  # 0.2 degree wide, 2 pixels tall
    result = ChangeResult(classes, np.ones(grid.shape, np.float32), "d", TABLE, grid)
    (feature,) = _features(result)
    expected = _ellipsoid_zone_area(48.85 - 2e-4, 48.85 - 4e-4, 0.2)
    assert feature["properties"]["area_m2"] == pytest.approx(expected, rel=1e-4)


def test_projected_area_uses_linear_unit_factor() -> None:
    feet = Grid(CRS.from_epsg(2263), Affine(10.0, 0.0, 1_000_000.0, 0.0, -10.0, 200_000.0), 60, 50)
    block = _by_class(_features(_result(feet)))[1]["properties"]
    # US survey feet; the state plane's scale there is within 1e-5 of 1
    assert block["area_m2"] == pytest.approx(100 * (10 * 1200 / 3937) ** 2, rel=1e-5)


def test_projected_areas_are_true_areas_whatever_the_projection() -> None:
    """Web Mercator pixels at Beirut (33.9 N) are 1.45 times larger on the map than on
    the ground: the areas are those on the ellipsoid, not the grid's."""
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True).transform(35.5, 33.9)
    mercator = Grid(CRS.from_epsg(3857), Affine(10.0, 0.0, x, 0.0, -10.0, y), 60, 50)
    block = _by_class(_features(_result(mercator)))[1]["properties"]
    to_lonlat = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    (lon1, lon2), (lat1, lat2) = to_lonlat.transform([x + 50, x + 150], [y - 50, y - 150])
    assert block["area_m2"] == pytest.approx(_ellipsoid_zone_area(lat1, lat2, lon2 - lon1), rel=1e-4)
    assert 10_000 / block["area_m2"] == pytest.approx(1.45, abs=0.01)


def test_geometry_is_lonlat_and_rfc7946_oriented() -> None:
    for grid in (UTM, GEO):
        features = _features(_result(grid))
        for feature in features:
            geom = shape(feature["geometry"])
            lon, lat = geom.exterior.coords[0]
            assert 2.0 < lon < 3.5 and 48.0 < lat < 49.0
            assert geom.is_valid and geom.exterior.is_ccw


def test_stats_and_nulls_without_confidence() -> None:
    features = _features(_result(UTM, confidence=False))
    assert all(f["properties"]["confidence"] is None for f in features)
    lone = _by_class(features)[3]["properties"]
    assert lone["pixel_count"] == 1 and lone["area_m2"] == pytest.approx(UTM_PIXEL_M2, rel=1e-5)


def test_regions_split_by_class_and_4_connectivity() -> None:
    classes = np.zeros(UTM.shape, np.uint8)
    classes[0:2, 0:2] = 1
    classes[0:2, 2:4] = 2  # touches the first block: separate class, separate polygon
    classes[10, 10] = classes[11, 11] = 1  # diagonal only: two regions
    statistic = np.zeros(UTM.shape, np.float32)
    statistic[10, 10], statistic[11, 11] = np.nan, 4.0
    result = ChangeResult(classes, statistic, "d", TABLE, UTM)
    features = _features(result)
    assert sorted(f["properties"]["pixel_count"] for f in features) == [1, 1, 4, 4]
    singles = [f["properties"] for f in features if f["properties"]["pixel_count"] == 1]
    assert sorted((p["mean_statistic"] is None, p["max_statistic"]) for p in singles) == [
        (False, 4.0),
        (True, None),
    ]
    assert [f["id"] for f in features] == [1, 2, 3, 4]


def test_no_change_gives_no_features() -> None:
    classes = np.zeros(UTM.shape, np.uint8)
    classes[0] = NO_DATA_CLASS
    result = ChangeResult(classes, np.zeros(UTM.shape, np.float32), "d", TABLE, UTM)
    assert polygonize_changes(result).to_features() == [] and len(polygonize_changes(result)) == 0


def test_simplify_reduces_vertices() -> None:
    classes = np.zeros(UTM.shape, np.uint8)
    rows, cols = np.indices(UTM.shape)
    classes[(rows - 25) ** 2 + (cols - 25) ** 2 < 20**2] = 1  # a pixelated disc
    result = ChangeResult(classes, np.ones(UTM.shape, np.float32), "d", TABLE, UTM)
    (raw,) = _features(result)
    (simple,) = _features(result, simplify_tolerance_px=1.0)
    assert len(simple["geometry"]["coordinates"][0]) < len(raw["geometry"]["coordinates"][0])
    assert simple["properties"]["area_m2"] == raw["properties"]["area_m2"]  # area of the pixels


def test_write_geojson(tmp_path: Path) -> None:
    polygons = polygonize_changes(_result(UTM, confidence=False))
    path = write_geojson(polygons, tmp_path / "changes.geojson")
    data = json.loads(path.read_text())
    assert data["type"] == "FeatureCollection" and "crs" not in data
    assert len(data["features"]) == 3
    first = data["features"][0]
    assert first["id"] == 1 and first["properties"]["confidence"] is None
    lon, lat = first["geometry"]["coordinates"][0][0]
    assert 2.0 < lon < 3.5 and 48.0 < lat < 49.0
    assert data["features"] == polygons.to_features()


def test_write_geojson_writes_nan_as_null(tmp_path: Path) -> None:
    classes = np.zeros(UTM.shape, np.uint8)
    classes[2:4, 2:4] = 1
    result = ChangeResult(classes, np.full(UTM.shape, np.nan, np.float32), "d", TABLE, UTM)
    data = json.loads(write_geojson(polygonize_changes(result), tmp_path / "nan.geojson").read_text())
    props = data["features"][0]["properties"]
    assert props["mean_statistic"] is None and props["max_statistic"] is None and props["pixel_count"] == 4


@pytest.mark.parametrize("grid", [UTM, GEO], ids=["utm", "geographic"])
def test_write_flatgeobuf(tmp_path: Path, grid: Grid) -> None:
    path = write_flatgeobuf(polygonize_changes(_result(grid)), tmp_path / "changes.fgb")
    info = pyogrio.read_info(path)
    assert info["features"] == 3
    assert info["crs"] == "EPSG:4326"
    assert info["geometry_type"] == "Polygon"
    assert {
        "id",
        "class",
        "class_name",
        "area_m2",
        "mean_statistic",
        "max_statistic",
        "confidence",
        "pixel_count",
        "direction",
    } <= set(info["fields"])
    assert info["capabilities"]["fast_spatial_filter"]  # packed R-tree present
    meta, _, _, columns = pyogrio.raw.read(path)
    row = dict(zip(meta["fields"], (c[list(columns[0]).index(1)] for c in columns), strict=True))
    assert row["class"] == 1 and row["class_name"] == "increase" and row["pixel_count"] == 100


def test_write_empty_flatgeobuf(tmp_path: Path) -> None:
    path = write_flatgeobuf(ChangePolygons.empty(), tmp_path / "empty.fgb")
    info = pyogrio.read_info(path, force_feature_count=True)
    assert info["features"] == 0
    assert info["crs"] == "EPSG:4326"
    assert "area_m2" in set(info["fields"])


def test_write_errors_name_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ProductWriteError, match="GeoJSON .*out.geojson"):
        write_geojson(ChangePolygons.empty(), blocker / "out.geojson")
    with pytest.raises(ProductWriteError, match="FlatGeobuf .*out.fgb"):
        write_flatgeobuf(ChangePolygons.empty(), blocker / "out.fgb")


def test_adjacent_classes_match_per_class_labelling() -> None:
    from scipy import ndimage

    rng = np.random.default_rng(7)
    classes = rng.choice(
        np.array([0, 1, 2, 3, NO_DATA_CLASS], np.uint8), UTM.shape, p=[0.3, 0.25, 0.2, 0.2, 0.05]
    )
    statistic = rng.normal(size=UTM.shape).astype(np.float32)
    result = ChangeResult(classes, statistic, "d", TABLE, UTM)
    features = _features(result)
    expected = []
    for value in (1, 2, 3):
        labels, n = ndimage.label(classes == value)
        for k in range(1, n + 1):
            region = labels == k
            expected.append((value, int(region.sum()), round(float(statistic[region].mean()), 4)))
    got = [
        (p["class"], p["pixel_count"], round(p["mean_statistic"], 4))
        for p in (f["properties"] for f in features)
    ]
    assert sorted(got) == sorted(expected)
    for feature in features:
        pixels = feature["properties"]["pixel_count"]
        assert feature["properties"]["area_m2"] == pytest.approx(UTM_PIXEL_M2 * pixels, rel=1e-5)
