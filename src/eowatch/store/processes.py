"""The job table of OGC API - Processes executions.

Deliberately simple: one row per execution, written by the service's own
thread pool (``eowatch.api.processes``). The monitoring job queue (retries,
de-duplication, executors) is a separate, richer table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, DateTime, Engine, Float, String, Text, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import NotFoundError
from .db import create_schema
from .models import Base

__all__ = ["JOB_STATES", "JobRow", "JobStore"]

#: OGC API - Processes status codes.
JOB_STATES = ("accepted", "running", "successful", "failed", "dismissed")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class JobRow(Base):
    """One execution of a process."""

    __tablename__ = "process_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    process_id: Mapped[str] = mapped_column(String(64), index=True)
    owner: Mapped[str] = mapped_column(String(256), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    collection_id: Mapped[str | None] = mapped_column(String(256))
    item_id: Mapped[str | None] = mapped_column(String(256))
    error_class: Mapped[str | None] = mapped_column(String(128))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    started: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
    return value.isoformat().replace("+00:00", "Z")


def job_dict(row: JobRow) -> dict[str, Any]:
    """A job row as plain data."""
    return {
        "id": row.id,
        "process_id": row.process_id,
        "owner": row.owner,
        "status": row.status,
        "progress": int(round(row.progress * 100)),
        "message": row.message,
        "inputs": row.inputs,
        "collection": row.collection_id,
        "item": row.item_id,
        "error_class": row.error_class,
        "created": _iso(row.created),
        "started": _iso(row.started),
        "finished": _iso(row.finished),
    }


class JobStore:
    """Create, update and read process jobs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_schema(engine)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def create(self, process_id: str, owner: str, inputs: dict[str, Any], collection: str) -> dict[str, Any]:
        row = JobRow(
            id=uuid.uuid4().hex,
            process_id=process_id,
            owner=owner,
            status="accepted",
            progress=0.0,
            message="queued",
            inputs=inputs,
            collection_id=collection,
        )
        with self._session() as session, session.begin():
            session.add(row)
        return job_dict(row)

    def update(self, job_id: str, **values: Any) -> bool:
        """Update a job that was not dismissed (dismissal is final); False when it was."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow).where(JobRow.id == job_id, JobRow.status != "dismissed").values(**values)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def dismiss(self, job_id: str) -> None:
        with self._session() as session, session.begin():
            session.execute(
                update(JobRow).where(JobRow.id == job_id)
                .values(status="dismissed", message="dismissed", finished=_now())
            )  # fmt: skip

    def get(self, job_id: str, owner: str | None = None) -> dict[str, Any]:
        """One job; ``owner`` (None: anyone's) limits to that owner's jobs, and
        another owner's job answers exactly like a missing one."""
        with self._session() as session:
            row = session.get(JobRow, job_id)
        if row is None or (owner is not None and row.owner != owner):
            raise NotFoundError(f"no job {job_id!r}")
        return job_dict(row)

    def list(self, owner: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(JobRow).order_by(JobRow.created.desc()).limit(limit)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        with self._session() as session:
            return [job_dict(r) for r in session.scalars(query).all()]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        with self._session() as session:
            rows = session.execute(select(JobRow.status, func.count()).group_by(JobRow.status)).all()
        return {state: 0 for state in JOB_STATES} | {r[0]: int(r[1]) for r in rows}

    def fail_interrupted(self) -> int:
        """Mark jobs left accepted or running by a previous service process as failed."""
        with self._session() as session, session.begin():
            result = session.execute(
                update(JobRow)
                .where(JobRow.status.in_(("accepted", "running")))
                .values(status="failed", message="interrupted: the service restarted", finished=_now())
            )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
