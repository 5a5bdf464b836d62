"""``GET /ops/summary`` over real job rows of both kinds (monitoring tasks' jobs and
OGC process executions, one queue), on SQLite and PostgreSQL: the SQL bucketing and the bounded
statistics give the numbers computed here by hand."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from eowatch.errors import InputError
from eowatch.monitor import JobQueue, TaskService
from eowatch.store.auth import AccessStore
from eowatch.store.monitoring import JobRow

from ..databases import fresh_database
from .service import service, user_key
from .test_tasks import PARIS_AOI

NOW = time.time()


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient, AccessStore]]:
    url = fresh_database(request.param, tmp_path, "api_ops")
    with service(url, tmp_path / "out", process_workers=0) as pair:
        yield pair


def _set(engine: Any, job_id: str, **values: Any) -> None:
    with Session(engine) as session, session.begin():
        session.execute(update(JobRow).where(JobRow.id == job_id).values(**values))


def test_summary_counts_buckets_and_failures(site: tuple[TestClient, AccessStore]) -> None:
    client, access = site
    app = client.app
    engine = app.state.monitor_engine  # type: ignore[attr-defined]
    task = TaskService(app.state.settings, engine).create(  # type: ignore[attr-defined]
        {"name": "ops-site", "aoi": PARIS_AOI, "owner": "ann"}
    )
    queue = JobQueue(engine)
    acquired = NOW - 5 * 86400
    # claimed oldest acquisition first: a millisecond apart fixes the order
    ids = [queue.enqueue(task.id, preset, f"b{i}", f"a{i}", {}, after_time=acquired + i / 1000)[0]
           for i, preset in enumerate(["s2-imad", "s2-imad", "s2-ndvi", "s2-imad", "s2-imad"])]  # fmt: skip
    for job_id in ids[:4]:
        claimed = queue.claim("w")
        assert claimed is not None and claimed.id == job_id
    queue.complete(ids[0], "w", item_id="i0", collection="task-ops-site")
    queue.complete(ids[1], "w", item_id="i1", collection="task-ops-site")
    queue.complete(ids[2], "w", item_id="i2", collection="task-ops-site")
    queue.fail(ids[3], "w", InputError("the AOI does not overlap the images"))
    # fix the times: runs of 10, 20 and 30 s; one finished an hour ago, the others 2 min ago
    for job_id, run_s, ago in ((ids[0], 10.0, 3600.0), (ids[1], 20.0, 120.0), (ids[2], 30.0, 120.0)):
        start = NOW - ago - run_s
        _set(engine, job_id, started_at=start, finished_at=NOW - ago, created=start - 5)
    _set(engine, ids[3], finished_at=NOW - 60)
    # and a week-old success outside the 24 h window, which counts in states but not in throughput
    old, _ = queue.enqueue(task.id, "s2-imad", "old-b", "old-a", {}, after_time=NOW - 8 * 86400)
    _set(engine, old, status="succeeded", started_at=NOW - 7 * 86400 - 40, finished_at=NOW - 7 * 86400)

    # process executions are jobs of the same queue (this service runs none: process_workers 0)
    ok = queue.submit_process("s2-imad", "ann", {}, "processes")
    _set(engine, ok.id, status="succeeded", started_at=NOW - 200, finished_at=NOW - 150)
    bad = queue.submit_process("s1-logratio", "ann", {}, "processes")
    _set(engine, bad.id, status="failed", error_class="PairingError", error_message="orbits differ",
         finished_at=NOW - 30)  # fmt: skip
    queue.submit_process("s2-imad", "ann", {}, "processes")  # accepted: waiting

    root = user_key(access, "root", "admin")
    ann = user_key(access, "ann", "analyst")
    pia = user_key(access, "pia", "partner", "acme")
    assert client.get("/ops/summary", headers=pia).status_code == 403
    assert client.get("/ops/summary", headers=root).status_code == 200
    summary = client.get("/ops/summary", headers=ann).json()

    mon = summary["jobs_by_state"]["monitoring"]
    assert (mon["succeeded"], mon["failed"], mon["queued"], mon["running"]) == (4, 1, 1, 0)
    proc = summary["jobs_by_state"]["processes"]
    assert (proc["successful"], proc["failed"], proc["accepted"]) == (1, 1, 1)
    assert summary["queue_depth"] == 2
    assert summary["queue_depth_by_source"] == {"monitoring": 1, "processes": 1}

    buckets = summary["throughput"]
    assert len(buckets) == 144
    starts = [dt.datetime.fromisoformat(b["t"].replace("Z", "+00:00")).timestamp() for b in buckets]
    assert starts == sorted(starts) and all(b - a == 600 for a, b in zip(starts, starts[1:], strict=False))
    assert sum(b["succeeded"] for b in buckets) == 4 and sum(b["failed"] for b in buckets) == 2

    def bucket_of(epoch: float) -> dict[str, Any]:
        return buckets[starts.index(epoch // 600 * 600)]

    hour_ago = bucket_of(NOW - 3600)  # the hour-old success alone in its bucket
    assert (hour_ago["succeeded"], hour_ago["failed"]) == (1, 0)
    assert bucket_of(NOW - 120)["succeeded"] >= 2

    durations = summary["duration_s"]
    assert durations["s2-imad"]["count"] == 4  # 10, 20, 40 (a week old) and the 50 s process run
    assert durations["s2-imad"]["median"] == pytest.approx(30.0, abs=0.01)
    assert durations["s2-imad"]["p90"] == pytest.approx(47.0, abs=0.01)
    assert durations["s2-ndvi"] == {"count": 1, "median": pytest.approx(30.0, abs=0.01),
                                    "p90": pytest.approx(30.0, abs=0.01)}  # fmt: skip

    # acquisition to product: every job here was queued days after its acquisition (a
    # backfill): 1 day (the old job), 5 days less 1 h, 5 days less 2 min (twice); none live
    latency = summary["latency_s"]
    assert latency["count"] == 0 and latency["median"] is None and "sensing time" in latency["description"]
    backfill = latency["backfill_acquisition_to_product"]
    assert backfill["count"] == 4
    assert backfill["median"] == pytest.approx((5 * 86400 - 3600 + 5 * 86400 - 120) / 2, abs=0.1)
    assert backfill["p90"] == pytest.approx(5 * 86400 - 120, abs=0.1)
    queued = latency["enqueued_to_product"]  # created 5 s before each run started
    assert queued["count"] == 4 and queued["median"] == pytest.approx(20.0, abs=1.0)

    failures = summary["recent_failures"]
    assert [f["job_id"] for f in failures] == [bad.id, ids[3]]  # newest first
    assert failures[0]["error_class"] == "PairingError" and failures[0]["error"] == "orbits differ"
    assert failures[1]["task"] == "ops-site" and failures[1]["preset"] == "s2-imad"
    assert failures[1]["error_class"] == "eowatch.errors.InputError" and "overlap" in failures[1]["error"]
    assert failures[1]["time"].endswith("Z")


def test_backfilled_acquisitions_are_reported_apart(site: tuple[TestClient, AccessStore]) -> None:
    """A task started over past dates makes jobs whose acquisition-to-product time is the
    archive's age (the 2017 pair: years); the live latency is that of jobs queued within
    3 days of their acquisition."""
    client, access = site
    app = client.app
    engine = app.state.monitor_engine  # type: ignore[attr-defined]
    task = TaskService(app.state.settings, engine).create(  # type: ignore[attr-defined]
        {"name": "ops-backfill", "aoi": PARIS_AOI, "owner": "ann"}
    )
    queue = JobQueue(engine)
    jobs = {"live": NOW - 7200, "live2": NOW - 2 * 86400, "backfill": NOW - 3000 * 86400}
    for name, acquired in jobs.items():
        job_id, _ = queue.enqueue(task.id, "s2-imad", f"b-{name}", f"a-{name}", {}, after_time=acquired)
        assert queue.claim("w") is not None
        queue.complete(job_id, "w", item_id=name, collection="task-ops-backfill")
        queued = NOW - 86400 if name == "backfill" else acquired + 3600  # live: 1 h after sensing
        _set(engine, job_id, created=queued, started_at=queued + 10, finished_at=queued + 70)
    summary = client.get("/ops/summary", headers=user_key(access, "ann", "analyst")).json()
    latency = summary["latency_s"]
    assert latency["count"] == 2 and latency["acquisition_to_product"]["count"] == 2
    assert latency["median"] == pytest.approx(3670.0, abs=0.1)  # both: 1 h in the queue + 70 s
    backfill = latency["backfill_acquisition_to_product"]
    assert backfill["count"] == 1 and backfill["median"] == pytest.approx(
        NOW - 86400 + 70 - jobs["backfill"], abs=1
    )


def test_a_finished_job_dismissed_afterwards_keeps_its_outcome(site: tuple[TestClient, AccessStore]) -> None:
    """DELETE /jobs/{id} on a finished execution hides it from its owner; the operations
    figures still count it as it ended (it did succeed or fail), and only executions stopped
    before their end count as dismissed."""
    client, access = site
    engine = client.app.state.monitor_engine  # type: ignore[attr-defined]
    queue = JobQueue(engine)
    ann = user_key(access, "ann", "analyst")
    done = queue.submit_process("s2-imad", "ann", {}, "processes")
    _set(engine, done.id, status="succeeded", started_at=NOW - 100, finished_at=NOW - 50)
    broke = queue.submit_process("s2-imad", "ann", {}, "processes")
    _set(engine, broke.id, status="failed", error_class="InputError", error_message="x", finished_at=NOW - 40)
    waiting = queue.submit_process("s2-imad", "ann", {}, "processes")
    for job in (done, broke, waiting):
        resp = client.delete(f"/jobs/{job.id}", headers=ann)
        assert resp.status_code == 200 and resp.json()["status"] == "dismissed", resp.text
        assert client.get(f"/jobs/{job.id}", headers=ann).status_code == 404
        assert client.delete(f"/jobs/{job.id}", headers=ann).status_code == 404  # gone for its owner
    assert client.get("/jobs", headers=ann).json()["jobs"] == []
    states = client.get("/ops/summary", headers=ann).json()["jobs_by_state"]["processes"]
    assert (states["successful"], states["failed"], states["dismissed"], states["accepted"]) == (1, 1, 1, 0)
