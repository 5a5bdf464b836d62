"""Cloud cover over the AOI from a SCL raster (local and over HTTP), with the
scene-metadata fallback."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
from affine import Affine
from pyproj import Transformer
from shapely.geometry import Polygon

from eowatch.catalog import SearchQuery, SearchResults, aoi_cloud_cover, discover
from eowatch.catalog.providers import Record, record_from_item
from eowatch.settings import Settings

from ..conftest import write_raster
from ..http_server import serve


def utm_polygon(x0: float, y0: float, x1: float, y1: float) -> Polygon:
    to_ll = Transformer.from_crs("EPSG:32724", "EPSG:4326", always_xy=True)
    return Polygon([to_ll.transform(x, y) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))])


@pytest.fixture
def scl_file(tmp_path: Path) -> Path:
    """A SCL raster inside tile 24MVV (UTM 24S, 20 m): west half cloud (9), east half vegetation (4)."""
    scl = np.full((500, 500), 4, dtype=np.uint8)
    scl[:, :250] = 9
    return write_raster(tmp_path / "SCL.tif", scl, crs="EPSG:32724",
                        transform=Affine(20, 0, 400000, 0, -20, 9490000), nodata=0)  # fmt: skip


def record_with_scl(es_s2_items: list[dict[str, Any]], href: str | None) -> Record:
    item = copy.deepcopy(next(i for i in es_s2_items if i["id"] == "S2B_24MVV_20250731_0_L2A"))
    item["links"] = []  # no self link: local hrefs stay local paths
    if href is None:
        item["assets"].pop("scl")
        item["assets"].pop("scl-jp2")
    else:
        item["assets"]["scl"]["href"] = href
        item["assets"].pop("scl-jp2")
    return record_from_item(pystac.Item.from_dict(item, migrate=False), "test")


AOI = utm_polygon(402000, 9482000, 408000, 9488000)  # centred on the cloud edge


def test_cloud_over_aoi_from_scl(es_s2_items: list[dict[str, Any]], scl_file: Path) -> None:
    record = record_with_scl(es_s2_items, str(scl_file))
    cloud = aoi_cloud_cover(record, AOI, resolution_m=100)
    assert cloud.source == "scl" and cloud.fraction == pytest.approx(0.5, abs=0.05)
    assert cloud.valid_fraction == pytest.approx(1 - cloud.fraction)
    clear = aoi_cloud_cover(record, utm_polygon(406000, 9482000, 409000, 9488000), resolution_m=100)
    assert clear.fraction == pytest.approx(0.0, abs=0.03)
    # the scene says 34.8 %: over this AOI it is different, which is the point
    assert record.scene_cloud_cover == pytest.approx(34.760532)
    outside = aoi_cloud_cover(record, utm_polygon(411000, 9482000, 413000, 9484000), resolution_m=100)
    assert outside.fraction == pytest.approx(1.0)  # beyond the SCL raster: no data is no observation


def test_cloud_over_aoi_from_scl_over_http(es_s2_items: list[dict[str, Any]], scl_file: Path) -> None:
    with serve(scl_file.parent) as base:
        cloud = aoi_cloud_cover(record_with_scl(es_s2_items, f"{base}/SCL.tif"), AOI, resolution_m=100)
    assert cloud.source == "scl" and cloud.fraction == pytest.approx(0.5, abs=0.05)


def test_fallback_to_scene_metadata(es_s2_items: list[dict[str, Any]], tmp_path: Path) -> None:
    unreadable = aoi_cloud_cover(record_with_scl(es_s2_items, str(tmp_path / "missing.tif")), AOI)
    assert unreadable.source == "scene-metadata" and "SCL unreadable" in unreadable.detail
    assert unreadable.fraction == pytest.approx(0.34760532, abs=1e-6)
    no_scl = aoi_cloud_cover(record_with_scl(es_s2_items, None), AOI)
    assert no_scl.source == "scene-metadata" and no_scl.detail == "no SCL asset"
    assert "scene-metadata" in no_scl.describe()


class Fixed:
    """A provider that returns the records it was given (a real object, not a mock)."""

    name = "fixed"

    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def search(self, query: SearchQuery) -> SearchResults:
        return SearchResults(self.records, provider=self.name)


def test_discover_filters_on_cloud_over_the_aoi(es_s2_items: list[dict[str, Any]], scl_file: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    cloudy = record_with_scl(es_s2_items, str(scl_file))
    fallback = record_with_scl(es_s2_items, str(tmp_path / "missing.tif"))
    query = SearchQuery(AOI, "2025-07-31", "2025-07-31", max_cloud_cover=40)
    settings = Settings(aoi_cloud_resolution_m=100)
    kept = discover(query, Fixed([cloudy, fallback]), settings)
    assert kept == [fallback]  # 50 % over the AOI from the SCL is above 40; 34.8 % from metadata is not
    assert any("above 40 %" in n for n in kept.notes)
    assert cloudy.cloud is not None and cloudy.cloud.source == "scl"
