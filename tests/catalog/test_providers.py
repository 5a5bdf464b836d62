"""SearchQuery validation, the provider registry and records from real items."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
import pytest
from shapely.geometry import box

from eowatch.catalog import DiscoveryProvider, SearchQuery, SearchResults, get_provider, list_providers
from eowatch.catalog.providers import record_from_item, register_provider, rejection
from eowatch.errors import InputError
from eowatch.settings import Settings

from .conftest import load_items

AOI = box(2.2, 48.8, 2.4, 48.9)


def test_query_normalises_and_validates() -> None:
    q = SearchQuery(AOI, "2024-04-01", "2024-04-30", sensor="S1", polarisations=("vv", " VH"),
                    orbit_state="Descending")  # fmt: skip
    assert q.sensor == "sentinel-1" and q.polarisations == ("VH", "VV") and q.orbit_state == "descending"
    assert q.start == datetime(2024, 4, 1, tzinfo=UTC)
    assert q.end.date().isoformat() == "2024-04-30" and q.end.hour == 23  # a bare end date includes the day
    assert q.datetime_range.startswith("2024-04-01T00:00:00.000000Z/2024-04-30T23:59:59")
    for bad in (dict(sensor="landsat"), dict(end="2024-03-01"), dict(max_cloud_cover=120), dict(limit=0),
                dict(orbit_state="sideways"), dict(start="yesterday")):  # fmt: skip
        with pytest.raises(InputError):
            SearchQuery(**{"aoi": AOI, "start": "2024-04-01", "end": "2024-04-30", **bad})  # type: ignore[arg-type]


def test_registry() -> None:
    assert {"earth-search", "planetary-computer", "cdse", "local", "stac-api"} <= set(list_providers())
    assert get_provider("cdse", Settings()).url == "https://stac.dataspace.copernicus.eu/v1"  # type: ignore[attr-defined]
    assert get_provider(None, Settings()).name == "earth-search"
    with pytest.raises(InputError, match="unknown discovery provider 'nope'.*earth-search"):
        get_provider("nope", Settings())
    with pytest.raises(InputError, match="EOWATCH_STAC_API_URL"):
        get_provider("stac-api", Settings())

    class Static:
        name = "static"

        def __init__(self, settings: Any) -> None:
            self.settings = settings

        def search(self, query: SearchQuery) -> SearchResults:
            return SearchResults(provider=self.name)

    register_provider("static-test", Static, replace=True)
    provider = get_provider("static-test", Settings())
    assert (
        isinstance(provider, DiscoveryProvider)
        and provider.search(SearchQuery(AOI, "2024-01-01", "2024-01-02")) == []
    )
    with pytest.raises(ValueError, match="twice"):
        register_provider("static-test", lambda s: Static(s))


def test_records_from_real_items_read_tiles_orbits_and_clouds(stac_data: Path) -> None:
    es = pystac.Item.from_dict(load_items(stac_data / "earth_search_v1" / "sentinel-2-l2a_items.json")[-1])
    pc = pystac.Item.from_dict(load_items(stac_data / "planetary_computer" / "sentinel-2-l2a_items.json")[0])
    s1 = pystac.Item.from_dict(load_items(stac_data / "planetary_computer" / "sentinel-1-rtc_items.json")[0])
    es_rec, pc_rec, s1_rec = (record_from_item(i, "test") for i in (es, pc, s1))
    assert es_rec.mgrs_tile == "13TDE" and pc_rec.mgrs_tile == "47XML"
    assert es_rec.scene_cloud_cover == pytest.approx(0.000299) and es_rec.collection == "sentinel-2-l2a"
    assert (s1_rec.sensor, s1_rec.relative_orbit, s1_rec.orbit_state) == ("sentinel-1", 51, "descending")
    assert s1_rec.polarisations == ("VH", "VV")
    q = SearchQuery(s1_rec.footprint.centroid.buffer(0.01), "2024-04-19", "2024-04-19", sensor="s1")
    assert rejection(q, s1_rec) is None
    assert "orbit" in str(
        rejection(SearchQuery(q.aoi, q.start, q.end, sensor="s1", relative_orbit=7), s1_rec)
    )
    assert "outside the period" in str(
        rejection(SearchQuery(q.aoi, "2024-05-01", "2024-05-02", sensor="s1"), s1_rec)
    )
    assert "sensor" in str(rejection(SearchQuery(q.aoi, q.start, q.end), s1_rec))
