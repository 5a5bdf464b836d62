"""End to end on the local catalogue with the bundled real Sentinel-2 pair:
a new acquisition -> exactly one job -> products in the results catalogue
-> one signed webhook alert. On SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from eowatch.monitor import SIGNATURE_HEADER, JobQueue, Scheduler, TaskService, Worker, verify_signature
from eowatch.results import ResultsCatalog
from eowatch.settings import Settings

from .conftest import Receiver, add_date, services_for

SECRET = "s3cret-for-tests"


def _task(local_catalog: Path, paris: Path, hook: str | None, **extra: object) -> dict[str, object]:
    return {
        "name": "paris-watch",
        "aoi": str(paris / "paris.geojson"),
        "sensors": ["s2"],
        "presets": ["s2-imad"],
        "start": "2016-06-01",
        "cadence": 3600,
        "provider": f"local:{local_catalog}",
        "pairing": {"max_gap_days": 400},  # the bundled dates are 342 days apart
        "min_alert_area_m2": 1000,
        "webhooks": [{"url": hook, "secret": SECRET}] if hook else [],
        "owner": "analyst",
        **extra,
    }


def test_new_acquisition_to_signed_alert(
    settings: Settings, engine: Engine, local_catalog: Path, paris: Path, receiver: Receiver
) -> None:
    tasks = TaskService(settings, engine)
    task = tasks.create(_task(local_catalog, paris, receiver.url))
    scheduler = Scheduler(services_for(settings, engine))
    queue = scheduler.queue

    report = scheduler.tick()
    assert report.polled == ["paris-watch"] and not report.errors
    assert queue.counts() == {}  # one date only: nothing to pair yet

    appeared = time.perf_counter()
    add_date(local_catalog, paris, 2)
    assert scheduler.tick().polled == []  # not due before its cadence
    tasks.trigger("paris-watch")
    report = scheduler.tick()
    assert len(report.enqueued) == 1, report
    (job,) = queue.list()
    assert (job.status, job.preset) == ("queued", "s2-imad")
    assert job.payload["pair"]["before"] != job.payload["pair"]["after"]

    # ticking again, or two schedulers at once, adds nothing
    tasks.trigger("paris-watch")
    others = [Scheduler(services_for(settings, engine)) for _ in range(2)]
    threads = [threading.Thread(target=s.tick) for s in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tasks.trigger("paris-watch")
    assert scheduler.tick().enqueued == []
    assert len(queue.list()) == 1

    worker = Worker(services_for(settings, engine), executor="inline", poll_s=0.1)
    outcome = worker.run_once()
    assert outcome is not None and outcome.status == "succeeded", outcome
    latency = time.perf_counter() - appeared
    print(f"\nlatency acquisition -> catalogued ({engine.dialect.name}): {latency:.2f} s")
    assert worker.run_once() is None

    done = queue.get(job.id)
    assert done.status == "succeeded" and done.attempts == 1 and done.collection == "task-paris-watch"
    folder = Path(str(done.product_folder))
    assert (folder / "item.json").is_file() and (folder / "change_map.tif").is_file()
    catalog = ResultsCatalog(engine)
    found = catalog.search(collections=["task-paris-watch"])
    assert [i["id"] for i in found.items] == [done.item_id]
    assert found.items[0]["properties"]["eowatch:task"] == "paris-watch"

    (alert,) = receiver.wait(1)
    body = str(alert["body"]).encode()
    headers = {k.lower(): v for k, v in dict(alert["headers"]).items()}  # type: ignore[call-overload]
    assert verify_signature(body, SECRET, headers[SIGNATURE_HEADER.lower()])
    assert not verify_signature(body, "wrong", headers[SIGNATURE_HEADER.lower()])
    summary = json.loads(body)
    assert summary["task"]["name"] == "paris-watch" and summary["job"] == job.id
    assert summary["changed_area_m2"] >= 1000 and summary["polygon_count"] >= 1
    assert summary["before"]["datetime"].startswith("2016-11-30")
    assert summary["after"]["datetime"].startswith("2017-11-07")
    item_path = f"/collections/task-paris-watch/items/{done.item_id}"  # the API's, not a file
    assert summary["links"]["item"] == item_path
    assert summary["links"]["quicklook"] == f"{item_path}/assets/quicklook"

    # a re-run of the same job replaces its products and does not alert again
    assert queue.retry(job.id) is False  # succeeded jobs are not re-queued
    tasks.trigger(task.id)
    scheduler.tick()
    assert worker.run_once() is None
    time.sleep(0.3)
    assert len(receiver.requests()) == 1
    assert len(list((folder.parent).iterdir())) == 1
    shown = tasks.get("paris-watch")
    assert shown.jobs == {"succeeded": 1} and shown.last_poll_error is None
    worker.close()


def test_backfill_processes_every_pair_oldest_first(
    settings: Settings, engine: Engine, local_catalog: Path, paris: Path
) -> None:
    add_date(local_catalog, paris, 2)
    tasks = TaskService(settings, engine)
    tasks.create(_task(local_catalog, paris, None, end="2018-01-01", presets=["s2-imad", "s2-cva"]))
    Scheduler(services_for(settings, engine)).tick()
    jobs = JobQueue(engine).list()
    assert sorted(j.preset for j in jobs) == ["s2-cva", "s2-imad"]
    assert {j.after_id for j in jobs} == {jobs[0].after_id}


def test_poll_errors_are_recorded(settings: Settings, engine: Engine, tmp_path: Path, paris: Path) -> None:
    tasks = TaskService(settings, engine)
    tasks.create(_task(tmp_path / "missing", paris, None))
    report = Scheduler(services_for(settings, engine)).tick()
    assert "paris-watch" in report.errors
    assert "not a folder" in str(tasks.get("paris-watch").last_poll_error)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_runs_on_a_dask_cluster(settings: Settings, engine: Engine, local_catalog: Path, paris: Path) -> None:
    distributed = pytest.importorskip("distributed")
    from eowatch.monitor import DaskExecutor

    add_date(local_catalog, paris, 2)
    TaskService(settings, engine).create(_task(local_catalog, paris, None))
    Scheduler(services_for(settings, engine)).tick()
    with (
        distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        worker = Worker(services_for(settings, engine), executor=DaskExecutor(client=client), poll_s=0.1)
        outcome = worker.run_once()
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert ResultsCatalog(engine).search(collections=["task-paris-watch"]).matched == 1
