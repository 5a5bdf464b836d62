"""A worker killed (SIGKILL) in the middle of a job loses nothing: its lease
expires, a new worker runs the job once more, the products are not duplicated.
Also the default executor: local worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from eowatch.monitor import JobQueue, Scheduler, TaskService, Worker
from eowatch.results import ResultsCatalog
from eowatch.settings import Settings

from .conftest import HERE, add_date, services_for
from .test_e2e import _task

LEASE_S = 1.0


def _one_job(settings: Settings, engine: Engine, local_catalog: Path, paris: Path) -> str:
    add_date(local_catalog, paris, 2)
    TaskService(settings, engine).create(_task(local_catalog, paris, None))
    Scheduler(services_for(settings, engine)).tick()
    (job,) = JobQueue(engine).list()
    return job.id


def test_killed_worker_job_finishes_once(
    settings: Settings, engine: Engine, db_url: str, local_catalog: Path, paris: Path, tmp_path: Path
) -> None:
    job_id = _one_job(settings, engine, local_catalog, paris)
    marker = tmp_path / "products-written"
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "slow_worker.py"), db_url, str(settings.output_dir), str(marker),
         str(LEASE_S)],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the worker process did not reach the middle of its job"
        queue = JobQueue(engine)
        running = queue.get(job_id)
        assert (running.status, running.lease_owner, running.attempts) == ("running", "doomed", 1)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert queue.claim("too-early") is None  # its lease still runs
    time.sleep(LEASE_S + 0.2)
    worker = Worker(services_for(settings, engine), executor="inline")
    outcome = worker.run_once()
    assert outcome is not None and (outcome.job_id, outcome.status) == (job_id, "succeeded")
    assert worker.run_once() is None
    done = queue.get(job_id)
    assert (done.status, done.attempts) == ("succeeded", 2)
    folder = Path(marker.read_text())
    assert Path(str(done.product_folder)) == folder
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # one product folder, no staging
    assert ResultsCatalog(engine).search(collections=["task-paris-watch"]).matched == 1
    worker.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_local_process_executor(settings: Settings, engine: Engine, local_catalog: Path, paris: Path) -> None:
    job_id = _one_job(settings, engine, local_catalog, paris)
    worker = Worker(services_for(settings, engine), executor="local", poll_s=0.1)
    try:
        outcome = worker.run_once()
    finally:
        worker.close()
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert JobQueue(engine).get(job_id).status == "succeeded"
