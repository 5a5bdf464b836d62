"""The STAC API over the results catalogue: routes, links, paging, assets."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from eowatch.api import STATUS_CODES
from eowatch.errors import CatalogError, EowatchError, InputError, NotFoundError

GEOJSON = "application/geo+json"


def _rel(body: dict, rel: str) -> list[dict]:
    return [link for link in body["links"] if link["rel"] == rel]


def test_landing_and_conformance(client: TestClient) -> None:
    resp = client.get("/")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["type"] == "Catalog"
    assert "https://api.stacspec.org/v1.0.0/item-search" in body["conformsTo"]
    assert {link["method"] for link in _rel(body, "search")} == {"GET", "POST"}
    assert {link["href"].rsplit("/", 1)[1] for link in _rel(body, "child")} == {"urban", "water"}
    assert _rel(body, "service-desc")[0]["href"].endswith("/openapi.json")
    for link in body["links"]:
        assert link["href"].startswith("http://testserver/") and link["type"]
    assert client.get("/conformance").json()["conformsTo"] == body["conformsTo"]
    spec = client.get("/openapi.json")
    assert spec.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    assert "/search" in spec.json()["paths"]


def test_collections(client: TestClient) -> None:
    body = client.get("/collections").json()
    assert [c["id"] for c in body["collections"]] == ["urban", "water"]
    urban = client.get("/collections/urban").json()
    assert _rel(urban, "items")[0]["type"] == GEOJSON
    assert client.get("/collections/nope").status_code == 404


def test_items_paging_by_get(client: TestClient) -> None:
    url, seen = "/collections/urban/items?limit=1", []
    while url:
        resp = client.get(url)
        assert resp.status_code == 200 and resp.headers["content-type"] == GEOJSON
        body = resp.json()
        assert body["numberMatched"] == 2 and body["numberReturned"] == 1
        seen += [f["id"] for f in body["features"]]
        nxt = _rel(body, "next")
        url = nxt[0]["href"] if nxt else None
    assert len(set(seen)) == 2
    assert client.get("/collections/urban/items?bbox=3,48,4,49").json()["numberMatched"] == 0
    assert client.get("/collections/nope/items").status_code == 404


def test_search_post_paging_and_filters(client: TestClient) -> None:
    body = {"limit": 2, "intersects": {"type": "Point", "coordinates": [2.33, 48.82]}}
    first = client.post("/search", json=body).json()
    assert first["numberMatched"] == 3 and first["numberReturned"] == 2
    nxt = _rel(first, "next")[0]
    assert nxt["method"] == "POST" and nxt["body"]["intersects"] == body["intersects"]
    second = client.post(nxt["href"], json=nxt["body"]).json()
    assert second["numberReturned"] == 1 and not _rel(second, "next")
    ids = {f["id"] for f in first["features"] + second["features"]}
    assert len(ids) == 3
    got = client.get("/search", params={"collections": "water", "datetime": "2017-01-01T00:00:00Z/.."}).json()
    assert [f["collection"] for f in got["features"]] == ["water"]
    one = got["features"][0]["id"]
    assert client.get("/search", params={"ids": one}).json()["numberMatched"] == 1
    assert client.get("/search", params={"bbox": "2,48,3,49"}).json()["numberMatched"] == 3


def test_bad_requests_are_400(client: TestClient) -> None:
    for params in (
        {"bbox": "1,2,3"},
        {"bbox": "[100.0, 0.0, 105.0, 1.0]"},
        {"datetime": "1985-04-12"},
        {"limit": "0"},
        {"limit": "x"},
        {"token": "garbage"},
        {"intersects": "{not json"},
    ):
        resp = client.get("/search", params=params)
        assert resp.status_code == 400, params
        assert resp.json()["code"] == "InputError"
    assert client.post("/search", json={"bbox": "100.0, 0.0, 105.0, 1.0"}).status_code == 400
    assert (
        client.post("/search", content=b"[1", headers={"content-type": "application/json"}).status_code == 400
    )


def test_items_and_assets(client: TestClient, products: dict[str, list[Path]]) -> None:
    folder = products["urban"][0]
    source = json.loads((folder / "item.json").read_text())
    url = f"/collections/urban/items/{source['id']}"
    resp = client.get(url)
    assert resp.status_code == 200 and resp.headers["content-type"] == GEOJSON
    item = resp.json()
    assert _rel(item, "self")[0]["href"] == f"http://testserver{url}"
    assert _rel(item, "collection")[0]["href"] == "http://testserver/collections/urban"
    for key, asset in item["assets"].items():
        assert asset["href"] == f"http://testserver{url}/assets/{key}"
        got = client.get(asset["href"])
        assert got.status_code == 200
        assert got.headers["content-type"] == source["assets"][key]["type"]
        assert got.content == (folder / source["assets"][key]["href"]).read_bytes()
    assert client.get(f"{url}/assets/quicklook").headers["content-type"] == "image/png"
    assert client.get("/collections/urban/items/nope").status_code == 404


def test_asset_paths_cannot_escape(client: TestClient, products: dict[str, list[Path]]) -> None:
    item_id = json.loads((products["urban"][0] / "item.json").read_text())["id"]
    base = f"/collections/urban/items/{item_id}/assets"
    for name in ("item.json", "..%2Fitem.json", "..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "nope"):
        assert client.get(f"{base}/{name}").status_code == 404, name
    assert client.get(f"{base}/../../../../etc/passwd").status_code == 404


def test_one_status_table() -> None:
    table = dict(STATUS_CODES)
    assert table[NotFoundError] == 404 and table[InputError] == 400
    assert table[CatalogError] == 503 and table[EowatchError] == 500
