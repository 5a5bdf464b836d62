"""Hostile or bad input over HTTP: each request gets the exact 4xx with a JSON body
naming the problem (never a 500), and nothing a caller may not know leaks out (another
analyst's task names, a partner's view of a task, server paths in webhook payloads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from eowatch.errors import InputError
from eowatch.monitor import JobQueue
from eowatch.monitor.alerts import alert_payload
from eowatch.monitor.tasks import TaskSpec
from eowatch.settings import Settings
from eowatch.store.auth import AccessStore

from .service import service, user_key

PARIS_AOI = {
    "type": "Polygon",
    "coordinates": [[[2.31, 48.80], [2.35, 48.80], [2.35, 48.84], [2.31, 48.84], [2.31, 48.80]]],
}
WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}
DEEP = "[" * 10_000 + "]" * 10_000


class Api:
    """A service on the products of ``conftest.database`` with one user of each kind."""

    def __init__(self, client: TestClient, access: AccessStore, inputs: Path, paris: Path) -> None:
        self.client, self.access, self.inputs, self.paris = client, access, inputs, paris
        self.root = user_key(access, "root", "admin")
        self.ann = user_key(access, "ann", "analyst")
        self.bob = user_key(access, "bob", "analyst")
        self.pia = user_key(access, "pia", "partner", "acme")

    def pair(self, **inputs: Any) -> dict[str, Any]:
        return {
            "inputs": {"before": str(self.paris / "imgs_1"), "after": str(self.paris / "imgs_2"), **inputs}
        }


@pytest.fixture(scope="module")
def api(database: str, paris: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("hostile")
    inputs = tmp / "inputs"
    inputs.mkdir()
    with service(database, tmp / "out", process_input_roots=[paris, inputs]) as (client, access):
        yield Api(client, access, inputs, paris)


def refused(resp: httpx.Response, status: int, *named: str) -> dict[str, Any]:
    """``resp`` is a ``status`` with a JSON body whose description contains every ``named``."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body: dict[str, Any] = resp.json()
    for words in named:
        assert words in body["description"], body
    return body


def task(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "aoi": PARIS_AOI, "sensors": ["s2"], **extra}


# -- 1. parameters that were 500s -------------------------------------------------------------


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("how", ["GET /search", "POST /search", "GET items"])
def test_datetimes_out_of_range_in_utc_are_400s(api: Api, how: str, when: str) -> None:
    c = api.client
    if how == "GET /search":
        resp = c.get("/search", params={"datetime": when}, headers=api.ann)
    elif how == "POST /search":
        resp = c.post("/search", json={"datetime": f"{when}/.."}, headers=api.ann)
    else:
        resp = c.get("/collections/urban/items", params={"datetime": when}, headers=api.ann)
    refused(resp, 400, repr(when), "outside the years 1 to 9999")


@pytest.mark.parametrize(
    ("how", "bbox", "named"),
    [
        ("GET", "a,b,c,d", "must be 4 (or 6) numbers"),
        ("GET", "nan,1,2,3", "'nan' is not finite"),
        ("GET", "1,2,3", "must have 4 numbers"),
        ("GET", "1,50,2,40", "latitudes must be in [-90, 90] with miny <= maxy"),
        ("GET", "1,1,500,3", "longitudes must be in [-180, 180]"),
        ("POST", [None, 1, 2, 3], "None is not a number"),
        ("POST", ["1", 2, 3, 4], "'1' is not a number"),
        ("POST", [True, 1, 2, 3], "True is not a number"),
        ("POST", [1, 2, 3, 4, 5], "must have 4 numbers"),
        ("POST", [1, 50, 2, 40], "latitudes"),
        ("POST", "1,2,3,4", "bbox must be an array"),
        ("items", "a,b,c,d", "must be 4 (or 6) numbers"),
    ],
)
def test_bad_bboxes_are_400s(api: Api, how: str, bbox: Any, named: str) -> None:
    c = api.client
    if how == "GET":
        resp = c.get("/search", params={"bbox": bbox}, headers=api.ann)
    elif how == "POST":
        resp = c.post("/search", json={"bbox": bbox}, headers=api.ann)
    else:
        resp = c.get("/collections/urban/items", params={"bbox": bbox}, headers=api.ann)
    refused(resp, 400, "bbox", named)


