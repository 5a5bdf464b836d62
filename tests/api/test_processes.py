"""OGC API - Processes: descriptions from the preset registry, synchronous
execution on the bundled pair, jobs, dismissal and bad input (4xx with a
clear message). Asynchronous execution over real HTTP is in test_e2e.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eowatch.detect import list_presets
from eowatch.store.auth import AccessStore

from ..http_server import serve_silent
from .service import service, user_key

OGC = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"


@pytest.fixture(scope="module")
def app(
    database: str, paris: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path_factory.mktemp("proc"), process_input_roots=[paris]) as pair:
        yield pair


@pytest.fixture(scope="module")
def analyst(app: tuple[TestClient, AccessStore]) -> dict[str, str]:
    return user_key(app[1], "ana", "analyst")


def test_landing_conformance_and_descriptions(
    app: tuple[TestClient, AccessStore], analyst: dict[str, str]
) -> None:
    client, _ = app
    conf = client.get("/conformance").json()["conformsTo"]
    for cls in ("core", "ogc-process-description", "json", "job-list", "dismiss"):
        assert f"{OGC}/{cls}" in conf
    rels = {link["rel"] for link in client.get("/", headers=analyst).json()["links"]}
    assert "http://www.opengis.net/def/rel/ogc/1.0/processes" in rels
    assert "http://www.opengis.net/def/rel/ogc/1.0/job-list" in rels
    listed = client.get("/processes", headers=analyst).json()["processes"]
    assert [p["id"] for p in listed] == [p.name for p in list_presets()]
    desc = client.get("/processes/s2-cva", headers=analyst).json()
    assert {"before", "after", "aoi", "collection"} <= set(desc["inputs"])
    preset = next(p for p in list_presets() if p.name == "s2-cva")
    for name, field in preset.describe()["parameters"].items():
        spec = desc["inputs"][name]
        assert spec["schema"].get("default") == json.loads(json.dumps(field["default"])), name
        assert spec["description"] == field["description"]
    assert "sync-execute" in desc["jobControlOptions"] and "async-execute" in desc["jobControlOptions"]
    assert {"item", "change_map", "statistic"} <= set(desc["outputs"])


def test_sync_execution_registers_the_product(
    app: tuple[TestClient, AccessStore], analyst: dict[str, str], paris: Path
) -> None:
    client, access = app
    inputs = {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2"), "collection": "adhoc"}
    resp = client.post("/processes/s2-cva/execution", json={"inputs": inputs}, headers=analyst)
    assert resp.status_code == 200, resp.text
    results = resp.json()
    item = client.get(results["item"]["href"], headers=analyst)
    assert item.status_code == 200 and item.json()["properties"]["eowatch:preset"] == "s2-cva"
    change_map = client.get(results["change_map"]["href"], headers=analyst)
    assert change_map.status_code == 200 and change_map.content[:2] in (b"II", b"MM")
    jobs = client.get("/jobs", headers=analyst).json()["jobs"]
    assert jobs[0]["status"] == "successful" and jobs[0]["progress"] == 100
    job_id = jobs[0]["jobID"]
    assert client.get(f"/jobs/{job_id}/results", headers=analyst).json() == results
    # another analyst sees neither the job nor its results; the admin sees both
    other = user_key(access, "otto", "analyst")
    assert client.get(f"/jobs/{job_id}", headers=other).status_code == 404
    assert client.get("/jobs", headers=other).json()["jobs"] == []
    admin = user_key(access, "boss", "admin")
    assert client.get(f"/jobs/{job_id}", headers=admin).json()["status"] == "successful"
    # dismissal forgets the job (the registered product stays in the catalogue)
    dismissed = client.delete(f"/jobs/{job_id}", headers=analyst)
    assert dismissed.status_code == 200 and dismissed.json()["status"] == "dismissed"
    assert client.get(f"/jobs/{job_id}", headers=analyst).status_code == 404
    assert client.get(results["item"]["href"], headers=analyst).status_code == 200


def test_partners_cannot_execute(app: tuple[TestClient, AccessStore], paris: Path) -> None:
    client, access = app
    partner = user_key(access, "pat", "partner", "acme")
    body = {"inputs": {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2")}}
    resp = client.post("/processes/s2-cva/execution", json=body, headers=partner)
    assert resp.status_code == 403 and "partner" in resp.json()["description"]


PAIR = {"before": "{paris}/imgs_1", "after": "{paris}/imgs_2"}
HUGE = {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]}


@pytest.mark.parametrize(
    ("process", "inputs", "status", "message"),
    [
        ("s9-magic", {}, 404, "no process 's9-magic'"),
        ("s2-cva", {"after": "x"}, 400, "missing required input(s): before"),
        ("s2-cva", {"before": "/etc", "after": "/etc"}, 400, "not under an allowed input folder"),
        ("s2-cva", {"before": "{paris}/../../../etc/passwd", "after": "x"}, 400, "allowed input folder"),
        ("s2-cva", {"before": "file:///etc/passwd", "after": "x"}, 400, "only http(s) URLs"),
        ("s2-cva", {"before": "{paris}/imgs_1", "after": "{paris}/nope"}, 400, "does not exist"),
        ("s2-cva", {**PAIR, "aoi": {"type": "Polygon"}}, 400, "aoi"),
        ("s2-cva", {**PAIR, "aoi": "POLYGON((0 0"}, 400, "aoi"),
        ("s2-cva", {**PAIR, "aoi": HUGE}, 400, "above the limit"),
        ("s2-cva", {**PAIR, "threshold": "x"}, 400, "threshold"),
        ("s2-cva", {**PAIR, "bogus": 1}, 400, "bogus"),
        ("s2-cva", {**PAIR, "collection": "a/b"}, 400, "collection"),
    ],
)
def test_bad_execution_requests(
    app: tuple[TestClient, AccessStore],
    analyst: dict[str, str],
    paris: Path,
    process: str,
    inputs: dict[str, object],
    status: int,
    message: str,
) -> None:
    client, _ = app
    inputs = {k: v.replace("{paris}", str(paris)) if isinstance(v, str) else v for k, v in inputs.items()}
    resp = client.post(f"/processes/{process}/execution", json={"inputs": inputs}, headers=analyst)
    assert resp.status_code == status, resp.text
    assert message in resp.json()["description"]


def test_malformed_bodies(app: tuple[TestClient, AccessStore], analyst: dict[str, str]) -> None:
    client, _ = app
    headers = {**analyst, "Content-Type": "application/json"}
    resp = client.post("/processes/s2-cva/execution", content=b"{not json", headers=headers)
    assert resp.status_code == 400 and "invalid request" in resp.json()["description"]
    resp = client.post("/processes/s2-cva/execution", json=[1, 2], headers=analyst)
    assert resp.status_code == 400
    resp = client.post("/processes/s2-cva/execution", json={"inputs": "x"}, headers=analyst)
    assert resp.status_code == 400 and "'inputs' object" in resp.json()["description"]
    big = b'{"inputs": {"aoi": "' + b"0" * (2 << 20) + b'"}}'
    resp = client.post("/processes/s2-cva/execution", content=big, headers=headers)
    assert resp.status_code == 413 and "larger than" in resp.json()["description"]
    assert client.get("/jobs/nope", headers=analyst).status_code == 404
    assert client.get("/jobs/nope/results", headers=analyst).status_code == 404
    assert client.delete("/jobs/nope", headers=analyst).status_code == 404


def test_a_running_job_dismissed_publishes_nothing_and_stays_dismissed(
    database: str, paris: Path, tmp_path: Path
) -> None:
    # the job runs in a process of its own (the default executor), which dismissal ends
    with service(database, tmp_path, process_input_roots=[paris]) as (client, access):
        analyst = user_key(access, "dana", "analyst")
        inputs = {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2")}
        inputs["collection"] = "dismissable"
        headers = {**analyst, "Prefer": "respond-async"}
        created = client.post("/processes/s2-cva/execution", json={"inputs": inputs}, headers=headers)
        assert created.status_code == 201, created.text
        job_id = created.json()["jobID"]
        processes = client.app.state.processes  # type: ignore[attr-defined]
        queue = processes.queue
        deadline = time.monotonic() + 120
        while queue.get(job_id).status == "queued" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert queue.get(job_id).status == "running"
        assert client.delete(f"/jobs/{job_id}", headers=analyst).json()["status"] == "dismissed"
        while (tmp_path / "jobs" / job_id).exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker stops it within a second, and removes what it wrote
        processes.shutdown()
        job = queue.get(job_id)
        assert job.status == "cancelled" and job.item_id is None, job
        assert client.get(f"/jobs/{job_id}", headers=analyst).status_code == 404
        assert client.get("/jobs", headers=analyst).json()["jobs"] == []
        assert processes.catalog.search(collections=["dismissable"]).items == []
        assert not (tmp_path / "jobs" / job_id).exists()
        assert not list(tmp_path.rglob(".*partial-*"))


def test_an_accepted_job_survives_a_restart(database: str, paris: Path, tmp_path: Path) -> None:
    """A job accepted by a service that stops before running it runs on the next one."""
    inputs = {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2"), "collection": "restart"}
    with service(database, tmp_path, process_input_roots=[paris], process_workers=0) as (client, access):
        analyst = user_key(access, "remy", "analyst")
        created = client.post("/processes/s2-cva/execution", json={"inputs": inputs},
                              headers={**analyst, "Prefer": "respond-async"})  # fmt: skip
        job_id = created.json()["jobID"]
        assert client.get(f"/jobs/{job_id}", headers=analyst).json()["status"] == "accepted"
    with service(database, tmp_path, process_input_roots=[paris]) as (client, _):
        deadline = time.monotonic() + 120
        while (status := client.get(f"/jobs/{job_id}", headers=analyst).json()["status"]) in (
            "accepted", "running"
        ) and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.2)
        assert status == "successful"
        results = client.get(f"/jobs/{job_id}/results", headers=analyst).json()
        assert client.get(results["item"]["href"], headers=analyst).status_code == 200


def test_readyz_reports_a_pool_with_no_free_worker(database: str, tmp_path: Path) -> None:
    """A remote input that never answers holds the one process worker: the next execution
    waits, /readyz says so (503), and dismissing the hung job frees the worker."""
    limits = dict(process_workers=1, http_timeout_s=600, outbound_allow=["127.0.0.1"])  # a loopback input
    with serve_silent() as url, service(database, tmp_path, **limits) as (client, access):
        analyst = {**user_key(access, "hana", "analyst"), "Prefer": "respond-async"}
        body = {"inputs": {"before": f"{url}/T31UDQ_B04.tif", "after": f"{url}/T31UDQ_B08.tif"}}
        hung = client.post("/processes/s2-cva/execution", json=body, headers=analyst).json()["jobID"]
        queue = client.app.state.processes.queue  # type: ignore[attr-defined]
        deadline = time.monotonic() + 60
        while queue.get(hung).status != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        waiting = client.post("/processes/s2-cva/execution", json=body, headers=analyst).json()["jobID"]
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"]["executor"] == "no free worker: 1 of 1 busy, 1 waiting"
        for job_id in (waiting, hung):
            assert client.delete(f"/jobs/{job_id}", headers=analyst).status_code == 200
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.get("/readyz").json()["checks"]["executor"] == "ok"
        assert queue.get(hung).status == queue.get(waiting).status == "cancelled"


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/B04.tif", "http://169.254.169.254/latest/meta-data/", "http://[::1]/x.tif"]
)
def test_inputs_on_private_addresses_are_refused(
    app: tuple[TestClient, AccessStore], analyst: dict[str, str], paris: Path, url: str
) -> None:
    inputs = {"before": url, "after": str(paris / "imgs_2")}
    resp = app[0].post("/processes/s2-cva/execution", json={"inputs": inputs}, headers=analyst)
    assert resp.status_code == 400, resp.text
    assert "private, loopback or link-local" in resp.json()["description"]
    assert "Connection refused" not in resp.text  # nothing of what answers there (nothing was asked)
