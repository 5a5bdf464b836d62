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
