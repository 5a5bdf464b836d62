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
    with service(database, tmp_path, process_input_roots=[paris]) as (client, access):
        analyst = user_key(access, "dana", "analyst")
        inputs = {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2")}
        inputs["collection"] = "dismissable"
        headers = {**analyst, "Prefer": "respond-async"}
        created = client.post("/processes/s2-cva/execution", json={"inputs": inputs}, headers=headers)
        assert created.status_code == 201, created.text
        job_id = created.json()["jobID"]
        service_ = client.app.state.processes  # type: ignore[attr-defined]
        deadline = time.monotonic() + 120
        while service_.jobs.get(job_id)["status"] == "accepted" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert service_.jobs.get(job_id)["status"] == "running"
        assert client.delete(f"/jobs/{job_id}", headers=analyst).json()["status"] == "dismissed"
        service_._pool.shutdown(wait=True)  # the run has ended, one way or another
        job = service_.jobs.get(job_id)
        assert job["status"] == "dismissed" and job["item"] is None, job
        assert client.get(f"/jobs/{job_id}", headers=analyst).status_code == 404
        assert client.get("/jobs", headers=analyst).json()["jobs"] == []
        assert service_.catalog.search(collections=["dismissable"]).items == []
        assert not (tmp_path / "jobs" / job_id).exists()
        assert not list(tmp_path.rglob(".*partial-*"))
