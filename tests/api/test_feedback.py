"""Analyst feedback on change polygons, on SQLite and PostgreSQL: verdicts given,
replaced and listed under the Items' access rules (a partner without a grant gets the
404 of a missing Item, a read-only one a 403), refused when bad with nothing stored,
audited, exported as training labels by ``eowatch feedback export``, and a database
of an earlier version upgraded with its data kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from eowatch.cli.main import cli
from eowatch.results import ResultsCatalog
from eowatch.store import make_engine
from eowatch.store.auth import AccessStore
from eowatch.store.feedback import MAX_NOTE_CHARS, VerdictStore

from ..databases import fresh_database
from .service import service, user_key


@dataclass
class Site:
    client: TestClient
    access: AccessStore
    url: str
    item: dict[str, Any]  # the s2-imad Item of collection "urban"
    polygons: list[dict[str, Any]]  # its changes.geojson features
    headers: dict[str, dict[str, str]]

    def path(
        self, polygon: int | str | None = None, item: str | None = None, collection: str = "urban"
    ) -> str:
        base = f"/collections/{collection}/items/{item or self.item['id']}"
        return f"{base}/polygons/{polygon}/feedback" if polygon is not None else f"{base}/feedback"

    def post(self, user: str, polygon: int | str, body: Any, **kw: Any) -> Any:
        return self.client.post(self.path(polygon, **kw), json=body, headers=self.headers[user])

    def get(self, user: str, path: str) -> Any:
        return self.client.get(path, headers=self.headers[user])

    def stored(self) -> int:
        return len(VerdictStore(self.access.engine).list())

    def audited(self) -> list[dict[str, Any]]:
        return [e for e in self.access.audit_log(1000) if e["action"] == "feedback"]


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, products: dict[str, list[Path]], tmp_path: Path) -> Iterator[Site]:
    url = fresh_database(request.param, tmp_path, "api_feedback")
    catalog = ResultsCatalog(url)
    for collection, folders in products.items():
        for folder in folders:
            catalog.ingest_folder(folder, collection)
    imad = next(f for f in products["urban"] if f.name.startswith("s2-imad"))
    item = catalog.get_item("urban", json.loads((imad / "item.json").read_text())["id"])
    catalog.close()
    polygons = json.loads((imad / "changes.geojson").read_text())["features"]
    with service(url, tmp_path / "out") as (client, access):
        headers = {
            "ana": user_key(access, "ana", "analyst"),
            "root": user_key(access, "root", "admin"),
            "reader": user_key(access, "reader", "partner", "acme"),  # read grant on urban
            "writer": user_key(access, "writer", "partner", "civpro"),  # write grant on urban
            "stranger": user_key(access, "stranger", "partner", "other"),  # no grant
        }
        access.grant("acme", "urban")
        access.grant("civpro", "urban", write=True)
        yield Site(client, access, url, item, polygons, headers)


def test_verdicts_are_given_replaced_listed_and_audited(site: Site) -> None:
    first = site.polygons[0]
    assert first["id"] == 1
    resp = site.post("ana", 1, {"verdict": "confirmed", "note": "  new warehouse  "})
    assert resp.status_code == 201, resp.text
    given = resp.json()
    assert given["collection"] == "urban" and given["item"] == site.item["id"] and given["polygon"] == 1
    assert (given["verdict"], given["class"], given["class_name"], given["note"]) == (
        "confirmed", None, None, "new warehouse")  # fmt: skip
    assert given["polygon_class"] == first["properties"]["class"]
    assert given["polygon_class_name"] == first["properties"]["class_name"]
    assert given["author"] == "ana" and given["replaced"] is None
    assert given["created"].endswith("Z") and given["created"] == given["updated"]

    # the author's later verdict replaces it: one verdict per author and polygon
    resp = site.post("ana", 1, {"verdict": "false_alarm"})
    assert resp.status_code == 201 and resp.json()["replaced"] == "confirmed"
    listed = site.get("ana", site.path(1)).json()
    assert [(v["author"], v["verdict"], v["note"]) for v in listed["verdicts"]] == [
        ("ana", "false_alarm", "")
    ]
    assert listed["verdicts"][0]["created"] == given["created"] < listed["verdicts"][0]["updated"]
    assert listed["writable"] is True and listed["polygon"] == 1

    # another author's verdict on the same polygon stands beside it; a class by name or value
    own = first["properties"]["class"]
    other = next(c for c in site.item["assets"]["change_map"]["classification:classes"]
                 if c["value"] not in (own, 255))  # fmt: skip
    resp = site.post("root", 1, {"verdict": "wrong_class", "class": other["name"].upper()})
    assert resp.status_code == 201, resp.text
    assert (resp.json()["class"], resp.json()["class_name"]) == (other["value"], other["name"])
    resp = site.post("root", 2, {"verdict": "wrong_class", "class": other["value"], "note": "x"})
    assert resp.status_code == 201 and resp.json()["class"] == other["value"]
    resp = site.post("root", 3, {"verdict": "wrong_class"})  # the right class is optional
    assert resp.status_code == 201 and resp.json()["class"] is None

    item_list = site.get("ana", site.path()).json()
    assert [(v["polygon"], v["author"], v["verdict"]) for v in item_list["verdicts"]] == [
        (1, "ana", "false_alarm"), (1, "root", "wrong_class"), (2, "root", "wrong_class"),
        (3, "root", "wrong_class")]  # fmt: skip
    assert item_list["polygon"] is None and item_list["writable"] is True
    assert {"value": other["value"], "name": other["name"]} in item_list["classes"]
    assert all(c["value"] not in (0, 255) for c in item_list["classes"])
    assert site.get("ana", site.path(4)).json()["verdicts"] == []

    # every verdict given is audited, with what it replaced
    events = site.audited()
    assert len(events) == 5
    assert events[-1]["user"] == "ana" and events[-1]["target"] == f"urban/{site.item['id']}/polygons/1"
    assert events[-1]["detail"] == {"verdict": "confirmed", "class": None, "note": "new warehouse",
                                    "replaced": None}  # fmt: skip
    assert events[-2]["detail"]["replaced"] == "confirmed"
    assert events[-3]["detail"]["class"] == other["name"]


def test_partners_follow_the_items_access_rules(site: Site) -> None:
    assert site.post("ana", 1, {"verdict": "confirmed"}).status_code == 201
    # a read-only grant: sees the verdicts, may not give one
    listed = site.get("reader", site.path())
    assert listed.status_code == 200 and listed.json()["writable"] is False
    assert [v["author"] for v in listed.json()["verdicts"]] == ["ana"]
    refused = site.post("reader", 1, {"verdict": "false_alarm"})
    assert refused.status_code == 403 and refused.json()["code"] == "ForbiddenError"
    assert "--write" in refused.json()["description"]
    # a write grant: gives verdicts
    assert site.get("writer", site.path()).json()["writable"] is True
    assert site.post("writer", 1, {"verdict": "false_alarm"}).status_code == 201
    assert site.stored() == 2

    # no grant: every feedback path answers as the Item itself does, as if absent
    absent_item = site.get("stranger", f"/collections/urban/items/{site.item['id']}")
    assert absent_item.status_code == 404
    for resp in (
        site.post("stranger", 1, {"verdict": "confirmed"}),
        site.post("stranger", 999_999, {"verdict": "confirmed"}),
        site.get("stranger", site.path(1)),
        site.get("stranger", site.path()),
    ):
        assert (resp.status_code, resp.json()) == (404, absent_item.json())
    # ... exactly like an Item that does not exist in a collection it may not see
    missing = site.post("stranger", 1, {"verdict": "confirmed"}, item="no-such-item")
    assert (missing.status_code, missing.json()) == (404, absent_item.json())
    # a collection not granted is absent from every partner listing
    assert site.get("stranger", "/collections/water/items").status_code == 404
    assert site.stored() == 2 and len(site.audited()) == 2

    # a revoked grant takes effect at once
    site.access.revoke("civpro", "urban")
    assert site.post("writer", 1, {"verdict": "confirmed"}).status_code == 404
    # without credentials: 401, as everywhere in the API
    anonymous = site.client.post(site.path(1), json={"verdict": "confirmed"})
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert site.client.get(site.path()).status_code == 401
    assert site.stored() == 2


def test_admin_grant_write_lets_partners_give_verdicts(
    site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EOWATCH_DATABASE_URL", site.url)
    monkeypatch.setenv("EOWATCH_OUTPUT_DIR", str(tmp_path / "out"))
    res = CliRunner().invoke(cli, ["admin", "grant", "acme", "urban", "--write"])
    assert res.exit_code == 0 and "(read and write)" in res.stderr, res.output
    assert site.post("reader", 1, {"verdict": "confirmed"}).status_code == 201
    # granting again without --write makes the grant read only
    res = CliRunner().invoke(cli, ["admin", "grant", "acme", "urban"])
    assert res.exit_code == 0, res.output
    assert site.post("reader", 1, {"verdict": "false_alarm"}).status_code == 403
    grants = [e for e in site.access.audit_log(1000) if e["action"] == "grant" and e["user"] == "cli"]
    assert [e["detail"] for e in grants] == [
        {"organisation": "acme", "write": False}, {"organisation": "acme", "write": True}]  # fmt: skip


def test_polygons_that_do_not_exist_answer_404(site: Site) -> None:
    last = len(site.polygons)
    for polygon in (last + 1, 2**31 - 1):
        resp = site.post("ana", polygon, {"verdict": "confirmed"})
        assert resp.status_code == 404 and resp.json()["code"] == "NotFoundError"
        assert f"no polygon {polygon} in item" in resp.json()["description"]
        assert site.get("ana", site.path(polygon)).status_code == 404
    assert site.post("ana", last, {"verdict": "confirmed"}).status_code == 201
    assert site.post("ana", 1, {"verdict": "confirmed"}, item="no-such-item").json()["description"] == (
        "no item 'no-such-item' in collection 'urban'"
    )
    assert site.post("ana", 1, {"verdict": "confirmed"}, collection="nope").status_code == 404
    assert site.stored() == 1


@pytest.mark.parametrize(
    ("polygon", "body", "says"),
    [
        (1, {"verdict": "maybe"}, "verdict"),
        (1, {}, "verdict"),
        (1, {"verdict": "confirmed", "extra": 1}, "extra"),
        (1, {"verdict": "wrong_class", "class": "lava flow"}, "not a change class of this item"),
        (1, {"verdict": "wrong_class", "class": 255}, "not a change class of this item"),
        (1, {"verdict": "wrong_class", "class": 2.5}, "class"),
        (1, {"verdict": "wrong_class", "class": True}, "class"),
        (1, {"verdict": "confirmed", "class": 1}, "wrong_class only"),
        (1, {"verdict": "confirmed", "note": "x" * (MAX_NOTE_CHARS + 1)}, "2000"),
        (1, {"verdict": "confirmed", "note": "nul \x00 byte"}, "control characters"),
        (1, {"verdict": "confirmed", "note": 5}, "note"),
        (1, ["confirmed"], "body"),
        (0, {"verdict": "confirmed"}, "polygon_id"),
        ("one", {"verdict": "confirmed"}, "polygon_id"),
        (2**31, {"verdict": "confirmed"}, "polygon_id"),
    ],
)
def test_bad_verdicts_are_refused_and_nothing_is_stored(
    site: Site, polygon: Any, body: Any, says: str
) -> None:
    resp = site.post("ana", polygon, body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "InputError" and says in resp.json()["description"]
    assert site.stored() == 0 and site.audited() == []


def test_the_polygons_own_class_is_not_a_correction(site: Site) -> None:
    own = site.polygons[0]["properties"]["class"]
    resp = site.post("ana", 1, {"verdict": "wrong_class", "class": own})
    assert resp.status_code == 400 and "send confirmed" in resp.json()["description"]
    assert site.stored() == 0


def test_verdicts_are_in_the_openapi_document(site: Site) -> None:
    paths = site.client.get("/openapi.json").json()["paths"]
    polygon = paths["/collections/{collection_id}/items/{item_id}/polygons/{polygon_id}/feedback"]
    assert set(polygon) == {"get", "post"} and "201" in polygon["post"]["responses"]
    assert "get" in paths["/collections/{collection_id}/items/{item_id}/feedback"]


def test_export_writes_training_labels(site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = site.polygons[1]["properties"]["class"]
    other = next(c["value"] for c in site.item["assets"]["change_map"]["classification:classes"]
                 if c["value"] not in (own, 255))  # fmt: skip
    assert site.post("ana", 1, {"verdict": "confirmed", "note": "seen on the ground"}).status_code == 201
    assert site.post("ana", 2, {"verdict": "wrong_class", "class": other}).status_code == 201
    assert site.post("root", 3, {"verdict": "false_alarm"}).status_code == 201
    monkeypatch.setenv("EOWATCH_DATABASE_URL", site.url)
    monkeypatch.setenv("EOWATCH_OUTPUT_DIR", str(tmp_path / "out"))
    out = tmp_path / "labels" / "labels.geojson"

    res = CliRunner().invoke(cli, ["feedback", "export", "--out", str(out), "--collection", "urban"])
    assert res.exit_code == 0, res.output
    assert "3 labels written to" in res.stderr
    labels = json.loads(out.read_text())
    assert labels["type"] == "FeatureCollection"
    by_polygon = {f["properties"]["polygon"]: f for f in labels["features"]}
    assert sorted(by_polygon) == [1, 2, 3]
    for polygon, feature in by_polygon.items():
        judged = site.polygons[polygon - 1]
        assert feature["geometry"] == judged["geometry"]  # self-contained: the geometry as judged
        p = feature["properties"]
        assert (p["collection"], p["item"]) == ("urban", site.item["id"])
        assert p["polygon_class"] == judged["properties"]["class"]
        assert p["polygon_class_name"] == judged["properties"]["class_name"]
        assert p["preset"] == "s2-imad" and len(p["geometry_sha256"]) == 64
        assert [(i["role"], i["id"]) for i in p["inputs"]] == [
            ("before", "oscd-paris-imgs_1"), ("after", "oscd-paris-imgs_2")]  # fmt: skip
        assert all(i["href"].endswith(("imgs_1", "imgs_2")) and i["datetime"] for i in p["inputs"])
    one, two, three = by_polygon[1]["properties"], by_polygon[2]["properties"], by_polygon[3]["properties"]
    assert (one["verdict"], one["label"], one["author"], one["note"]) == (
        "confirmed", one["polygon_class"], "ana", "seen on the ground")  # fmt: skip
    assert (two["verdict"], two["corrected_class"], two["label"]) == ("wrong_class", other, other)
    assert (three["verdict"], three["label"], three["author"]) == ("false_alarm", 0, "root")
    assert one["updated_at"].endswith("Z")

    # filters: by verdict, by time
    res = CliRunner().invoke(cli, ["feedback", "export", "--out", str(out), "--verdict", "confirmed"])
    assert res.exit_code == 0 and [
        f["properties"]["polygon"] for f in json.loads(out.read_text())["features"]
    ] == [1]
    res = CliRunner().invoke(cli, ["feedback", "export", "--out", str(out), "--since", "2999-01-01"])
    assert res.exit_code == 0 and json.loads(out.read_text())["features"] == []
    res = CliRunner().invoke(
        cli, ["feedback", "list", "--collection", "urban", "--since", "2000-01-01T00:00:00Z"]
    )
    assert res.exit_code == 0, res.output
    rows = [line.split("\t") for line in res.stdout.splitlines()]
    assert [(r[2], r[3], r[5]) for r in rows] == [
        ("1", "confirmed", "ana"), ("2", f"wrong_class -> {two['corrected_class_name']}", "ana"),
        ("3", "false_alarm", "root")]  # fmt: skip

    # bad input: exit 2, one line, nothing written
    out.unlink()
    for args, says in (
        (["--collection", "nope"], "no collection 'nope'"),
        (["--since", "last tuesday"], "--since"),
        (["--verdict", "maybe"], "--verdict"),
    ):
        res = CliRunner().invoke(cli, ["feedback", "export", "--out", str(out), *args])
        assert res.exit_code == 2 and says in res.stderr, res.output
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error: ")
        assert not out.exists()
    res = CliRunner().invoke(cli, ["feedback", "export", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.stderr
    res = CliRunner().invoke(cli, ["feedback", "list", "--item", site.item["id"]])
    assert res.exit_code == 2 and "--item needs --collection" in res.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_of_an_earlier_version_gets_the_verdicts_and_keeps_its_data(
    kind: str, products: dict[str, list[Path]], tmp_path: Path
) -> None:
    """A database made before feedback existed: no ``verdicts`` table, grants without
    ``write``. Opening it adds both; its Items, users and grants are kept (read only)."""
    url = fresh_database(kind, tmp_path, "api_feedback_upgrade")
    catalog = ResultsCatalog(url)
    item = catalog.ingest_folder(products["water"][0], "water")
    access = AccessStore(catalog.engine)
    access.create_user("pia", "partner", "acme")
    access.grant("acme", "water")
    with catalog.engine.begin() as conn:  # back to the earlier schema
        conn.execute(text("DROP TABLE verdicts"))
        conn.execute(text('ALTER TABLE grants DROP COLUMN "write"'))
    catalog.close()
    engine = make_engine(url)  # upgrades on open
    try:
        tables = inspect(engine)
        assert "verdicts" in tables.get_table_names()
        assert "write" in {c["name"] for c in tables.get_columns("grants")}
        upgraded = ResultsCatalog(engine)
        assert upgraded.get_item("water", item["id"])["id"] == item["id"]
        access = AccessStore(engine)
        pia = access.get_user("pia")
        assert access.visible_collections(pia) == {"water"}
        assert access.writable_collections(pia) == frozenset()  # an old grant reads only
        access.grant("acme", "water", write=True)
        assert access.writable_collections(pia) == {"water"}
        assert VerdictStore(engine).list() == []
    finally:
        engine.dispose()


def test_report_of_confirmed_changes_with_chips(site: Site, tmp_path: Path) -> None:
    """The zip a report is made from: the confirmed polygons only (not the false alarm) as
    GeoJSON, KML and GeoPackage, each with before/after chips cut from the visual COGs."""
    import io
    import zipfile

    import numpy as np
    import pyogrio
    from PIL import Image

    for polygon, verdict in ((1, "confirmed"), (2, "confirmed"), (3, "false_alarm")):
        assert site.post("ana", polygon, {"verdict": verdict, "note": f"p{polygon}"}).status_code == 201
    resp = site.get("ana", "/feedback/report.zip?collection=urban")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    assert 'filename="eowatch-confirmed-urban.zip"' in resp.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(resp.content))
    names = set(archive.namelist())
    assert {"confirmed.geojson", "confirmed.kml", "confirmed.gpkg"} <= names
    doc = json.loads(archive.read("confirmed.geojson"))
    assert sorted(f["properties"]["polygon"] for f in doc["features"]) == [1, 2]
    for feature in doc["features"]:
        p = feature["properties"]
        assert p["verdict"] == "confirmed" and p["author"] == "ana"
        for when in ("before", "after"):
            chip = Image.open(io.BytesIO(archive.read(p[f"chip_{when}"])))
            assert chip.size[0] >= 64 and chip.size == (chip.size[0], chip.size[0])
            assert len(np.unique(np.asarray(chip.convert("RGB")).reshape(-1, 3), axis=0)) > 100
    for file in ("confirmed.kml", "confirmed.gpkg"):
        (tmp_path / file).write_bytes(archive.read(file))
        table = pyogrio.raw.read(tmp_path / file)
        meta, _fids, geometry, fields = table
        assert len(geometry) == 2 and meta["crs"] in ("EPSG:4326", None)
    # a partner without a grant gets an empty report, not another organisation's changes
    empty = zipfile.ZipFile(io.BytesIO(site.get("stranger", "/feedback/report.zip").content))
    assert json.loads(empty.read("confirmed.geojson"))["features"] == []
    assert site.get("stranger", "/feedback/report.zip?collection=urban").status_code == 404
    assert site.get("ana", "/feedback/report.zip?since=never").status_code == 400
