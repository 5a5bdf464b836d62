"""The worker: claim a job, run its detection pass on an executor, catalogue
the products in the task's collection, record the outcome and the alerts.

The lease of every job in flight is renewed by a heartbeat thread, so a long
job keeps its claim while the worker lives and is taken over by another worker
soon after it dies. A job that runs past ``job_timeout_s``, or whose lease was
taken over, is stopped (with the ``local`` executor its process is ended) and
its lease released: nothing runs on after its job has ended. Products are
written atomically under a run id derived from the inputs, so a job run again
replaces its products instead of adding a copy, and ingesting the same Item
again replaces its catalogue record.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from .. import pipeline
from ..errors import JobTimeoutError
from ..io.sources import Acquisition
from ..outbound import check_outbound
from ..services import Services
from ..settings import Settings
from .executors import Executor, FutureLike
from .jobs import Job, new_worker_id
from .payload import JobPayload

__all__ = ["Worker", "JobOutcome", "run_job"]

log = logging.getLogger(__name__)


def run_job(payload: dict[str, Any], settings: Settings, out_dir: str) -> dict[str, Any]:
    """Run one job's detection pass (in whichever process the executor chose) and
    return a JSON-ready summary of its products."""
    job = JobPayload.from_json(payload)
    if job.task is None:  # a process execution: URLs a user gave, checked again where they are read
        for url in (v for v in (job.before, job.after) if isinstance(v, str) and "://" in v):
            check_outbound(url, "input", settings.outbound_allow)
    output = pipeline.detect_pair(job.request(), settings, Path(out_dir))
    props = output.item.properties

    def side(value: Acquisition | str) -> dict[str, Any]:
        if isinstance(value, str):
            return {"id": value, "datetime": None}
        return {"id": value.id, "datetime": value.datetime.isoformat() if value.datetime else None}

    return {
        "folder": str(output.folder),
        "item_id": output.item.id,
        "status": output.status,
        "changed_area_m2": float(props.get("eowatch:changed_area_m2") or 0.0),
        "polygon_count": int(props.get("eowatch:polygon_count") or 0),
        "before": side(job.before),
        "after": side(job.after),
    }


@dataclass
class JobOutcome:
    """How one job ended in this worker."""

    job_id: str
    status: str  # succeeded | queued (retry) | failed | lost (lease taken over) | cancelled (dismissed)
    summary: dict[str, Any] | None = None
    error: str | None = None
    exception: BaseException | None = None  # why it failed (a synchronous caller raises it)
    seconds: float | None = None  # how long it ran in this worker


class Worker:
    """Claims and runs jobs until stopped.

    ``executor`` is an ``Executor`` or a registered name (``inline``, ``local``,
    ``dask``); ``concurrency`` jobs run at once (default: 1)."""

    def __init__(
        self,
        services: Services,
        *,
        executor: Executor | str | None = None,
        worker_id: str | None = None,
        concurrency: int = 1,
        lease_s: float | None = None,
        heartbeat_s: float | None = None,
        poll_s: float | None = None,
        kinds: tuple[str, ...] | None = None,
        on_outcome: Callable[[Job, JobOutcome], None] | None = None,
    ) -> None:
        settings = services.settings
        self.kinds = kinds  # the kinds of job it takes (default: every kind)
        self.on_outcome = on_outcome  # called as each job ends (metrics)
        self.services, self.settings = services, settings
        self.engine: Engine = services.monitor_engine
        self.queue = services.queue
        self._own_executor = executor is None or isinstance(executor, str)
        self.executor: Executor = (
            services.executor(executor) if executor is None or isinstance(executor, str) else executor
        )
        self.worker_id = worker_id or new_worker_id()
        self.concurrency = max(1, int(concurrency))
        self.lease_s = float(lease_s or self.queue.lease_s)
        self.heartbeat_s = float(heartbeat_s or max(0.2, self.lease_s / 3))
        self.poll_s = float(poll_s if poll_s is not None else settings.worker_poll_s)
        self.out_root = Path(settings.monitor_output_dir or Path(settings.output_dir) / "tasks")
        self.timeout_s = float(settings.job_timeout_s)
        self._in_flight: dict[str, tuple[Job, FutureLike]] = {}
        self._started: dict[str, float] = {}  # monotonic time each job in flight started here
        self._leased: set[str] = set()
        self._lost: set[str] = set()  # dismissed, or taken over by another worker: stop those jobs
        self._checked = 0.0  # when the jobs in flight were last checked for that
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- lifecycle --------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to stop after the jobs in flight (graceful)."""
        self._stop.set()

    def close(self) -> None:
        if self._own_executor:
            self.executor.close()

    def _heartbeat(self, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_s):
            with self._lock:
                ids = list(self._leased)
            for job_id in ids:
                try:
                    if not self.queue.heartbeat(job_id, self.worker_id, lease_s=self.lease_s):
                        log.warning("job %s: lease lost (another worker took it over); stopping it", job_id)
                        with self._lock:
                            self._lost.add(job_id)
                except Exception:  # the next beat tries again
                    log.exception("job %s: lease renewal failed", job_id)

    def run_once(self, job_id: str | None = None) -> JobOutcome | None:
        """Claim one job (``job_id``: that one), run it to its end and record it; None
        when there is none to claim."""
        outcomes = self.run(max_jobs=1, until_empty=True, job_id=job_id)
        return outcomes[0] if outcomes else None

    def run(
        self,
        stop_event: threading.Event | None = None,
        *,
        max_jobs: int | None = None,
        until_empty: bool = False,
        job_id: str | None = None,
    ) -> list[JobOutcome]:
        """Claim and run jobs until ``stop_event`` (or ``stop()``), ``max_jobs`` claimed,
        or (``until_empty``) nothing is left to claim; jobs in flight are finished first."""
        stop = stop_event or self._stop
        outcomes: list[JobOutcome] = []
        claimed = 0
        with self._beating():
            while True:
                empty = False
                while self._room(stop, max_jobs, claimed):
                    job = self.queue.claim(
                        self.worker_id, lease_s=self.lease_s, kinds=self.kinds, job_id=job_id
                    )
                    if job is None:
                        empty = True
                        break
                    claimed += 1
                    self._start(job)
                if not self._in_flight:
                    finished = max_jobs is not None and claimed >= max_jobs
                    if stop.is_set() or self._stop.is_set() or finished or (until_empty and empty):
                        break
                    self._deliver_alerts()
                    stop.wait(self.poll_s)
                    continue
                outcomes.extend(self._collect())
        return outcomes

    def run_claimed(self, job: Job) -> JobOutcome:
        """Run a job this worker already holds (a synchronous process execution) to its end."""
        with self._beating():
            self._start(job)
            while not (outcomes := self._collect()):
                pass
        return outcomes[0]

    @contextmanager
    def _beating(self) -> Iterator[None]:
        """The lease of every job in flight is renewed meanwhile."""
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(done,), daemon=True, name="eowatch-lease")
        beat.start()
        try:
            yield
        finally:
            done.set()
            beat.join()

    def _room(self, stop: threading.Event, max_jobs: int | None, claimed: int) -> bool:
        """Whether to claim another job now."""
        if stop.is_set() or self._stop.is_set() or len(self._in_flight) >= self.concurrency:
            return False
        return max_jobs is None or claimed < max_jobs

    # -- one job ----------------------------------------------------------------

    def _out_dir(self, job: Job) -> Path:
        """Task jobs write under their task (a re-run replaces its product), process jobs
        each in a folder of their own."""
        if job.task_id is None:
            return Path(self.settings.output_dir) / "jobs" / job.id
        return self.out_root / job.task_id

    def _start(self, job: Job) -> None:
        out_dir = str(self._out_dir(job))
        self.queue.set_stage(job.id, self.worker_id, "running", 0.1)
        log.info("job %s: attempt %d (%s, %s -> %s)", job.id, job.attempts, job.preset, job.before_id,
                 job.after_id)  # fmt: skip
        with self._lock:
            self._leased.add(job.id)  # renewed from now on, even while an inline executor runs it
        try:
            future = self.executor.submit(run_job, job.payload, self.settings, out_dir)
        except Exception as exc:  # e.g. the Dask scheduler is unreachable: a transient failure
            future = Future()
            future.set_exception(exc)
        with self._lock:
            self._in_flight[job.id] = (job, future)
            self._started[job.id] = time.monotonic()

    def _collect(self) -> list[JobOutcome]:
        """Wait a little for jobs in flight; record those that ended, and stop those
        past their time limit or lost to another worker."""
        outcomes: list[JobOutcome] = []
        deadline = time.monotonic() + min(self.heartbeat_s, 0.5)
        while not outcomes:
            self._check_held()
            outcomes.extend(self._stop_overdue_and_lost())
            with self._lock:
                ready = [(j, f) for j, f in self._in_flight.values() if f.done()]
            for job, future in ready:
                outcomes.append(self._ended(job, self._finish(job, future)))
            if outcomes or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        return outcomes

    def _forget(self, job_id: str) -> None:
        with self._lock:
            self._in_flight.pop(job_id, None)
            self._started.pop(job_id, None)
            self._leased.discard(job_id)
            self._lost.discard(job_id)

    def _check_held(self, every_s: float = 0.5) -> None:
        """Find the jobs in flight this worker no longer holds (dismissed, or taken over)."""
        if time.monotonic() - self._checked < every_s:
            return
        self._checked = time.monotonic()
        with self._lock:
            ids = list(self._in_flight)
        try:
            missing = set(ids) - self.queue.held(ids, self.worker_id)
        except Exception:  # the database is away for now: the next check asks again
            log.exception("cannot check the jobs in flight")
            return
        with self._lock:
            self._lost |= missing

    def _stop_overdue_and_lost(self) -> list[JobOutcome]:
        now = time.monotonic()
        with self._lock:
            late = [j for j, (_, f) in self._in_flight.items()
                    if now - self._started[j] > self.timeout_s and not f.done()]  # fmt: skip
            lost = [j for j in self._lost if j in self._in_flight]
        outcomes = []
        for job_id in late:
            job, future = self._in_flight[job_id]
            future.cancel()
            error = JobTimeoutError(
                f"job {job_id} ran past its limit of {self.timeout_s:g} s and was stopped; "
                "raise EOWATCH_JOB_TIMEOUT_S, or make the AOI smaller"
            )
            status = self.queue.fail(job_id, self.worker_id, error)  # releases the lease
            log.warning("job %s: %s -> %s", job_id, error, status)
            outcome = JobOutcome(job_id, status or "lost", error=f"JobTimeoutError: {error}", exception=error)
            outcomes.append(self._ended(job, outcome))
        for job_id in lost:
            if job_id in late:
                continue
            job, future = self._in_flight[job_id]
            future.cancel()
            outcomes.append(self._ended(job, self._not_held(job)))
        return outcomes

    def _ended(self, job: Job, outcome: JobOutcome) -> JobOutcome:
        """Forget a job that ended here, with how long it ran."""
        with self._lock:
            started = self._started.get(job.id)
        if started is not None:
            outcome.seconds = round(time.monotonic() - started, 3)
        self._forget(job.id)
        if self.on_outcome is not None:
            try:
                self.on_outcome(job, outcome)
            except Exception:  # a broken hook must not lose the job's outcome
                log.exception("job %s: outcome hook failed", job.id)
        return outcome

    def _not_held(self, job: Job) -> JobOutcome:
        """The outcome of a job this worker lost: a dismissed job leaves no product; one
        taken over by another worker keeps its folder (that worker replaces it)."""
        if self.queue.get(job.id).status != "cancelled":
            return JobOutcome(job.id, "lost", error="the job's lease was taken over; it was stopped")
        if job.task_id is None:
            shutil.rmtree(self._out_dir(job), ignore_errors=True)
        log.info("job %s: dismissed while it ran; stopped, nothing published", job.id)
        return JobOutcome(job.id, "cancelled", error="dismissed")

    def _finish(self, job: Job, future: FutureLike) -> JobOutcome:
        from .alerts import queue_alerts

        collection = JobPayload.from_json(job.payload).collection
        try:
            summary = future.result()
            if not self.queue.set_stage(job.id, self.worker_id, "registering", 0.95):
                return self._not_held(job)  # dismissed or taken over meanwhile: publish nothing
            item = self.services.results.ingest_folder(summary["folder"], collection)
            summary["collection"] = collection
        except Exception as exc:  # recorded on the job: retried or failed by its class
            status = self.queue.fail(job.id, self.worker_id, exc)
            log.warning("job %s: %s: %s -> %s", job.id, type(exc).__name__, exc, status)
            if status is None:
                return self._not_held(job)
            return JobOutcome(job.id, status, error=f"{type(exc).__name__}: {exc}", exception=exc)
        folder, item_id = summary["folder"], summary["item_id"]
        recorded = self.queue.complete(
            job.id,
            self.worker_id,
            product_folder=folder,
            item_id=item_id,
            collection=collection,
            summary=summary,
        )
        if not recorded:
            if self.queue.get(job.id).status == "cancelled":  # dismissed while it was registered
                self.services.results.delete_item(collection, item_id)
                return self._not_held(job)
            log.warning("job %s: finished after its lease was taken over; the products are the same", job.id)
            return JobOutcome(job.id, "lost", summary)
        try:
            queue_alerts(self.engine, self.settings, job, summary, item)
            self._deliver_alerts()
        except Exception:  # alerts stay pending and are retried by the next delivery round
            log.exception("job %s: alerts not sent yet", job.id)
        return JobOutcome(job.id, "succeeded", summary)

    def _deliver_alerts(self) -> None:
        from .alerts import deliver_due

        try:
            deliver_due(self.engine, self.settings)
        except Exception:
            log.exception("alert delivery failed; retried later")
