"""Fixtures of the discovery tests: the recorded real STAC responses, derived
item sets, and the replay STAC API server (a subprocess on 127.0.0.1)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .stac_replay import serve


def load_items(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return list(data["features"] if isinstance(data, dict) else data)


def shifted(item: dict[str, Any], days: float, suffix: str = "", **props: Any) -> dict[str, Any]:
    """A copy of a real item ``days`` later (negative: earlier), id suffixed, properties overridden."""
    out = copy.deepcopy(item)
    out["id"] = f"{item['id']}{suffix or f'-shift{days:+g}d'}"
    for key in ("datetime", "start_datetime", "end_datetime"):
        if out["properties"].get(key):
            when = datetime.fromisoformat(out["properties"][key].replace("Z", "+00:00")) + timedelta(
                days=days
            )
            out["properties"][key] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out["properties"].update(props)
    return out


@pytest.fixture(scope="session")
def stac_data(shared_data: Path) -> Path:
    return shared_data / "stac"


@pytest.fixture(scope="session")
def pc_s1_items(stac_data: Path) -> list[dict[str, Any]]:
    """The 4 real Planetary Computer sentinel-1-rtc items (orbit 51, descending, 2024-04-19)."""
    return load_items(stac_data / "planetary_computer" / "sentinel-1-rtc_items.json")


@pytest.fixture(scope="session")
def es_s2_items(stac_data: Path) -> list[dict[str, Any]]:
    """The 7 real Earth Search v1 sentinel-2-l2a items."""
    return load_items(stac_data / "earth_search_v1" / "sentinel-2-l2a_items.json")


MALFORMED: list[Any] = [
    "not an item",
    {"type": "Feature", "stac_version": "1.0.0", "id": "broken-no-properties", "geometry": None, "links": [],
     "assets": {}, "bbox": [-40, -5, -38, -4], "collection": "sentinel-2-l2a"},
    {"type": "Feature", "stac_version": "1.0.0", "id": "broken-no-geometry", "geometry": None, "links": [],
     "assets": {}, "properties": {"datetime": "2025-07-31T13:03:25Z"}, "collection": "sentinel-2-l2a"},
    {"type": "Feature", "stac_version": "1.0.0", "id": "broken-bad-date", "links": [], "assets": {},
     "geometry": {"type": "Point", "coordinates": [-39.5, -4.7]}, "bbox": [-39.5, -4.7, -39.5, -4.7],
     "properties": {"datetime": "yesterday"}, "collection": "sentinel-2-l2a"},
]  # fmt: skip


@pytest.fixture(scope="session")
def replay(
    stac_data: Path,
    pc_s1_items: list[dict[str, Any]],
    es_s2_items: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """Base URL of the replay server. Datasets (``{base}/{scenario}/{dataset}``):
    ``es-cql2`` and ``es-point`` replay the Earth Search cassettes; ``pc`` serves
    the real PC items plus S1 copies 12 and 24 days earlier; ``es`` the real
    Earth Search S2 items plus copies 5 days earlier; ``broken`` the Earth Search
    items mixed with malformed ones."""
    work = tmp_path_factory.mktemp("stac-replay")
    rec = stac_data / "recorded_api_responses"
    pc_s2 = load_items(stac_data / "planetary_computer" / "sentinel-2-l2a_items.json")
    s1_earlier = [shifted(i, -12) for i in pc_s1_items] + [shifted(pc_s1_items[0], -24)]
    datasets = {
        "pc": pc_s1_items + s1_earlier + pc_s2,
        "es": es_s2_items + [shifted(i, -5) for i in es_s2_items],
        "broken": es_s2_items[:3] + MALFORMED,
    }
    paths = {}
    for name, items in datasets.items():
        paths[name] = str(work / f"{name}.json")
        Path(paths[name]).write_text(json.dumps(items))
    config = {
        "landing_cassette": str(rec / "earth_search_v1_search_cql2_filter.vcr.yaml"),
        "cassettes": {
            "es-cql2": str(rec / "earth_search_v1_search_cql2_filter.vcr.yaml"),
            "es-point": str(rec / "earth_search_v1_search_s2l2a_landsat_point.vcr.yaml"),
        },
        "datasets": paths,
    }
    with serve(config, work) as base:
        yield base
