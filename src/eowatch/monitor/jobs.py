"""A durable job queue on SQL tables (SQLite by default, PostgreSQL to scale out):
the one job store of eowatch, for monitoring tasks' jobs (kind ``task``) and OGC
API - Processes executions (kind ``process``), run by the same workers.

* Identity: a task job's id is the hash of its task, preset and input ids, and
  it is the primary key, so enqueueing the same work twice, from one scheduler
  or two at once, inserts it once (``INSERT ... ON CONFLICT DO NOTHING``). Each
  process execution is a job of its own (a random id), owned by its submitter.
* Claiming: a worker takes the oldest available job with a lease. PostgreSQL
  picks it with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers
  never wait on or take the same row; SQLite (one writer at a time) uses an
  atomic conditional ``UPDATE ... WHERE status = 'queued'`` and retries when
  another worker won.
* Leases: a running worker renews its lease; when a worker dies the lease
  expires and the job becomes claimable again (each claim counts as an attempt).
* Dismissal (``dismiss``) is final: the job is ``cancelled``, a running one loses
  its lease at once, so its worker stops it and records nothing.
* Failures: errors marked ``retryable`` in eowatch's error tree (a remote
  server down or slow, a locked database), and foreign timeouts, connection
  and database errors, are retried with exponential back-off up to
  ``max_attempts``; everything else (bad input, nothing valid to compare, a
  bug) fails at once.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import EowatchError
from ..settings import Settings, default
from ..store.db import database_error
from ..store.monitoring import JobRow

__all__ = ["Job", "JobQueue", "job_id_for", "is_transient", "backoff_delay", "new_worker_id", "OGC_STATUS"]

MAX_BACKOFF_S = 3600.0
#: OGC API - Processes status of each queue state (the one place they are mapped).
#: The stage of a dismissed job (``JobQueue.dismiss``).
DISMISSED = "dismissed"
OGC_STATUS = {
    "queued": "accepted", "running": "running", "succeeded": "successful", "failed": "failed",
    "cancelled": "dismissed",
}  # fmt: skip


def job_id_for(task_id: str, preset: str, input_ids: Iterable[str]) -> str:
    """The identity of a job: the same task, preset and inputs give the same id."""
    key = json.dumps({"t": task_id, "p": preset, "i": list(input_ids)}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def new_worker_id() -> str:
    """A worker id unique across hosts and processes."""
    return f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"


def is_transient(exc: BaseException) -> bool:
    """Whether retrying later may succeed: eowatch's errors say so themselves
    (``retryable``); of other errors, only timeouts, connection errors and
    database hiccups (SQLAlchemy's ``OperationalError``)."""
    if isinstance(exc, EowatchError):
        return exc.retryable
    return isinstance(exc, TimeoutError | ConnectionError | OperationalError)


def backoff_delay(attempt: int, base_s: float, max_s: float = MAX_BACKOFF_S) -> float:
    """Delay before attempt ``attempt + 1``: ``base_s * 2 ** (attempt - 1)``, capped."""
    return float(min(max_s, base_s * 2 ** max(attempt - 1, 0)))


def _held_by(worker_id: str) -> Any:
    """The condition of a job ``worker_id`` holds: running on its lease (not dismissed, not
    taken over by another worker)."""
    return and_(JobRow.status == "running", JobRow.lease_owner == worker_id)


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row."""

    id: str
    kind: str
    task_id: str | None
    owner: str | None
    progress: float
    stage: str | None
    preset: str
    before_id: str
    after_id: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    created: datetime
    available_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    error_class: str | None
    error_message: str | None
    product_folder: str | None
    item_id: str | None
    collection: str | None
    summary: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: JobRow) -> Job:
        return cls(
            id=row.id, kind=row.kind or "task", task_id=row.task_id, owner=row.owner,
            progress=float(row.progress or 0.0), stage=row.stage, preset=row.preset, before_id=row.before_id,
            after_id=row.after_id, payload=row.payload, status=row.status, attempts=row.attempts,
            max_attempts=row.max_attempts, created=_dt(row.created),  # type: ignore[arg-type]
            available_at=_dt(row.available_at),  # type: ignore[arg-type]
            started_at=_dt(row.started_at), finished_at=_dt(row.finished_at), lease_owner=row.lease_owner,
            lease_expires_at=_dt(row.lease_expires_at), error_class=row.error_class,
            error_message=row.error_message, product_folder=row.product_folder, item_id=row.item_id,
            collection=row.collection, summary=row.summary,
        )  # fmt: skip

    @property
    def duration_s(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    @property
    def ogc_status(self) -> str:
        """OGC API - Processes' name of the state; "dismissed" also for a finished job that was
        dismissed afterwards (it keeps its outcome in the queue's counts: ``JobQueue.dismiss``)."""
        return "dismissed" if self.stage == DISMISSED else OGC_STATUS[self.status]

    def as_dict(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "payload"}
        data["pair"] = self.payload.get("pair")
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


class JobQueue:
    """The job table seen as a queue. Thread-safe (one engine, a session per call)."""

    def __init__(
        self,
        engine: Engine,
        *,
        lease_s: float = default("job_lease_s"),
        max_attempts: int = default("job_max_attempts"),
        backoff_s: float = default("job_backoff_s"),
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        self.engine = engine
        self.lease_s = float(lease_s)
        self.max_attempts = int(max_attempts)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.backend = engine.dialect.name
        self._swept = -float("inf")  # last sweep of exhausted leases (monotonic clock)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> JobQueue:
        """A queue in ``engine`` with the settings' ``job_lease_s``, ``job_max_attempts`` and
        ``job_backoff_s``."""
        return cls(
            engine, lease_s=settings.job_lease_s, max_attempts=settings.job_max_attempts,
            backoff_s=settings.job_backoff_s,
        )  # fmt: skip

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- enqueue ----------------------------------------------------------------

    def enqueue(
        self,
        task_id: str,
        preset: str,
        before_id: str,
        after_id: str,
        payload: dict[str, Any],
        *,
        after_time: float = 0.0,
    ) -> tuple[str, bool]:
        """Add a job unless the same one exists. Returns ``(job id, created)``."""
        job_id = job_id_for(task_id, preset, [before_id, after_id])
        now = time.time()
        values = dict(
            id=job_id, task_id=task_id, preset=preset, before_id=before_id, after_id=after_id,
            after_time=after_time, payload=payload, status="queued", attempts=0,
            max_attempts=self.max_attempts, created=now, available_at=now,
        )  # fmt: skip
        dialect = postgresql if self.backend == "postgresql" else sqlite
        stmt = (
            dialect.insert(JobRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(JobRow.id)
        )
        try:
            with self.engine.begin() as conn:
                created = conn.execute(stmt).first() is not None
        except SQLAlchemyError as exc:
            raise database_error(f"cannot enqueue job {job_id}", exc) from exc
        return job_id, created

    def submit_process(
        self, process_id: str, owner: str, payload: dict[str, Any], collection: str, *,
        claimed_by: str | None = None, lease_s: float | None = None,
    ) -> Job:  # fmt: skip
        """Queue one execution of an OGC API process, tried once (its client waits for one
        answer). ``claimed_by``: the worker that runs it at once (a synchronous
        execution), so that no other worker takes it."""
        now = time.time()
        claim = dict(
            status="running", lease_owner=claimed_by, lease_expires_at=now + float(lease_s or self.lease_s),
            attempts=1, started_at=now,
        ) if claimed_by else dict(status="queued", attempts=0)  # fmt: skip
        row = JobRow(
            id=uuid.uuid4().hex, kind="process", task_id=None, owner=owner, progress=0.0, stage="queued",
            preset=process_id, before_id=str(payload.get("before"))[:512],
            after_id=str(payload.get("after"))[:512], after_time=0.0, payload=payload, max_attempts=1,
            created=now, available_at=now, collection=collection, **claim,
        )  # fmt: skip
        try:
            with self._session() as session, session.begin():
                session.add(row)
        except SQLAlchemyError as exc:
            raise database_error(f"cannot queue an execution of {process_id!r}", exc) from exc
        return Job.from_row(row)

    # -- claim ------------------------------------------------------------------

    def _claimable(self, now: float) -> Any:
        return or_(
            and_(JobRow.status == "queued", JobRow.available_at <= now),
            and_(JobRow.status == "running", JobRow.lease_expires_at < now,
                 JobRow.attempts < JobRow.max_attempts),
        )  # fmt: skip

    def claim(
        self,
        worker_id: str,
        *,
        lease_s: float | None = None,
        kinds: tuple[str, ...] | None = None,
        job_id: str | None = None,
    ) -> Job | None:
        """Take the oldest available job (queued and due, or running with an
        expired lease) for ``worker_id``, of ``kinds`` (default: any), or the job
        ``job_id`` when it is available; None when there is none."""
        lease = float(lease_s or self.lease_s)
        if time.monotonic() - self._swept > min(5.0, self.lease_s / 2):
            self.fail_exhausted()
            self._swept = time.monotonic()
        for _ in range(50):  # SQLite: another worker may win the conditional update
            now = time.time()
            claim_values = dict(
                status="running", lease_owner=worker_id, lease_expires_at=now + lease,
                attempts=JobRow.attempts + 1, started_at=now, finished_at=None,
            )  # fmt: skip
            order = (JobRow.after_time, JobRow.created, JobRow.id)
            with self._session() as session, session.begin():
                query = select(JobRow.id).where(self._claimable(now)).order_by(*order).limit(1)
                if kinds is not None:
                    query = query.where(JobRow.kind.in_(kinds))
                if job_id is not None:
                    query = query.where(JobRow.id == job_id)
                if self.backend == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                job_id = session.scalars(query).first()
                if job_id is None:
                    return None
                done = session.execute(
                    update(JobRow).where(JobRow.id == job_id, self._claimable(now)).values(**claim_values)
                ).rowcount  # type: ignore[attr-defined]
                if done == 1:
                    row = session.get(JobRow, job_id, populate_existing=True)
                    assert row is not None
                    return Job.from_row(row)
        return None

    def fail_exhausted(self) -> int:
        """Fail running jobs whose lease expired after their last allowed attempt."""
        now = time.time()
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.status == "running", JobRow.lease_expires_at < now,
                       JobRow.attempts >= JobRow.max_attempts)  # fmt: skip
                .values(status="failed", finished_at=now, lease_owner=None, lease_expires_at=None,
                        error_class="LeaseExpired",
                        error_message="the worker running this job stopped (lease expired) on every attempt")
            )  # fmt: skip
        return int(result.rowcount)  # type: ignore[attr-defined]

    def held(self, job_ids: Iterable[str], worker_id: str) -> set[str]:
        """Those of ``job_ids`` that ``worker_id`` still holds (running, its lease): a job
        dismissed or taken over is missing, and its worker stops it."""
        ids = list(job_ids)
        if not ids:
            return set()
        with self._session() as session:
            query = select(JobRow.id).where(JobRow.id.in_(ids), _held_by(worker_id))
            return set(session.scalars(query).all())

    def set_stage(self, job_id: str, worker_id: str, stage: str, progress: float) -> bool:
        """Record how far a job this worker holds has come; False when it lost it."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, _held_by(worker_id))
                .values(stage=stage, progress=progress)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def heartbeat(self, job_id: str, worker_id: str, *, lease_s: float | None = None) -> bool:
        """Extend the lease of a job this worker holds; False when it lost it."""
        lease = float(lease_s or self.lease_s)
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, _held_by(worker_id))
                .values(lease_expires_at=time.time() + lease)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- outcome ----------------------------------------------------------------

    def complete(
        self,
        job_id: str,
        worker_id: str,
        *,
        product_folder: str | None = None,
        item_id: str | None = None,
        collection: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> bool:
        """Record success. False (and nothing written) when the worker no longer holds the job."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, _held_by(worker_id))
                .values(status="succeeded", finished_at=time.time(), lease_owner=None, lease_expires_at=None,
                        error_class=None, error_message=None, product_folder=product_folder, item_id=item_id,
                        collection=collection, summary=summary, progress=1.0, stage="done")
            )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def fail(self, job_id: str, worker_id: str, exc: BaseException) -> str | None:
        """Record a failure: back to ``queued`` after a back-off when ``exc`` is
        transient and attempts remain, else ``failed``. Returns the new status
        (None when the worker no longer holds the job)."""
        now = time.time()
        with self._session() as session, session.begin():
            row = session.get(JobRow, job_id, with_for_update=self.backend == "postgresql")
            if row is None or row.status != "running" or row.lease_owner != worker_id:
                return None
            retry = is_transient(exc) and row.attempts < row.max_attempts
            row.error_class = f"{type(exc).__module__}.{type(exc).__qualname__}"
            row.error_message = str(exc)[:4000]
            row.lease_owner, row.lease_expires_at = None, None
            if retry:
                row.status = "queued"
                row.available_at = now + backoff_delay(row.attempts, self.backoff_s, self.max_backoff_s)
            else:
                row.status, row.finished_at = "failed", now
            return row.status

    def dismiss(self, job_id: str) -> bool:
        """Dismiss a job for good: a queued one never runs, a running one loses its lease
        (its worker stops it and records nothing); both are cancelled. A finished job keeps
        its outcome (succeeded or failed: what the operations figures count) and is only
        marked dismissed, so its owner no longer sees it. False when already dismissed."""
        finished = ("succeeded", "failed")
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(finished),
                                     JobRow.stage.is_distinct_from(DISMISSED))
                .values(stage=DISMISSED)
            )  # fmt: skip
            if not result.rowcount:  # type: ignore[attr-defined]
                result = session.execute(
                    update(JobRow).where(JobRow.id == job_id, JobRow.status.not_in((*finished, "cancelled")))
                    .values(status="cancelled", stage=DISMISSED, finished_at=time.time(), lease_owner=None,
                            lease_expires_at=None)
                )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued job (a running one finishes; its result is then kept)."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.status == "queued")
                .values(status="cancelled", finished_at=time.time())
            )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def retry(self, job_id: str) -> bool:
        """Queue a failed or cancelled job again, with its attempts reset."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.status.in_(("failed", "cancelled")))
                .values(status="queued", attempts=0, available_at=time.time(), finished_at=None)
            )  # fmt: skip
        return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- reading ----------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        from ..errors import NotFoundError

        with self._session() as session:
            row = session.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"no job {job_id!r}")
            return Job.from_row(row)

    def list(
        self,
        task_id: str | None = None,
        status: str | None = None,
        limit: int = 1000,
        *,
        kind: str | None = None,
        owner: str | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        """Jobs (of a task, in a state, of a kind, of an owner), oldest acquisition first
        (``newest_first``: most recently created first)."""
        oldest = (JobRow.after_time, JobRow.created, JobRow.id)
        query = select(JobRow).order_by(*((JobRow.created.desc(), JobRow.id) if newest_first else oldest))
        query = query.limit(limit)
        for column, value in ((JobRow.task_id, task_id), (JobRow.status, status), (JobRow.kind, kind),
                              (JobRow.owner, owner)):  # fmt: skip
            if value is not None:
                query = query.where(column == value)
        with self._session() as session:
            return [Job.from_row(r) for r in session.scalars(query).all()]

    def counts(self, task_id: str | None = None, kind: str | None = None) -> dict[str, int]:
        """How many jobs (of a task, of a kind) are in each state."""
        query = select(JobRow.status, func.count()).group_by(JobRow.status)
        if task_id is not None:
            query = query.where(JobRow.task_id == task_id)
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        with self._session() as session:
            return {status: int(n) for status, n in session.execute(query)}
