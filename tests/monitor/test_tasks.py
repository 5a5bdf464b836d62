"""Tasks (create, list, show, pause, resume, trigger, delete), alert delivery
with retries, and the CLI commands."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from eowatch.cli.task import scheduler, task, worker
from eowatch.errors import InputError, NotFoundError
from eowatch.monitor import JobQueue, Scheduler, TaskService, TaskSpec, sign, verify_signature
from eowatch.monitor.alerts import deliver_due, queue_alerts
from eowatch.settings import Settings
from eowatch.store.monitoring import AlertRow

from .conftest import Receiver, add_date, services_for
from .test_e2e import _task

AOI = "2.31,48.80,2.35,48.84"


def test_task_lifecycle(settings: Settings, engine: Engine) -> None:
    service = TaskService(settings, engine)
    created = service.create({"name": "site-a", "aoi": AOI, "cadence": "0 6 * * *", "owner": "ann",
                              "webhooks": [{"url": "http://127.0.0.1:9/h", "secret": "k"}]})  # fmt: skip
    assert created.state == "active" and created.spec.collection == "task-site-a"
    assert created.spec.sensors == ["sentinel-2"] and created.spec.continuous
    assert created.as_dict()["spec"]["webhooks"][0]["secret"] == "***"
    service.create({"name": "site-b", "aoi": AOI, "sensors": ["s1"], "owner": "bob"})
    assert [t.name for t in service.list()] == ["site-a", "site-b"]
    assert [t.name for t in service.list(owner="bob")] == ["site-b"]
    assert service.get(created.id).name == "site-a"

    sched = Scheduler(services_for(settings, engine))
    assert service.pause("site-a").state == "paused"
    assert [t.name for t in service.list(state="active")] == ["site-b"]
    assert service.resume("site-a").state == "active"
    service.trigger("site-a")
    assert service.get("site-a").next_due_at is None  # due now
    service.delete("site-a")
    with pytest.raises(NotFoundError):
        service.get("site-a")
    assert sched.queue.counts() == {}


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "has space", "aoi": AOI},
        {"name": "x", "aoi": "not an aoi"},
        {"name": "x", "aoi": AOI, "sensors": ["landsat"]},
        {"name": "x", "aoi": AOI, "cadence": "every tuesday"},
        {"name": "x", "aoi": AOI, "cadence": 0},
        {"name": "x", "aoi": AOI, "start": "2020-01-02", "end": "2020-01-01"},
        {"name": "x", "aoi": AOI, "presets": ["no-such-preset"]},
        {"name": "x", "aoi": AOI, "webhooks": [{"url": "ftp://x"}]},
    ],
)
def test_invalid_tasks_are_refused(settings: Settings, engine: Engine, bad: dict[str, object]) -> None:
    with pytest.raises(InputError):
        TaskService(settings, engine).create(bad)


def test_duplicate_name_is_refused(settings: Settings, engine: Engine) -> None:
    service = TaskService(settings, engine)
    service.create({"name": "dup", "aoi": AOI})
    with pytest.raises(InputError, match="already exists"):
        service.create({"name": "dup", "aoi": AOI})


def test_cron_cadence() -> None:
    from eowatch.monitor.tasks import next_due

    spec = TaskSpec(name="c", aoi=AOI, cadence="*/15 * * * *")
    t0 = 1_700_000_000.0  # 22:13:20 UTC
    assert next_due(spec.cadence, t0) == 1_700_000_100.0  # 22:15
    assert next_due(600, t0) == t0 + 600


def test_signature() -> None:
    body = b'{"a": 1}'
    header = sign(body, "key")
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(body, "key", header)
    assert not verify_signature(body + b" ", "key", header)
    assert not verify_signature(body, "key", None)


def test_alert_delivery_is_retried(
    settings: Settings, engine: Engine, tmp_path: Path, local_catalog: Path, paris: Path
) -> None:
    """A receiver failing twice gets the alert on the third attempt; it is recorded once."""
    rec = Receiver(tmp_path / "flaky.jsonl", fail_first=2)
    try:
        service = TaskService(settings, engine)
        created = service.create(_task(local_catalog, paris, rec.url))
        queue = JobQueue(engine)
        job_id, _ = queue.enqueue(created.id, "s2-imad", "b", "a", {})
        job = queue.get(job_id)
        summary = {"folder": str(tmp_path), "changed_area_m2": 5000.0, "polygon_count": 3,
                   "before": {"id": "b"}, "after": {"id": "a"}}  # fmt: skip
        item = {"id": "run-1", "bbox": [2.3, 48.8, 2.4, 48.9]}
        assert queue_alerts(engine, settings, job, summary, item) == 1
        assert queue_alerts(engine, settings, job, summary, item) == 0  # recorded once
        statuses = []
        for _ in range(3):
            statuses.append(deliver_due(engine, settings, backoff_s=0.05))
            with Session(engine) as session:
                row = session.scalars(select(AlertRow)).one()
                session.expunge(row)
            time.sleep(max(0.0, row.next_attempt_at - time.time()) + 0.01)
        assert [list(s.values()) for s in statuses] == [["pending"], ["pending"], ["sent"]]
        assert (row.status, row.attempts, row.response_code, row.signed) == ("sent", 3, 204, True)
        (got,) = rec.wait(1)
        assert verify_signature(str(got["body"]).encode(), "s3cret-for-tests",
                                dict(got["headers"])["X-Eowatch-Signature"])  # type: ignore[call-overload]  # fmt: skip
        # below the task's minimum: no alert
        small = {**summary, "changed_area_m2": 10.0}
        job2 = queue.get(queue.enqueue(created.id, "s2-imad", "b2", "a2", {})[0])
        assert queue_alerts(engine, settings, job2, small, item) == 0
    finally:
        rec.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_cli(
    db_url: str, tmp_path: Path, local_catalog: Path, paris: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EOWATCH_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("EOWATCH_DATABASE_URL", db_url)
    runner = CliRunner()
    add_date(local_catalog, paris, 2)
    args = ["create", "paris", "--aoi", str(paris / "paris.geojson"), "--preset", "s2-cva", "--start",
            "2016-06-01", "--provider", f"local:{local_catalog}", "--max-gap-days", "400"]  # fmt: skip
    result = runner.invoke(task, args)
    assert result.exit_code == 0, result.output
    assert "task-paris" in result.output
    result = runner.invoke(task, ["create", "paris", "--aoi", AOI])
    assert result.exit_code == 2 and "already exists" in result.output
    result = runner.invoke(scheduler, ["--once"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.splitlines()[-1])["enqueued"] == 1
    result = runner.invoke(worker, ["--once", "--executor", "inline"])
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output
    listed = runner.invoke(task, ["list"])
    assert "succeeded=1" in listed.output
    shown = json.loads(runner.invoke(task, ["show", "paris", "--jobs"]).output)
    assert shown["job_list"][0]["status"] == "succeeded"
    for action in ("pause", "resume", "trigger", "delete"):
        result = runner.invoke(task, [action, "paris"])
        assert result.exit_code == 0, result.output
    assert runner.invoke(task, ["show", "paris"]).exit_code == 2