@pytest.mark.parametrize(
    ("intersects", "named"),
    [
        ({"type": "Hexagon", "coordinates": [1, 2]}, "not type 'Hexagon'"),
        ({"type": "FeatureCollection", "features": []}, "not type 'FeatureCollection'"),
        ({"type": "Feature", "geometry": PARIS_AOI}, "not type 'Feature'"),
        ({"type": "GeometryCollection", "geometries": [{"type": "Hexagon"}]}, "Unknown geometry type"),
    ],
)
def test_intersects_must_be_a_geojson_geometry(api: Api, intersects: dict[str, Any], named: str) -> None:
    refused(
        api.client.post("/search", json={"intersects": intersects}, headers=api.ann), 400, "intersects", named
    )
    got = api.client.get("/search", params={"intersects": json.dumps(intersects)}, headers=api.ann)
    refused(got, 400, "intersects", named)


BAD_AOIS = [
    ({"type": "Hexagon", "coordinates": [1, 2]}, "Unknown geometry type"),
    ({"type": "FeatureCollection", "features": []}, "FeatureCollection has no geometry"),
    (
        {"type": "FeatureCollection", "features": [{"type": "Feature", "geometry": {"type": "Hexagon"}}]},
        "hexagon",
    ),
]


@pytest.mark.parametrize(("aoi", "named"), BAD_AOIS)
def test_aois_of_unknown_type_or_without_geometry_are_400s(api: Api, aoi: dict[str, Any], named: str) -> None:
    refused(api.client.post("/tasks", json=task("t-bad-aoi", aoi=aoi), headers=api.ann), 400, "aoi", named)
    executed = api.client.post("/processes/s2-cva/execution", json=api.pair(aoi=aoi), headers=api.ann)
    refused(executed, 400, "input 'aoi'", named)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/search"),
        ("POST", "/tasks"),
        ("PATCH", "/tasks/anything"),
        ("POST", "/processes/s2-cva/execution"),
    ],
)
@pytest.mark.parametrize("body", [DEEP, '{"a":' * 10_000 + "1" + "}" * 10_000])
def test_deeply_nested_bodies_are_refused_before_parsing(api: Api, method: str, path: str, body: str) -> None:
    headers = {**api.ann, "Content-Type": "application/json"}
    resp = api.client.request(method, path, content=body, headers=headers)
    refused(resp, 400, "nests arrays or objects deeper than 64 levels")


def test_brackets_inside_strings_do_not_count_as_nesting(api: Api) -> None:
    resp = api.client.post("/search", json={"ids": ["[" * 10_000]}, headers=api.ann)
    refused(resp, 400, "item id '[[[[")  # the id rule answers, not the nesting limit


def test_unreadable_inputs_are_400s(api: Api) -> None:
    junk = api.inputs / "junk.tif"
    junk.write_text("not a raster")
    resp = api.client.post("/processes/s2-cva/execution", json=api.pair(before=str(junk)), headers=api.ann)
    body = refused(resp, 400, "cannot open raster", "junk.tif")
    assert body["code"] == "InputReadError"


# -- 2. AOIs whose area measured 0 km² ------------------------------------------------------------


@pytest.mark.parametrize(
    "aoi",
    [
        WORLD,
        "-180,-90,180,90",
        "170,-60,-170,60",  # crosses the antimeridian: 20 degrees wide, not 340
        "POLYGON((-179 0, 179 0, 179 0.1, -179 0.1, -179 0))",  # 358 degrees wide, not 2
    ],
)
def test_whole_world_and_antimeridian_aois_are_over_the_area_limit(api: Api, aoi: Any) -> None:
    executed = api.client.post("/processes/s2-cva/execution", json=api.pair(aoi=aoi), headers=api.ann)
    refused(executed, 400, "input 'aoi'", "above the limit of 20,000 km²")
    if isinstance(aoi, dict):
        refused(api.client.post("/tasks", json=task("t-world", aoi=aoi), headers=api.ann), 400, "km²")


