"""The alert inbox: the change polygons of results new to the caller, across the
collections they may read, most confident and largest first, filtered; marked seen per
user; refused input as 400; nothing of an ungranted collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eowatch.results import ResultsCatalog
from eowatch.store.auth import AccessStore

from .service import service, user_key


@pytest.fixture
def app(database: str, tmp_path: Path) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path) as pair:
        yield pair


def _polygon_count(database: str, collection: str) -> int:
    catalog = ResultsCatalog(database)
    try:
        items = catalog.search(collections=[collection], limit=100).items
        return sum(int(i["properties"]["eowatch:polygon_count"]) for i in items)
    finally:
        catalog.close()


def test_inbox_lists_new_polygons_most_confident_first(
    app: tuple[TestClient, AccessStore], database: str
) -> None:
    client, access = app
    ana = user_key(access, "inbox-ana", "analyst")
    doc = client.get("/inbox?limit=1000", headers=ana).json()
    alerts = doc["alerts"]
    expected = sum(_polygon_count(database, c) for c in ("urban", "water"))
    assert doc["matched"] == len(alerts) == expected > 0 and doc["last_seen"] is None
    assert {a["collection"] for a in alerts} == {"urban", "water"}
    keys = [(-(a["confidence"] or 0), -a["area_m2"]) for a in alerts]
    assert keys == sorted(keys)
    first = alerts[0]
    assert first["polygon"] >= 1 and len(first["bbox"]) == 4 and first["before"] and first["after"]
    west, south, east, north = first["bbox"]
    assert west < east and south < north

    # filters: class, collection, confidence, limit
    name = first["class_name"]
    by_class = client.get("/inbox", params={"class": name, "limit": 1000}, headers=ana).json()["alerts"]
    assert by_class and {a["class_name"] for a in by_class} == {name}
    water = client.get("/inbox", params={"collection": "water"}, headers=ana).json()["alerts"]
    assert {a["collection"] for a in water} == {"water"}
    confident = client.get("/inbox", params={"min_confidence": 0.99, "limit": 1000}, headers=ana).json()
    assert all(a["confidence"] >= 0.99 for a in confident["alerts"])
    assert len(client.get("/inbox?limit=3", headers=ana).json()["alerts"]) == 3


def test_inbox_is_marked_seen_per_user(
    app: tuple[TestClient, AccessStore], database: str, paris: Path
) -> None:
    client, access = app
    ana = user_key(access, "inbox-ann", "analyst")
    bob = user_key(access, "inbox-bob", "analyst")
    assert client.get("/inbox", headers=ana).json()["alerts"]
    seen = client.post("/inbox/seen", headers=ana).json()["seen_at"]
    after = client.get("/inbox", headers=ana).json()
    assert after["alerts"] == [] and after["last_seen"] == seen and after["since"] == seen
    assert client.get("/inbox", headers=bob).json()["alerts"]  # another analyst's inbox is untouched
    # a result catalogued afterwards is new again
    catalog = ResultsCatalog(database)
    try:
        folder = next(iter(catalog.search(collections=["urban"], limit=1).items))
        product = catalog.asset_folder("urban", folder["id"])
        catalog.ingest_folder(product, "urban-again")
    finally:
        catalog.close()
    fresh = client.get("/inbox", headers=ana).json()["alerts"]
    assert fresh and {a["collection"] for a in fresh} == {"urban-again"}
    # an explicit since overrides the mark
    assert client.get("/inbox", params={"since": "2000-01-01"}, headers=ana).json()["matched"] > len(fresh)


def test_partners_see_only_granted_collections(app: tuple[TestClient, AccessStore]) -> None:
    client, access = app
    pia = user_key(access, "inbox-pia", "partner", "inbox-acme")
    assert client.get("/inbox", headers=pia).json()["alerts"] == []
    access.grant("inbox-acme", "water")
    alerts = client.get("/inbox", params={"limit": 1000}, headers=pia).json()["alerts"]
    assert alerts and {a["collection"] for a in alerts} == {"water"}
    assert client.get("/inbox", params={"collection": "urban"}, headers=pia).json()["alerts"] == []


def test_bad_inbox_queries_are_400(app: tuple[TestClient, AccessStore]) -> None:
    client, access = app
    ana = user_key(access, "inbox-ada", "analyst")
    for params, message in (
        ({"min_confidence": 2}, "min_confidence"),
        ({"limit": 0}, "limit"),
        ({"since": "yesterday"}, "RFC 3339"),
    ):
        resp = client.get("/inbox", params=params, headers=ana)
        assert resp.status_code == 400 and message in resp.json()["description"], resp.text
    resp = client.post("/inbox/seen", json={"seen_at": "soon"}, headers=ana)
    assert resp.status_code == 400
    assert client.get("/inbox").status_code == 401
