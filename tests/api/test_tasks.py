"""Monitoring tasks over HTTP: the round trip, who sees and changes what, bad
input, the audit rows of every change (SQLite and PostgreSQL), and an end to
end over real HTTP with the scheduler and a worker embedded in ``eowatch serve``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from eowatch.errors import InputError
from eowatch.monitor import JobQueue
from eowatch.store import make_engine
from eowatch.store import monitoring as _monitoring  # noqa: F401 - registers the monitoring tables
from eowatch.store.auth import AccessStore

from ..databases import fresh_database
from ..http_server import wait_until_serving
from ..monitor.conftest import add_date
from .service import REPO, free_port, service, user_key

PARIS_AOI = {
    "type": "Polygon",
    "coordinates": [[[2.31, 48.80], [2.35, 48.80], [2.35, 48.84], [2.31, 48.84], [2.31, 48.80]]],
}


def spec(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "aoi": PARIS_AOI, "sensors": ["s2"], "cadence": 3600, **extra}


class Api:
    """A service on a fresh database with one user of each kind."""

    def __init__(self, client: TestClient, access: AccessStore) -> None:
        self.client, self.access = client, access
        self.root = user_key(access, "root", "admin")
        self.ann = user_key(access, "ann", "analyst")
        self.bob = user_key(access, "bob", "analyst")
        self.pia = user_key(access, "pia", "partner", "acme")
        self.pete = user_key(access, "pete", "partner", "other")

    def audit(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.access.audit_log(1000) if e["action"] == action]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp(f"tasks-{request.param}")
    url = fresh_database(request.param, tmp, "api_tasks")
    with service(url, tmp / "out") as (client, access):
        yield Api(client, access)


def test_round_trip(api: Api) -> None:
    c, ann = api.client, api.ann
    assert c.app.state.embedded.threads == []  # type: ignore[attr-defined]  # no scheduler/worker unless asked
    hooks = [{"url": "http://h.test/x", "secret": "k"}]
    resp = c.post("/tasks", json=spec("rt", owner="mallory", webhooks=hooks), headers=ann)
    assert resp.status_code == 201, resp.text
    doc = resp.json()
    task_id = doc["id"]
    assert doc["owner"] == "ann" and doc["spec"]["owner"] == "ann"  # the owner sent is ignored
    assert doc["name"] == "rt" and doc["collection"] == "task-rt" and doc["state"] == "active"
    assert doc["spec"]["webhooks"][0]["secret"] == "***" and doc["spec"]["sensors"] == ["sentinel-2"]
    links = {link["rel"]: link["href"] for link in doc["links"]}
    assert links["self"].endswith(f"/tasks/{task_id}")
    assert links["items"].endswith("/collections/task-rt/items")
    assert links["jobs"].endswith(f"/tasks/{task_id}/jobs")

    listed = c.get("/tasks", headers=ann).json()
    assert [t["id"] for t in listed["tasks"]] == [task_id] and listed["numberMatched"] == 1
    assert c.get(f"/tasks/{task_id}", headers=ann).json()["name"] == "rt"
    assert c.get("/tasks/rt", headers=ann).json()["id"] == task_id  # by name too

    # JSON merge patch: the secret sent back masked is kept; null removes a field (back to its default)
    patched = c.patch(f"/tasks/{task_id}", json={"cadence": 600, "params": {"s2-imad": {"alpha": 0.01}},
                                                  "webhooks": doc["spec"]["webhooks"], "owner": "mallory"},
                      headers=ann)  # fmt: skip
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["spec"]["cadence"] == 600 and body["spec"]["params"] == {"s2-imad": {"alpha": 0.01}}
    assert body["owner"] == "ann"
    stored = api.client.app.state.tasks.get(task_id)  # type: ignore[attr-defined]
    assert stored.spec.webhooks[0].secret == "k"
    assert c.patch(f"/tasks/{task_id}", json={"params": None}, headers=ann).json()["spec"]["params"] == {}

    paused = c.post(f"/tasks/{task_id}/pause", headers=ann)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert [t["id"] for t in c.get("/tasks?state=paused", headers=ann).json()["tasks"]] == [task_id]
    assert c.get("/tasks?state=active", headers=ann).json() == {"tasks": [], "numberMatched": 0}
    bad_state = c.get("/tasks?state=sleeping", headers=ann)
    assert bad_state.status_code == 400 and "sleeping" in bad_state.json()["description"]
    resumed = c.post(f"/tasks/{task_id}/resume", headers=ann).json()
    assert resumed["state"] == "active"
    triggered = c.post(f"/tasks/{task_id}/trigger", headers=ann)
    assert triggered.status_code == 200 and triggered.json()["next_due_at"] is None  # due now
    assert c.get(f"/tasks/{task_id}/jobs", headers=ann).json() == {"jobs": []}

    assert c.delete(f"/tasks/{task_id}", headers=ann).status_code == 204
    gone = c.get(f"/tasks/{task_id}", headers=ann)
    assert gone.status_code == 404 and task_id in gone.json()["description"]
    assert c.delete(f"/tasks/{task_id}", headers=ann).status_code == 404

    # every change is in the audit log, by the caller, on the task
    for action in ("task-create", "task-update", "task-pause", "task-resume", "task-trigger", "task-delete"):
        rows = [e for e in api.audit(action) if e["target"] == task_id]
        assert rows and all(e["user"] == "ann" for e in rows), action
    assert len([e for e in api.audit("task-update") if e["target"] == task_id]) == 2
    assert [e["detail"]["fields"] for e in api.audit("task-update") if e["target"] == task_id][-1] == [
        "cadence", "params", "webhooks"]  # fmt: skip


def test_jobs_newest_first(api: Api) -> None:
    c = api.client
    task = c.post("/tasks", json=spec("with-jobs"), headers=api.bob).json()
    queue = JobQueue(api.client.app.state.monitor_engine)  # type: ignore[attr-defined]
    first, _ = queue.enqueue(task["id"], "s2-imad", "a", "b", {}, after_time=1.0)
    time.sleep(0.01)
    second, _ = queue.enqueue(task["id"], "s2-imad", "b", "c", {}, after_time=2.0)
    claimed = queue.claim("w1")
    assert claimed is not None and claimed.id == first
    queue.fail(first, "w1", InputError("the AOI is outside the images"))

    jobs = c.get(f"/tasks/{task['id']}/jobs", headers=api.bob).json()["jobs"]
    assert [j["id"] for j in jobs] == [second, first]
    keys = {"id", "preset", "status", "attempts", "error", "created", "started", "finished",
            "before", "after", "item_id", "collection"}  # fmt: skip
    assert keys <= set(jobs[0])
    failed = jobs[1]
    assert (failed["status"], failed["attempts"], failed["before"], failed["after"]) == (
        "failed",
        1,
        "a",
        "b",
    )
    assert "InputError" in jobs[1]["error"] and "outside the images" in jobs[1]["error"]
    assert jobs[0]["status"] == "queued" and jobs[0]["finished"] is None
    newest = c.get(f"/tasks/{task['id']}/jobs?limit=1", headers=api.bob).json()["jobs"]
    assert [j["id"] for j in newest] == [second]
    assert c.get(f"/tasks/{task['id']}", headers=api.bob).json()["jobs"] == {"failed": 1, "queued": 1}
    listed = {t["name"]: t["jobs"] for t in c.get("/tasks", headers=api.bob).json()["tasks"]}
    assert listed["with-jobs"] == {"failed": 1, "queued": 1}
    assert c.get(f"/tasks/{task['id']}/jobs", headers=api.ann).status_code == 404  # not ann's


def test_analysts_see_only_their_own_tasks(api: Api) -> None:
    c = api.client
    bobs = c.post("/tasks", json=spec("bobs-site"), headers=api.bob).json()
    anns = c.post("/tasks", json=spec("anns-site"), headers=api.ann).json()
    missing = c.get("/tasks/no-such-task", headers=api.ann)
    assert missing.status_code == 404

    def same_as_missing(resp: httpx.Response, key: str) -> None:
        assert resp.status_code == 404, resp.text
        expected = missing.json()
        assert resp.json() == {
            **expected,
            "description": expected["description"].replace("no-such-task", key),
        }

    for key in (bobs["id"], "bobs-site"):
        same_as_missing(c.get(f"/tasks/{key}", headers=api.ann), key)
        same_as_missing(c.get(f"/tasks/{key}/jobs", headers=api.ann), key)
        same_as_missing(c.patch(f"/tasks/{key}", json={"cadence": 60}, headers=api.ann), key)
        for verb in ("pause", "resume", "trigger"):
            same_as_missing(c.post(f"/tasks/{key}/{verb}", headers=api.ann), key)
        same_as_missing(c.delete(f"/tasks/{key}", headers=api.ann), key)
    names = [t["name"] for t in c.get("/tasks", headers=api.ann).json()["tasks"]]
    assert "anns-site" in names and "bobs-site" not in names
    assert c.get("/tasks", headers=api.ann).json()["numberMatched"] == len(names)
    assert c.get(f"/tasks/{bobs['id']}", headers=api.bob).json()["spec"]["cadence"] == 3600  # untouched

    everything = c.get("/tasks", headers=api.root).json()
    assert {"anns-site", "bobs-site"} <= {t["name"] for t in everything["tasks"]}
    assert (
        c.post(f"/tasks/{anns['id']}/pause", headers=api.root).json()["state"] == "paused"
    )  # admin changes all


def test_partners_read_granted_tasks_only(api: Api) -> None:
    c, access = api.client, api.access
    task = c.post("/tasks", json=spec("shared-site", collection="acme-urban"), headers=api.ann).json()
    assert task["collection"] == "acme-urban"
    assert c.get("/tasks", headers=api.pia).json() == {"tasks": [], "numberMatched": 0}
    assert c.get(f"/tasks/{task['id']}", headers=api.pia).status_code == 404

    access.grant("acme", "acme-urban")
    listed = c.get("/tasks", headers=api.pia).json()
    assert [t["id"] for t in listed["tasks"]] == [task["id"]] and listed["numberMatched"] == 1
    assert c.get(f"/tasks/{task['id']}", headers=api.pia).json()["name"] == "shared-site"
    assert c.get(f"/tasks/{task['id']}/jobs", headers=api.pia).status_code == 200
    for resp in (
        c.patch(f"/tasks/{task['id']}", json={"cadence": 60}, headers=api.pia),
        c.post(f"/tasks/{task['id']}/pause", headers=api.pia),
        c.post(f"/tasks/{task['id']}/trigger", headers=api.pia),
        c.delete(f"/tasks/{task['id']}", headers=api.pia),
    ):
        assert resp.status_code == 403 and resp.json()["code"] == "ForbiddenError", resp.text
    created = c.post("/tasks", json=spec("partner-site"), headers=api.pia)
    assert created.status_code == 403 and "partner" in created.json()["description"]
    assert c.get(f"/tasks/{task['id']}", headers=api.pete).status_code == 404  # another organisation
    assert c.post(f"/tasks/{task['id']}/pause", headers=api.pete).status_code == 404
    assert c.get(f"/tasks/{task['id']}", headers=api.ann).json()["spec"]["cadence"] == 3600  # unchanged

    access.revoke("acme", "acme-urban")  # takes effect at once
    assert c.get(f"/tasks/{task['id']}", headers=api.pia).status_code == 404
    assert c.get("/tasks", headers=api.pia).json()["numberMatched"] == 0


HUGE = {"type": "Polygon", "coordinates": [[[-10, 35], [30, 35], [30, 60], [-10, 60], [-10, 35]]]}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (spec("b1", aoi={"type": "Polygon", "coordinates": "nonsense"}), "AOI"),
        (
            spec(
                "b2",
                aoi={
                    "type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [2.3, 48.8]},
                    "properties": {},
                },
            ),
            "area",
        ),  # fmt: skip
        (spec("b3", aoi="/etc/passwd.geojson"), "GeoJSON object"),
        (spec("b4", aoi=HUGE), "km²"),
        (spec("b5", presets=["s2-nope"]), "s2-nope"),
        (spec("b6", cadence="every tuesday"), "cron"),
        (spec("b7", cadence=0), "at least 1 second"),
        (spec("b8", start="2020-02-01", end="2020-01-01"), "before it starts"),
        (spec("b9", colour="red"), "colour: unknown field"),
        (spec("bad name"), "task name"),
        (spec("b10", sensors=["landsat"]), "landsat"),
        ([spec("b11")], "JSON object"),
        (spec("b12", provider="local:/etc"), "process_input_roots"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(api: Api, body: Any, named: str) -> None:
    resp = api.client.post("/tasks", json=body, headers=api.ann)
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["description"], resp.json()


def test_bad_changes_are_refused_and_leave_the_task_as_it_was(api: Api) -> None:
    c = api.client
    task = c.post("/tasks", json=spec("stable-site"), headers=api.ann).json()
    c.post("/tasks", json=spec("other-site"), headers=api.ann)
    for changes, named in (
        ({"end": "2001-01-01", "start": "2002-01-01"}, "before it starts"),
        ({"aoi": HUGE}, "km²"),
        ({"presets": ["nope"]}, "nope"),
        ({"name": "other-site"}, "already exists"),
        ({"unknown": 1}, "unknown field"),
        ({"aoi": "2.3,48.8,2.4,48.9"}, "GeoJSON object"),
    ):
        resp = c.patch(f"/tasks/{task['id']}", json=changes, headers=api.ann)
        assert resp.status_code == 400 and named in resp.json()["description"], (changes, resp.text)
    after = c.get(f"/tasks/{task['id']}", headers=api.ann).json()
    assert after["spec"] == task["spec"] and after["name"] == "stable-site"
    # names are unique per owner: ann's task is no clash for bob (its default collection is)
    bobs = c.post("/tasks", json=spec("stable-site"), headers=api.bob)
    assert bobs.status_code == 201 and bobs.json()["collection"] == f"task-{bobs.json()['id']}"
    renamed = c.patch(f"/tasks/{task['id']}", json={"name": "renamed-site"}, headers=api.ann).json()
    assert (
        renamed["name"] == "renamed-site" and renamed["collection"] == "task-stable-site"
    )  # products stay put


# -- end to end over real HTTP ---------------------------------------------------------------------------

SERVE = "from eowatch.cli.main import cli; cli()"


def test_serve_with_scheduler_and_worker_end_to_end(paris: Path, tmp_path: Path) -> None:
    """`eowatch serve --scheduler --worker` on loopback: a task created and triggered
    over HTTP is polled, its job runs on the embedded worker, the product is searchable
    and counted by /ops/summary; SIGTERM stops the threads and the process cleanly."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copy(paris / "dates.txt", catalog / "dates.txt")
    add_date(catalog, paris, 1)
    add_date(catalog, paris, 2)
    db = f"sqlite:///{tmp_path / 'service.db'}"
    access = AccessStore(make_engine(db))
    headers = user_key(access, "ann", "analyst")
    access.engine.dispose()
    env = {
        **os.environ,
        "EOWATCH_OUTPUT_DIR": str(tmp_path / "out"),
        "EOWATCH_DATABASE_URL": db,
        "EOWATCH_SCHEDULER_POLL_S": "0.5",
        "EOWATCH_WORKER_POLL_S": "0.5",
        "EOWATCH_WORKER_PROCESSES": "1",
        "EOWATCH_PROCESS_INPUT_ROOTS": json.dumps([str(catalog)]),  # where a local: provider may point
    }
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, "serve", "--port", str(port), "--scheduler", "--worker",
         "--log-level", "info"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    log = b""
    try:
        wait_until_serving(url, proc)
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            aoi = json.loads((paris / "paris.geojson").read_text())["features"][0]  # a Feature
            body = {
                "name": "paris-http", "aoi": aoi, "sensors": ["s2"], "presets": ["s2-imad"],
                "start": "2016-06-01", "cadence": 3600, "provider": f"local:{catalog}",
                "pairing": {"max_gap_days": 400},  # the bundled dates are 342 days apart
            }  # fmt: skip
            created = http.post("/tasks", json=body)
            assert created.status_code == 201, created.text
            task_id = created.json()["id"]
            started = time.perf_counter()
            assert http.post(f"/tasks/{task_id}/trigger").status_code == 200
            deadline = time.monotonic() + 120
            jobs: list[dict[str, Any]] = []
            while time.monotonic() < deadline:
                jobs = http.get(f"/tasks/{task_id}/jobs").json()["jobs"]
                if jobs and jobs[0]["status"] in ("succeeded", "failed"):
                    break
                time.sleep(0.5)
            elapsed = time.perf_counter() - started
            assert len(jobs) == 1 and jobs[0]["status"] == "succeeded", jobs
            print(f"\ntrigger -> job succeeded over HTTP: {elapsed:.1f} s")
            job = jobs[0]
            assert job["collection"] == "task-paris-http" and job["item_id"]

            found = http.get("/search", params={"collections": "task-paris-http"}).json()
            assert [f["id"] for f in found["features"]] == [job["item_id"]]
            assert found["features"][0]["properties"]["eowatch:task"] == "paris-http"

            summary = http.get("/ops/summary").json()
            assert summary["jobs_by_state"]["monitoring"]["succeeded"] == 1
            assert sum(b["succeeded"] for b in summary["throughput"]) == 1
            assert summary["duration_s"]["s2-imad"]["count"] == 1
            assert summary["duration_s"]["s2-imad"]["median"] == pytest.approx(job["duration_s"], abs=0.01)
            backfill = summary["latency_s"]["backfill_acquisition_to_product"]
            assert backfill["count"] == 1 and backfill["median"] > 86400  # a 2017 date: a backfill
            assert summary["latency_s"]["count"] == 0  # no live job
            assert summary["queue_depth"] == 0
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout:
                log = proc.stdout.read()
                proc.stdout.close()
    text_log = log.decode(errors="replace")
    # uvicorn shuts down gracefully, then re-raises the signal it caught: -15 is its normal exit
    assert code in (0, -15), text_log[-3000:]
    assert "embedded monitoring started: eowatch-scheduler, eowatch-worker" in text_log
    assert "embedded monitoring stopped" in text_log and "did not stop" not in text_log


