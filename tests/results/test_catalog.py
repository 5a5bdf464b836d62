"""The results catalogue on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pystac
import pytest

from eowatch.errors import InputError, NotFoundError
from eowatch.results import ResultsCatalog

# Footprint of the Paris products (lon/lat): about 2.3101..2.3555, 48.7976..48.8451.
INSIDE = {"type": "Point", "coordinates": [2.33, 48.82]}
OUTSIDE = {"type": "Point", "coordinates": [3.33, 48.82]}
# A triangle whose bbox overlaps the footprint's corner but which does not touch it:
# the SQL bbox prefilter keeps the items, the exact test must drop them.
NEAR_CORNER = {
    "type": "Polygon",
    "coordinates": [[[2.30, 48.79], [2.3105, 48.79], [2.30, 48.798], [2.30, 48.79]]],
}


def _ids(items: list[dict]) -> list[str]:
    return [i["id"] for i in items]


def test_ingest_registers_items_and_collections(
    filled: ResultsCatalog, products: dict[str, list[Path]]
) -> None:
    colls = {c["id"]: c for c in filled.list_collections()}
    assert set(colls) == {"urban", "water"}
    urban = colls["urban"]
    minx, miny, maxx, maxy = urban["extent"]["spatial"]["bbox"][0]
    assert 2.30 < minx < maxx < 2.36 and 48.79 < miny < maxy < 48.85
    assert urban["extent"]["temporal"]["interval"][0] == ["2016-11-30T00:00:00Z", "2017-11-07T00:00:00Z"]
    pystac.Collection.from_dict(urban)

    folder = products["urban"][0]
    source = json.loads((folder / "item.json").read_text())
    item = filled.get_item("urban", source["id"])
    assert item["collection"] == "urban"
    assert item["properties"]["eowatch:preset"] == source["properties"]["eowatch:preset"]
    assert item["properties"]["datetime"] == "2017-11-07T00:00:00Z"
    assert {a["href"] for a in item["assets"].values()} == {a["href"] for a in source["assets"].values()}
    pystac.Item.from_dict(item)
    path, media = filled.asset_file("urban", source["id"], "quicklook")
    assert path == folder / "quicklook.png" and media == "image/png"


def test_reingest_replaces_the_item(filled: ResultsCatalog, products: dict[str, list[Path]]) -> None:
    before = filled.search(collections=["urban"])
    again = filled.ingest_folder(products["urban"][0], "urban")
    after = filled.search(collections=["urban"])
    assert before.matched == after.matched == 2
    assert again == filled.get_item("urban", again["id"])
    # the same run may also be filed in a second collection
    filled.ingest_folder(products["urban"][0], "water")
    assert filled.search(ids=[again["id"]]).matched == 2


def test_ingest_refuses_incomplete_folders(
    catalog: ResultsCatalog, products: dict[str, list[Path]], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(products["water"][0], broken)
    (broken / "statistic.tif").unlink()
    with pytest.raises(InputError, match="statistic"):
        catalog.ingest_folder(broken, "water")
    with pytest.raises(InputError, match="no item.json"):
        catalog.ingest_folder(tmp_path, "water")
    escaping = tmp_path / "escaping"
    shutil.copytree(products["water"][0], escaping)
    data = json.loads((escaping / "item.json").read_text())
    data["assets"]["quicklook"]["href"] = "../broken/quicklook.png"
    (escaping / "item.json").write_text(json.dumps(data))
    with pytest.raises(InputError, match="outside"):
        catalog.ingest_folder(escaping, "water")
    assert catalog.search().matched == 0


def test_search_bbox_and_intersects(filled: ResultsCatalog) -> None:
    assert filled.search(bbox=[2.0, 48.0, 3.0, 49.0]).matched == 3
    assert filled.search(bbox="2.0,48.0,3.0,49.0").matched == 3
    assert filled.search(bbox=[3.0, 48.0, 4.0, 49.0]).matched == 0
    assert filled.search(bbox=[170.0, 48.0, -170.0, 49.0]).matched == 0  # across the antimeridian
    assert filled.search(bbox=[170.0, 48.0, 2.32, 49.0]).matched == 3
    assert filled.search(intersects=INSIDE).matched == 3
    assert filled.search(intersects=OUTSIDE).matched == 0
    assert filled.search(intersects=NEAR_CORNER).matched == 0
    with pytest.raises(InputError):
        filled.search(bbox=[2.0, 49.0, 3.0, 48.0])
    with pytest.raises(InputError):
        filled.search(intersects={"type": "Polygon", "coordinates": "nope"})


@pytest.mark.parametrize(
    ("interval", "count"),
    [
        ("2017-01-01T00:00:00Z/..", 3),
        ("../2016-01-01T00:00:00Z", 0),
        ("2016-12-01T00:00:00Z", 3),  # inside the before/after span of each run
        ("2017-11-07T00:00:00Z/2017-11-07T00:00:00Z", 3),
        ("2018-01-01T00:00:00+01:00/2019-01-01T00:00:00Z", 0),
        ("/2016-11-30T00:00:00Z", 3),
    ],
)
def test_search_datetime(filled: ResultsCatalog, interval: str, count: int) -> None:
    assert filled.search(datetime=interval).matched == count


@pytest.mark.parametrize(
    "bad", ["2017-01-01", "2017-01-01T00:00:00", "../..", "2018-01-01T00:00:00Z/2017-01-01T00:00:00Z"]
)
def test_search_datetime_refuses_malformed(filled: ResultsCatalog, bad: str) -> None:
    with pytest.raises(InputError):
        filled.search(datetime=bad)


def test_search_ids_and_collections(filled: ResultsCatalog, products: dict[str, list[Path]]) -> None:
    water = filled.search(collections=["water"])
    assert water.matched == 1 and water.items[0]["collection"] == "water"
    first = water.items[0]["id"]
    assert _ids(filled.search(ids=[first]).items) == [first]
    assert filled.search(ids=[first], collections=["urban"]).matched == 0
    assert filled.search(collections=["nope"]).matched == 0


@pytest.mark.parametrize("spatial", [{}, {"intersects": INSIDE}], ids=["sql", "exact"])
def test_paging_walks_every_item_newest_first(filled: ResultsCatalog, spatial: dict) -> None:
    seen, token = [], None
    while True:
        page = filled.search(limit=1, token=token, **spatial)
        assert page.matched == 3 and len(page.items) == 1
        seen.extend(page.items)
        token = page.next_token
        if token is None:
            break
    keys = [(i["properties"]["datetime"], i["collection"], i["id"]) for i in seen]
    assert len(set(keys)) == 3
    # newest first, then collection and id
    assert keys == sorted(keys, key=lambda k: (-int(k[0][:4]), k[1], k[2]))
    assert _ids(filled.search(limit=10, **spatial).items) == [k[2] for k in keys]


def test_search_refuses_bad_limits_and_tokens(filled: ResultsCatalog) -> None:
    with pytest.raises(InputError):
        filled.search(limit=0)
    with pytest.raises(InputError, match="token"):
        filled.search(token="not-a-token")


def test_not_found_and_no_traversal(filled: ResultsCatalog) -> None:
    item_id = filled.search(collections=["water"]).items[0]["id"]
    with pytest.raises(NotFoundError):
        filled.get_item("water", "nope")
    with pytest.raises(NotFoundError):
        filled.get_collection("nope")
    for key in ("../item.json", "item", "/etc/passwd"):
        with pytest.raises(NotFoundError):
            filled.asset_file("water", item_id, key)


def test_export_static_catalogue(filled: ResultsCatalog, tmp_path: Path) -> None:
    root = filled.export_static(tmp_path / "static")
    cat = pystac.Catalog.from_file(str(root))
    assert {c.id for c in cat.get_children()} == {"urban", "water"}
    items = list(cat.get_items(recursive=True))
    assert len(items) == 3
    for item in items:
        raw = json.loads(Path(item.get_self_href()).read_text())
        for asset in raw["assets"].values():
            assert "/" not in asset["href"]  # copied beside the item, relative
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href()).is_file()
