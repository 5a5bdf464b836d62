"""A durable job queue on SQL tables (SQLite by default, PostgreSQL to scale out).

* Identity: a job's id is the hash of its task, preset and input ids, and it
  is the primary key, so enqueueing the same work twice, from one scheduler
  or two at once, inserts it once (``INSERT ... ON CONFLICT DO NOTHING``).
* Claiming: a worker takes the oldest available job with a lease. PostgreSQL
  picks it with ``SELECT ... FOR UPDATE SKIP LOCKED``, so concurrent workers
  never wait on or take the same row; SQLite (one writer at a time) uses an
  atomic conditional ``UPDATE ... WHERE status = 'queued'`` and retries when
  another worker won.
* Leases: a running worker renews its lease; when a worker dies the lease
  expires and the job becomes claimable again (each claim counts as an attempt).
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

__all__ = ["Job", "JobQueue", "job_id_for", "is_transient", "backoff_delay", "new_worker_id"]

MAX_BACKOFF_S = 3600.0


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


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row."""

    id: str
    task_id: str
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
            id=row.id, task_id=row.task_id, preset=row.preset, before_id=row.before_id,
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

    # -- claim ------------------------------------------------------------------

    def _claimable(self, now: float) -> Any:
        return or_(
            and_(JobRow.status == "queued", JobRow.available_at <= now),
            and_(JobRow.status == "running", JobRow.lease_expires_at < now,
                 JobRow.attempts < JobRow.max_attempts),
        )  # fmt: skip

    def claim(self, worker_id: str, *, lease_s: float | None = None) -> Job | None:
        """Take the oldest available job (queued and due, or running with an
        expired lease) for ``worker_id``; None when there is none."""
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

    def heartbeat(self, job_id: str, worker_id: str, *, lease_s: float | None = None) -> bool:
        """Extend the lease of a job this worker holds; False when it lost it."""
        lease = float(lease_s or self.lease_s)
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_owner == worker_id)
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
                .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_owner == worker_id)
                .values(status="succeeded", finished_at=time.time(), lease_owner=None, lease_expires_at=None,
                        error_class=None, error_message=None, product_folder=product_folder, item_id=item_id,
                        collection=collection, summary=summary)
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

    def list(self, task_id: str | None = None, status: str | None = None, limit: int = 1000) -> list[Job]:
        """Jobs (of a task, in a state), oldest acquisition first."""
        query = select(JobRow).order_by(JobRow.after_time, JobRow.created, JobRow.id).limit(limit)
        if task_id is not None:
            query = query.where(JobRow.task_id == task_id)
        if status is not None:
            query = query.where(JobRow.status == status)
        with self._session() as session:
            return [Job.from_row(r) for r in session.scalars(query).all()]

    def counts(self, task_id: str | None = None) -> dict[str, int]:
        """How many jobs are in each state."""
        query = select(JobRow.status, func.count()).group_by(JobRow.status)
        if task_id is not None:
            query = query.where(JobRow.task_id == task_id)
        with self._session() as session:
            return {status: int(n) for status, n in session.execute(query)}
