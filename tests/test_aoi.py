from __future__ import annotations

import json

import pytest

from eowatch.aoi import aoi_area_km2, check_aoi, parse_aoi
from eowatch.errors import AOIError


def test_bbox_wkt_and_geojson_give_the_same_area(tmp_path):
    bbox = parse_aoi("2.31,48.80,2.35,48.84")
    wkt = parse_aoi("POLYGON((2.31 48.80, 2.35 48.80, 2.35 48.84, 2.31 48.84, 2.31 48.80))")
    path = tmp_path / "aoi.geojson"
    path.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": json.loads(json.dumps(bbox.__geo_interface__)),
                    }
                ],
            }
        )
    )
    from_file = parse_aoi(str(path))
    assert bbox.equals(wkt) and bbox.equals(from_file)
    # 0.04 deg x 0.04 deg at 48.8 N: 2.93 km x 4.45 km
    assert aoi_area_km2(bbox) == pytest.approx(13.05, rel=0.01)


def test_self_intersecting_polygon_is_repaired():
    bowtie = parse_aoi("POLYGON((0 0, 1 1, 1 0, 0 1, 0 0))")
    assert bowtie.is_valid and bowtie.area == pytest.approx(0.5)


@pytest.mark.parametrize(
    "value, words",
    [
        ("3,4,1,2", "inverted"),
        ("1,2,3", "4 numbers"),
        ("LINESTRING(0 0, 1 1)", "Polygon"),
        ("POLYGON((500000 5000000, 500100 5000000, 500100 5000100, 500000 5000000))", "EPSG:4326"),
        ("{not json", "could not parse"),
        ("missing.geojson", "does not exist"),
    ],
)
def test_bad_aois_are_refused_with_the_fix(value, words):
    with pytest.raises(AOIError, match=words):
        parse_aoi(value)


def test_area_limit():
    big = parse_aoi("0,0,10,10")
    with pytest.raises(AOIError, match="EOWATCH_MAX_AOI_AREA_KM2"):
        check_aoi(big, max_area_km2=20_000)
    assert check_aoi(parse_aoi("0,0,0.1,0.1"), 20_000)


def test_whole_world_and_antimeridian_aois_are_measured_right():
    world = parse_aoi("-180,-90,180,90")
    assert aoi_area_km2(world) == pytest.approx(510_065_622, rel=1e-6)  # the WGS84 ellipsoid's surface
    fiji = parse_aoi("179.5,-17,-179.5,-16")  # minlon > maxlon: across the antimeridian
    assert fiji.geom_type == "MultiPolygon"
    assert aoi_area_km2(fiji) == pytest.approx(aoi_area_km2(parse_aoi("0,-17,1,-16")), rel=1e-6)
    for wide in ("-180,-60,180,60", "POLYGON((-179 0, 179 0, 179 0.1, -179 0.1, -179 0))"):
        with pytest.raises(AOIError, match="above the limit"):
            check_aoi(parse_aoi(wide), max_area_km2=20_000)


def test_file_paths_are_refused_when_files_are_not_allowed(tmp_path):
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps(parse_aoi("2.31,48.80,2.35,48.84").__geo_interface__))
    assert parse_aoi(str(path)).bounds == pytest.approx((2.31, 48.80, 2.35, 48.84))
    with pytest.raises(AOIError, match="is a file name"):
        parse_aoi(str(path), files=False)
    assert parse_aoi("2.31,48.80,2.35,48.84", files=False).area > 0  # WKT and bboxes still parse