def test_tasks_live_in_the_monitoring_database_when_it_is_separate(tmp_path: Path) -> None:
    """With ``monitor_database_url`` the routes read and write the monitoring database
    (where the scheduler and workers look), users and grants stay in the catalogue's."""
    catalog_url, monitor_url = f"sqlite:///{tmp_path / 'catalog.db'}", f"sqlite:///{tmp_path / 'monitor.db'}"
    with service(catalog_url, tmp_path / "out", monitor_database_url=monitor_url) as (client, access):
        ann = user_key(access, "ann", "analyst")
        created = client.post("/tasks", json=spec("split-site"), headers=ann)
        assert created.status_code == 201, created.text
        assert client.get("/ops/summary", headers=ann).json()["jobs_by_state"]["monitoring"]["queued"] == 0
    monitor, catalog = make_engine(monitor_url), make_engine(catalog_url)
    with monitor.connect() as conn:
        assert conn.execute(text("SELECT name, owner FROM monitor_tasks")).all() == [("split-site", "ann")]
    with catalog.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM monitor_tasks")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM users")).scalar() == 1
    monitor.dispose()
    catalog.dispose()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("webhooks", [{"url": "http://169.254.169.254/latest/meta-data/", "secret": "k"}]),
        ("webhooks", [{"url": "http://127.0.0.1:6379/", "secret": "k"}]),
        ("provider", "http://10.0.0.7/stac/v1"),
    ],
)
def test_tasks_may_not_reach_private_addresses(api: Api, field: str, value: Any) -> None:
    name = f"ssrf-{uuid.uuid4().hex[:8]}"
    resp = api.client.post("/tasks", json=spec(name, **{field: value}), headers=api.ann)
    assert resp.status_code == 400, resp.text
    assert "private, loopback or link-local" in resp.json()["description"]
    patched = api.client.post("/tasks", json=spec(name), headers=api.ann)
    assert patched.status_code == 201
    resp = api.client.patch(f"/tasks/{patched.json()['id']}", json={field: value}, headers=api.ann)
    assert resp.status_code == 400 and "private" in resp.json()["description"]