# -- 3. the process AOI is never read from a file -------------------------------------------------


@pytest.mark.parametrize("name", ["aoi.geojson", "aoi.json"])
def test_process_aoi_file_paths_are_refused_not_read(api: Api, name: str) -> None:
    path = api.inputs / name
    path.write_text(json.dumps(PARIS_AOI))  # a real file under an input root: still not read
    for aoi in (str(path), "/etc/passwd.geojson"):
        executed = api.client.post("/processes/s2-cva/execution", json=api.pair(aoi=aoi), headers=api.ann)
        refused(executed, 400, "input 'aoi'", "is a file name", "give the GeoJSON itself, WKT or a bbox")


# -- 4. one id rule, on create and on lookup -------------------------------------------------------

RULE = "letters, digits, '.', '_', ':' or '-'"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (task("nul\x00name"), "task name 'nul\\x00name' is not valid"),
        (task("n" * 5000), "(5000 characters) is not valid"),
        (task(".hidden"), "task name '.hidden'"),
        (task("t-coll", collection="a b"), "collection id 'a b'"),
        (task("t-coll", collection="c" * 300), "collection id"),
    ],
)
def test_bad_ids_are_refused_on_create(api: Api, body: dict[str, Any], named: str) -> None:
    refused(api.client.post("/tasks", json=body, headers=api.ann), 400, named, RULE)


@pytest.mark.parametrize("collection", ["a\x00b", "x" * 3000, ".."])
def test_bad_process_collections_are_refused(api: Api, collection: str) -> None:
    executed = api.client.post(
        "/processes/s2-cva/execution", json=api.pair(collection=collection), headers=api.ann
    )
    refused(executed, 400, "input 'collection'", RULE)


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/collections/a%00b", "collection id 'a\\x00b'"),
        (f"/collections/{'c' * 3000}/items", "collection id"),
        ("/collections/urban/items/a%00b", "item id 'a\\x00b'"),
        (f"/collections/urban/items/{'i' * 3000}/assets/quicklook", "item id"),
        ("/tasks/a%00b", "task id or name 'a\\x00b'"),
        (f"/tasks/{'t' * 3000}/jobs", "task id or name"),
        ("/jobs/a%00b", "job id 'a\\x00b'"),
    ],
)
def test_bad_ids_are_refused_on_lookup(api: Api, path: str, named: str) -> None:
    refused(api.client.get(path, headers=api.ann), 400, named, RULE)


def test_bad_ids_in_search_filters_are_refused(api: Api) -> None:
    refused(api.client.get("/search", params={"ids": "a\x00b"}, headers=api.ann), 400, "item id", RULE)
    posted = api.client.post("/search", json={"collections": ["u" * 3000]}, headers=api.ann)
    refused(posted, 400, "collection id", RULE)


# -- 5. task names are unique per owner -------------------------------------------------------------


def test_a_name_taken_by_a_hidden_task_is_free(api: Api) -> None:
    c = api.client
    anns = c.post("/tasks", json=task("same-name"), headers=api.ann)
    assert anns.status_code == 201 and anns.json()["collection"] == "task-same-name"
    bobs = c.post("/tasks", json=task("same-name"), headers=api.bob)  # the same answer as a free name
    assert bobs.status_code == 201, bobs.text
    bob_id = bobs.json()["id"]
    assert bobs.json()["collection"] == f"task-{bob_id}"  # never mixed with ann's products
    refused(
        c.post("/tasks", json=task("same-name"), headers=api.bob),
        400,
        "a task named 'same-name' already exists",
    )
    assert c.get("/tasks/same-name", headers=api.bob).json()["id"] == bob_id  # names resolve among one's own
    assert c.get("/tasks/same-name", headers=api.ann).json()["id"] == anns.json()["id"]
    refused(c.get("/tasks/same-name", headers=api.root), 400, "several tasks", "give the task's id")
    assert c.get(f"/tasks/{bob_id}", headers=api.root).json()["owner"] == "bob"
    other = c.post("/tasks", json=task("bobs-other"), headers=api.bob).json()
    clash = c.patch(f"/tasks/{other['id']}", json={"name": "same-name"}, headers=api.bob)
    refused(clash, 400, "already exists")


