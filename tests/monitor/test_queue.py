"""The job queue on SQLite and on a real PostgreSQL: de-duplication, concurrent
claiming, lease expiry, retries with back-off and no retry for bad input."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import Engine

from eowatch.errors import (
    CatalogBusyError,
    CatalogError,
    InputError,
    InputReadError,
    NoValidDataError,
    ProductWriteError,
    ProviderError,
    RemoteReadError,
)
from eowatch.monitor import JobQueue, TaskService, backoff_delay, is_transient, job_id_for
from eowatch.settings import Settings


@pytest.fixture
def task_id(settings: Settings, engine: Engine) -> str:
    service = TaskService(settings, engine)
    return service.create({"name": "queue-test", "aoi": "2.31,48.80,2.35,48.84"}).id


def _enqueue(queue: JobQueue, task_id: str, n: int) -> list[str]:
    return [queue.enqueue(task_id, "s2-imad", f"b{i}", f"a{i}", {"i": i}, after_time=i)[0] for i in range(n)]


def test_enqueue_twice_makes_one_job(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine)
    first = queue.enqueue(task_id, "s2-imad", "before", "after", {"x": 1})
    second = queue.enqueue(task_id, "s2-imad", "before", "after", {"x": 2})
    assert first == (job_id_for(task_id, "s2-imad", ["before", "after"]), True)
    assert second == (first[0], False)
    assert queue.counts() == {"queued": 1}
    assert queue.get(first[0]).payload == {"x": 1}
    # another preset or other inputs are other jobs
    assert queue.enqueue(task_id, "s2-cva", "before", "after", {})[1]
    assert queue.enqueue(task_id, "s2-imad", "before", "after2", {})[1]


def test_concurrent_enqueue_makes_one_job(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine)
    barrier = threading.Barrier(8)
    created: list[bool] = []

    def add() -> None:
        barrier.wait()
        created.append(queue.enqueue(task_id, "s2-imad", "b", "a", {})[1])

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(created) == [False] * 7 + [True]
    assert queue.counts() == {"queued": 1}


def test_concurrent_workers_never_run_a_job_twice(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine, lease_s=60)
    ids = _enqueue(queue, task_id, 60)
    runs: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def work(worker: str) -> None:
        barrier.wait()
        while (job := queue.claim(worker)) is not None:
            with lock:
                runs.append(job.id)
            assert queue.complete(job.id, worker)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert Counter(runs) == Counter(ids)  # every job once, none twice
    assert queue.counts() == {"succeeded": 60}
    assert {j.attempts for j in queue.list()} == {1}


def test_claims_oldest_acquisition_first(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine)
    for i in (3, 1, 2):
        queue.enqueue(task_id, "s2-imad", f"b{i}", f"a{i}", {}, after_time=float(i))
    order = []
    while (job := queue.claim("w")) is not None:
        order.append(job.after_id)
        queue.complete(job.id, "w")
    assert order == ["a1", "a2", "a3"]


def test_expired_lease_is_claimed_again(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine, lease_s=0.3)
    (job_id,) = _enqueue(queue, task_id, 1)
    first = queue.claim("dead-worker")
    assert first is not None and first.attempts == 1
    assert queue.claim("other") is None  # leased
    time.sleep(0.4)
    second = queue.claim("other")
    assert second is not None and second.id == job_id and second.attempts == 2
    assert not queue.complete(job_id, "dead-worker")  # the dead worker lost it
    assert not queue.heartbeat(job_id, "dead-worker")
    assert queue.complete(job_id, "other")
    assert queue.get(job_id).status == "succeeded"


def test_heartbeat_keeps_the_lease(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine, lease_s=0.3)
    _enqueue(queue, task_id, 1)
    job = queue.claim("w")
    assert job is not None
    for _ in range(4):
        time.sleep(0.15)
        assert queue.heartbeat(job.id, "w")
    assert queue.claim("other") is None


def test_lease_expired_on_every_attempt_fails(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine, lease_s=0.1, max_attempts=2)
    (job_id,) = _enqueue(queue, task_id, 1)
    assert queue.claim("a") is not None
    time.sleep(0.15)
    assert queue.claim("b") is not None
    time.sleep(0.15)
    assert queue.claim("c") is None
    job = queue.get(job_id)
    assert (job.status, job.attempts, job.error_class) == ("failed", 2, "LeaseExpired")


def test_transient_errors_retry_with_backoff(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine, backoff_s=0.2, max_attempts=3)
    (job_id,) = _enqueue(queue, task_id, 1)
    for attempt in (1, 2):
        job = queue.claim("w")
        assert job is not None and job.attempts == attempt
        before = time.time()
        assert queue.fail(job_id, "w", TimeoutError("read timed out")) == "queued"
        queued = queue.get(job_id)
        delay = queued.available_at.timestamp() - before
        assert 0.2 * 2 ** (attempt - 1) - 0.05 <= delay <= 0.2 * 2 ** (attempt - 1) + 0.1
        assert queued.error_class == "builtins.TimeoutError"
        assert queue.claim("w") is None  # not before its back-off
        time.sleep(delay + 0.05)
    job = queue.claim("w")
    assert job is not None and job.attempts == 3
    assert queue.fail(job_id, "w", ProviderError("503 from the STAC API")) == "failed"
    final = queue.get(job_id)
    assert (final.status, final.attempts) == ("failed", 3)
    assert final.error_message == "503 from the STAC API"
    assert final.finished_at is not None


@pytest.mark.parametrize("error", [InputError("bad AOI"), NoValidDataError("all cloud"), ValueError("bug")])
def test_bad_input_is_not_retried(engine: Engine, task_id: str, error: Exception) -> None:
    queue = JobQueue(engine, backoff_s=0.01)
    (job_id,) = _enqueue(queue, task_id, 1)
    job = queue.claim("w")
    assert job is not None
    assert queue.fail(job_id, "w", error) == "failed"
    assert queue.get(job_id).attempts == 1
    assert queue.claim("w") is None


def test_cancel_and_retry(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine)
    (job_id,) = _enqueue(queue, task_id, 1)
    assert queue.cancel(job_id)
    assert queue.claim("w") is None
    assert queue.retry(job_id)
    assert queue.claim("w") is not None


def test_error_classification() -> None:
    assert is_transient(TimeoutError()) and is_transient(ConnectionResetError())
    assert is_transient(ProviderError("down")) and is_transient(RemoteReadError("timed out"))
    assert is_transient(CatalogBusyError("database is locked"))
    # The mark decides, not the base class: a missing local file is an OSError too.
    assert not is_transient(InputReadError("no such file")) and not is_transient(OSError())
    assert not is_transient(CatalogError("constraint")) and not is_transient(ProductWriteError("x"))
    assert not is_transient(InputError("x")) and not is_transient(ValueError("x"))
    assert [backoff_delay(a, 30) for a in (1, 2, 3)] == [30, 60, 120]
    assert backoff_delay(30, 30, max_s=3600) == 3600


def test_process_executions_are_jobs_of_the_same_queue(engine: Engine, task_id: str) -> None:
    queue = JobQueue(engine)
    (task_job,) = _enqueue(queue, task_id, 1)
    mine = queue.submit_process("s2-cva", "ana", {"before": "a", "after": "b"}, "adhoc")
    theirs = queue.submit_process("s2-cva", "otto", {"before": "c", "after": "d"}, "adhoc")
    assert (mine.kind, mine.task_id, mine.owner, mine.ogc_status) == ("process", None, "ana", "accepted")
    assert [j.id for j in queue.list(kind="process", owner="ana")] == [mine.id]
    assert [j.id for j in queue.list(kind="process", newest_first=True)] == [theirs.id, mine.id]
    assert queue.counts(kind="process") == {"queued": 2} and queue.counts(kind="task") == {"queued": 1}
    # a worker of process jobs only never takes a task's job
    claimed = queue.claim("w", kinds=("process",))
    assert claimed is not None and claimed.kind == "process"
    assert queue.set_stage(claimed.id, "w", "detect", 0.6) and not queue.set_stage(
        claimed.id, "x", "detect", 0.6
    )
    assert queue.get(claimed.id).progress == 0.6 and queue.get(claimed.id).ogc_status == "running"
    assert queue.claim("w", job_id=task_job) is not None  # a named job, when it is claimable


def test_a_synchronous_execution_is_claimed_when_it_is_made(engine: Engine) -> None:
    queue = JobQueue(engine)
    job = queue.submit_process("s2-cva", "ana", {}, "adhoc", claimed_by="request-1", lease_s=60)
    assert (job.status, job.lease_owner, job.attempts) == ("running", "request-1", 1)
    assert queue.claim("background") is None  # nobody else takes it


def test_dismissal_is_final_even_while_running(engine: Engine) -> None:
    queue = JobQueue(engine)
    job = queue.submit_process("s2-cva", "ana", {}, "adhoc")
    claimed = queue.claim("w")
    assert claimed is not None and queue.held([job.id], "w") == {job.id}
    assert queue.dismiss(job.id) and not queue.dismiss(job.id)
    assert queue.held([job.id], "w") == set()  # its worker sees it is no longer its job, and stops it
    assert not queue.complete(job.id, "w", item_id="x")  # and cannot record a result
    assert queue.fail(job.id, "w", TimeoutError()) is None  # nor a failure
    assert queue.get(job.id).ogc_status == "dismissed"


def test_a_database_of_an_earlier_version_is_upgraded_and_keeps_its_jobs(tmp_path) -> None:
    """monitor_jobs with task_id NOT NULL and without kind/owner/progress/stage, and the
    process jobs in their own table, as eowatch made them before the one job queue."""
    import sqlite3

    from eowatch.store import make_engine

    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE monitor_tasks (id VARCHAR(64) PRIMARY KEY, name VARCHAR(256), owner VARCHAR(256),
            collection VARCHAR(256), state VARCHAR(16), spec JSON, created FLOAT, updated FLOAT,
            next_due_at FLOAT, last_polled_at FLOAT, last_poll_error TEXT);
        CREATE TABLE monitor_jobs (id VARCHAR(64) PRIMARY KEY,
            task_id VARCHAR(64) NOT NULL REFERENCES monitor_tasks(id) ON DELETE CASCADE,
            preset VARCHAR(128) NOT NULL, before_id VARCHAR(512) NOT NULL, after_id VARCHAR(512) NOT NULL,
            after_time FLOAT NOT NULL, payload JSON NOT NULL, status VARCHAR(16) NOT NULL,
            attempts INTEGER NOT NULL, max_attempts INTEGER NOT NULL, created FLOAT NOT NULL,
            available_at FLOAT NOT NULL, started_at FLOAT, finished_at FLOAT, lease_owner VARCHAR(128),
            lease_expires_at FLOAT, error_class VARCHAR(256), error_message TEXT, product_folder TEXT,
            item_id VARCHAR(256), collection VARCHAR(256), summary JSON);
        CREATE INDEX ix_monitor_jobs_claim ON monitor_jobs (status, available_at, after_time);
        CREATE TABLE process_jobs (id VARCHAR(64) PRIMARY KEY, process_id VARCHAR(64), owner VARCHAR(256),
            status VARCHAR(16), progress FLOAT, message TEXT, inputs JSON, collection_id VARCHAR(256),
            item_id VARCHAR(256), error_class VARCHAR(128), created DATETIME, started DATETIME,
            finished DATETIME);
        INSERT INTO monitor_tasks VALUES ('t1', 'site', 'ana', 'task-site', 'active', '{}', 0, 0, 0, NULL,
            NULL);
        INSERT INTO monitor_jobs VALUES ('j1', 't1', 's2-imad', 'b', 'a', 5, '{}', 'succeeded', 1, 5, 1, 1,
            2, 3, NULL, NULL, NULL, NULL, '/p', 'item-1', 'task-site', NULL);
        INSERT INTO process_jobs VALUES ('p1', 's2-cva', 'ana', 'successful', 1.0, 'done',
            '{"before": "/x", "after": "/y", "collection": "adhoc"}', 'adhoc', 'item-2', NULL,
            '2026-01-01 10:00:00', '2026-01-01 10:00:01', '2026-01-01 10:00:30');
        INSERT INTO process_jobs VALUES ('p2', 's2-cva', 'ana', 'running', 0.5, 'detect', '{}', 'adhoc', NULL,
            NULL, '2026-01-01 11:00:00', '2026-01-01 11:00:01', NULL);
        """
    )
    old.commit()
    old.close()
    engine = make_engine(f"sqlite:///{path}")  # upgrades on open
    queue = JobQueue(engine)
    kept = queue.get("j1")
    assert (kept.kind, kept.task_id, kept.item_id, kept.status) == ("task", "t1", "item-1", "succeeded")
    done, cut = queue.get("p1"), queue.get("p2")
    assert (done.kind, done.owner, done.ogc_status, done.item_id) == (
        "process",
        "ana",
        "successful",
        "item-2",
    )
    assert done.duration_s == 29.0
    assert cut.ogc_status == "failed" and "upgrade" in str(cut.error_message)
    assert queue.submit_process("s2-cva", "ana", {}, "adhoc").task_id is None  # task_id is optional now
    make_engine(f"sqlite:///{path}").dispose()  # a second open adopts nothing twice
    assert len(queue.list(kind="process")) == 3
    with sqlite3.connect(path) as check:  # the tasks' foreign keys survived the rebuild
        assert check.execute("PRAGMA foreign_key_check").fetchall() == []
        assert check.execute("SELECT count(*) FROM process_jobs").fetchone() == (2,)  # left as it was
    engine.dispose()
