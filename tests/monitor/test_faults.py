"""Faults around a monitoring job, on the bundled real Paris pair: a results
database locked during ingest is a retry, not a permanent failure, and the job
ends once with one product; a job whose input never answers is stopped at its
time limit, its process ended and its lease released."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from eowatch.monitor import Scheduler, TaskService, Worker
from eowatch.monitor.alerts import post_webhook
from eowatch.monitor.executors import LocalProcessExecutor
from eowatch.outbound import OutboundRefused
from eowatch.results import ResultsCatalog
from eowatch.services import Services
from eowatch.settings import Settings

from ..http_server import serve_silent
from .conftest import add_date, services_for
from .test_e2e import _task


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_locked_results_database_is_retried_and_the_job_ends_once(
    tmp_path: Path, db_url: str, engine: Engine, local_catalog: Path, paris: Path
) -> None:
    settings = Settings(output_dir=tmp_path / "out", database_url=db_url, job_backoff_s=0)
    results_db = tmp_path / "results.db"
    results = ResultsCatalog(f"sqlite:///{results_db}")  # the monitoring tables stay in `engine`
    services = Services(settings, results=results, monitor_engine=engine)
    add_date(local_catalog, paris, 2)
    TaskService(settings, engine).create(_task(local_catalog, paris, None))
    (job_id,) = Scheduler(services).tick().enqueued
    worker = Worker(services, executor="inline", poll_s=0.1)

    lock = sqlite3.connect(results_db, isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")  # another writer holds the database past SQLite's busy timeout
    try:
        outcome = worker.run_once()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert outcome is not None and outcome.status == "queued", outcome
    assert "locked" in str(outcome.error) and "CatalogBusyError" in str(outcome.error)
    job = services.queue.get(job_id)
    assert job.status == "queued" and job.error_class == "eowatch.errors.CatalogBusyError"

    again = worker.run_once()
    assert again is not None and again.status == "succeeded", again
    done = services.queue.get(job_id)
    assert done.status == "succeeded" and done.attempts == 2
    assert [i["id"] for i in results.search(collections=[str(done.collection)]).items] == [done.item_id]
    products = Path(str(done.product_folder)).parent
    assert [p.name for p in products.iterdir()] == [Path(str(done.product_folder)).name]
    worker.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_job_past_its_time_limit_is_stopped_and_its_process_ended(
    tmp_path: Path, db_url: str, engine: Engine, local_catalog: Path, paris: Path
) -> None:
    # The inputs hang (a server that never answers, reads allowed 600 s): only the job's limit ends it.
    settings = Settings(output_dir=tmp_path / "out", database_url=db_url, http_timeout_s=600, job_timeout_s=3)
    services = services_for(settings, engine)
    add_date(local_catalog, paris, 2)
    task = TaskService(settings, engine).create(_task(local_catalog, paris, None))
    (real_id,) = Scheduler(services).tick().enqueued
    payload = services.queue.get(real_id).payload
    assert services.queue.cancel(real_id)
    executor = LocalProcessExecutor(1, grace_s=1)
    with serve_silent() as url:
        for side in ("before", "after"):
            for asset in payload[side]["assets"].values():
                asset["href"] = f"{url}/{Path(asset['href']).name}"
        hung_id, _ = services.queue.enqueue(task.id, "s2-imad", "hung-before", "hung-after", payload)
        worker = Worker(services, executor=executor, poll_s=0.1)
        outcome = worker.run_once()
        assert executor.running() == 0  # the job's process was ended, not left reading
    assert outcome is not None and outcome.job_id == hung_id and outcome.status == "failed", outcome
    assert "JobTimeoutError" in str(outcome.error) and "EOWATCH_JOB_TIMEOUT_S" in str(outcome.error)
    job = services.queue.get(hung_id)
    assert (job.status, job.lease_owner, job.attempts) == ("failed", None, 1)
    assert str(job.error_class).endswith("JobTimeoutError")
    assert worker.run_once() is None  # not retried: the same job would hit the same limit
    assert not list((tmp_path / "out").rglob(".*partial-*"))
    executor.close()


def test_a_webhook_on_loopback_is_called_only_when_allowed(receiver: Any) -> None:
    with pytest.raises(OutboundRefused, match="loopback"):
        post_webhook(receiver.url, {"event": "change"}, None, 5.0, "1")
    assert receiver.requests() == []  # refused before any connection
    assert post_webhook(receiver.url, {"event": "change"}, None, 5.0, "2", ("127.0.0.1",)) == 204
    assert len(receiver.wait(1)) == 1


def test_two_schedulers_and_two_workers_racing_end_every_job_once(
    settings: Settings, engine: Engine, local_catalog: Path, paris: Path
) -> None:
    add_date(local_catalog, paris, 2)
    tasks = TaskService(settings, engine)
    task = tasks.create(_task(local_catalog, paris, None, presets=["s2-imad", "s2-cva"]))
    schedulers = [Scheduler(services_for(settings, engine)) for _ in range(2)]
    for _ in range(3):  # both tick at once, three times over
        tasks.trigger(task.id)
        _together(*(s.tick for s in schedulers))
    workers = [Worker(services_for(settings, engine), executor="inline", poll_s=0.05) for _ in range(2)]
    outcomes: list[Any] = []
    _together(*(lambda w=w: outcomes.extend(w.run(until_empty=True)) for w in workers))
    jobs = services_for(settings, engine).queue.list(task_id=task.id)
    assert sorted(j.preset for j in jobs) == ["s2-cva", "s2-imad"]  # two jobs, not six
    assert [(j.status, j.attempts) for j in jobs] == [("succeeded", 1)] * 2
    assert sorted(o.status for o in outcomes) == ["succeeded", "succeeded"]  # each ran once, by one worker
    items = ResultsCatalog(engine).search(collections=[task.spec.collection or ""]).items
    assert sorted(i["id"] for i in items) == sorted(str(j.item_id) for j in jobs)
    folders = Path(str(jobs[0].product_folder)).parent
    assert sorted(p.name for p in folders.iterdir()) == sorted(Path(str(j.product_folder)).name for j in jobs)
    for worker in workers:
        worker.close()


def _together(*calls: Any) -> None:
    """Run ``calls`` in threads started together; re-raise the first error."""
    import threading

    errors: list[BaseException] = []
    start = threading.Barrier(len(calls))

    def run(call: Any) -> None:
        start.wait()
        try:
            call()
        except BaseException as exc:  # handed to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