# -- 6. partners see only what they need -----------------------------------------------------------


def test_partners_see_no_internal_details_of_granted_tasks(api: Api) -> None:
    c, secret_folder = api.client, api.inputs / "local-catalogue"
    body = task(
        "shared-watch",
        collection="acme-watch",
        provider=f"local:{secret_folder}",
        webhooks=[{"url": "https://hooks.internal.test/ann", "secret": "k"}],
        emails=["ann@internal.test"],
    )
    created = c.post("/tasks", json=body, headers=api.ann)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    queue = JobQueue(c.app.state.monitor_engine)  # type: ignore[attr-defined]
    job_id, _ = queue.enqueue(task_id, "s2-imad", "a", "b", {}, after_time=1.0)
    assert queue.claim("w1") is not None
    queue.fail(job_id, "w1", InputError(f"cannot read {secret_folder}/scene.tif"))
    api.access.grant("acme", "acme-watch")

    shown = c.get(f"/tasks/{task_id}", headers=api.pia)
    listed = c.get("/tasks", headers=api.pia).json()["tasks"]
    jobs = c.get(f"/tasks/{task_id}/jobs", headers=api.pia).json()["jobs"]
    assert shown.status_code == 200 and [t["id"] for t in listed] == [task_id] and len(jobs) == 1
    for doc in (shown.json(), listed[0]):
        assert doc["name"] == "shared-watch" and doc["collection"] == "acme-watch"
        assert doc["spec"]["aoi"]["type"] == "Polygon" and doc["spec"]["sensors"] == ["sentinel-2"]
        assert not {"owner", "last_poll_error"} & set(doc)
        assert not {"owner", "provider", "webhooks", "emails", "pairing", "params"} & set(doc["spec"])
    assert jobs[0]["status"] == "failed" and "error" not in jobs[0]
    text = json.dumps([shown.json(), listed, jobs])
    for internal in (str(secret_folder), "hooks.internal.test", "ann@internal.test", '"ann"'):
        assert internal not in text, internal
    # the owner still sees everything
    own = c.get(f"/tasks/{task_id}", headers=api.ann).json()
    assert own["owner"] == "ann" and own["spec"]["webhooks"][0]["url"] == "https://hooks.internal.test/ann"
    assert "cannot read" in c.get(f"/tasks/{task_id}/jobs", headers=api.ann).json()["jobs"][0]["error"]


# -- 7. webhook payloads link to the API -------------------------------------------------------------


@pytest.mark.parametrize("base", [None, "https://eowatch.example.org/api/"])
def test_webhook_payloads_link_to_the_api_not_to_server_files(tmp_path: Path, base: str | None) -> None:
    spec = TaskSpec(name="w", aoi=PARIS_AOI, collection="task-w")
    item = {
        "id": "s2-cva_1_2_abc",
        "bbox": [2.3, 48.8, 2.4, 48.9],
        "assets": {"quicklook": {}, "changes": {}},
    }
    summary = {"folder": str(tmp_path / "product"), "changed_area_m2": 10.0, "polygon_count": 1}
    settings = Settings(output_dir=tmp_path, api_base_url=base)
    job = SimpleNamespace(id="j1", preset="s2-cva")
    links = alert_payload(spec, "t1", job, summary, item, settings)["links"]  # type: ignore[arg-type]
    prefix = (base or "").rstrip("/")
    item_url = f"{prefix}/collections/task-w/items/s2-cva_1_2_abc"
    assert links == {
        "item": item_url,
        "quicklook": f"{item_url}/assets/quicklook",
        "changes": f"{item_url}/assets/changes",
    }
    assert str(tmp_path) not in json.dumps(links)
