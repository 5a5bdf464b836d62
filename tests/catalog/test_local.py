"""The local catalogue: the bundled OSCD Paris pair (band rasters) and real
STAC Items, indexed into SQLite and searched like a remote provider."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box

from eowatch.catalog import PairingRules, SearchQuery, discover_pair, get_provider, propose_pairs
from eowatch.catalog.local import LocalCatalog
from eowatch.errors import ProviderError
from eowatch.settings import Settings

from .conftest import shifted

PARIS = box(2.32, 48.81, 2.34, 48.83)  # inside the bundled scene (2.31-2.36 E, 48.80-48.85 N)


def test_index_and_search_raster_scenes(paris: Path, tmp_path: Path) -> None:
    catalog = LocalCatalog(paris, tmp_path / "index.sqlite")
    report = catalog.index()
    assert report.added == 2 and "paris.geojson" in " ".join(report.skipped)
    assert catalog.index().added == 0  # incremental: nothing changed
    found = catalog.search(SearchQuery(PARIS, "2016-01-01", "2018-01-01"))
    assert [r.datetime.date().isoformat() for r in found] == ["2017-11-07", "2016-11-30"]
    assert {r.mgrs_tile for r in found} == {"31UDQ"} and found[0].collection == "local-sentinel-2-l1c"
    assert found[0].footprint.contains(PARIS) and "B04" in found[0].acquisition.assets
    assert catalog.search(SearchQuery(box(10, 10, 11, 11), "2016-01-01", "2018-01-01")) == []
    assert len(catalog.search(SearchQuery(PARIS, "2017-01-01", "2018-01-01"))) == 1
    pairs = propose_pairs(found, PairingRules.for_sensor("s2", max_gap_days=400), PARIS)
    assert len(pairs) == 1 and pairs[0].before.datetime.year == 2016
    assert "unknown" in pairs[0].reason  # L1C without SCL nor eo:cloud_cover


def test_discover_pair_from_local_folder(paris: Path, tmp_path: Path) -> None:
    settings = Settings(local_catalog_db=str(tmp_path / "i.sqlite"), pair_max_gap_days=400,
                               max_aoi_area_km2=100)  # fmt: skip
    pair = discover_pair(PARIS, "2016-01-01", "2017-12-31", "s2", f"local:{paris}", settings)
    assert pair.before.id.endswith("imgs_1") and pair.after.id.endswith("imgs_2")


def test_stac_items_folder(tmp_path: Path, pc_s1_items: list[dict[str, Any]], stac_data: Path) -> None:
    root = tmp_path / "catalog"
    root.mkdir()
    (root / "rtc.json").write_text(json.dumps(pc_s1_items))  # a JSON list of items
    (root / "earlier").mkdir()
    (root / "earlier" / "one.json").write_text(json.dumps(shifted(pc_s1_items[0], -12)))  # one Item
    shutil.copy(
        stac_data / "earth_search_v1" / "sentinel-2-l2a_items.json", root / "s2.json"
    )  # FeatureCollection
    (root / "bad.json").write_text("{not json")
    catalog = LocalCatalog(root, tmp_path / "index.sqlite")
    aoi = box(15.0, 30.2, 15.2, 30.4)
    found = catalog.search(SearchQuery(aoi, "2024-03-01", "2024-04-30", sensor="s1", relative_orbit=51,
                                       polarisations=("VV",)))  # fmt: skip
    assert len(found) == 2 and found[0].acquisition.assets["vv"].href.startswith("https://")
    assert (
        catalog.search(SearchQuery(aoi, "2024-03-01", "2024-04-30", sensor="s1", orbit_state="ascending"))
        == []
    )
    s2 = catalog.search(SearchQuery(box(-39.5, -4.9, -38.5, -4.6), "2025-07-31", "2025-07-31"))
    assert sorted(r.mgrs_tile for r in s2) == ["24MVV", "24MWV"]
    (root / "earlier" / "one.json").unlink()
    assert catalog.index().removed == 1
    assert len(catalog.search(SearchQuery(aoi, "2024-03-01", "2024-04-30", sensor="s1"))) == 1


def test_missing_folder_is_a_provider_error(tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match="not a folder"):
        get_provider(f"local:{tmp_path / 'nope'}", Settings())
