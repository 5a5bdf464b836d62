"""Tables of monitoring: tasks, the durable job queue and the alerts sent.

They share ``Base`` with the results catalogue, so one ``create_schema`` makes
everything (this module must be imported first; ``eowatch.monitor`` does).

Scheduling instants (due, available, lease expiry) are UTC epoch seconds in
float columns: they compare the same way on SQLite and PostgreSQL and need no
timezone handling in conditional updates. A job's primary key is the hash of
its task, preset and input ids, so the database itself refuses a duplicate,
whichever scheduler tries to add it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from .models import Base

__all__ = [
    "TaskRow",
    "JobRow",
    "AlertRow",
    "JOB_STATES",
    "JOB_KINDS",
    "TASK_STATES",
    "ALERT_STATES",
    "adopt_process_jobs",
]

TASK_STATES = ("active", "paused")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
JOB_KINDS = ("task", "process")
ALERT_STATES = ("pending", "sending", "sent", "failed")


class TaskRow(Base):
    """A monitoring task: its specification (JSON) and its polling state. Names are
    unique per owner (``TaskService`` also checks tasks without an owner, which SQL's
    NULLs leave out of the constraint); databases made before keep their unique names."""

    __tablename__ = "monitor_tasks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), index=True)
    owner: Mapped[str | None] = mapped_column(String(256), index=True)
    collection: Mapped[str] = mapped_column(String(256))
    state: Mapped[str] = mapped_column(String(16), default="active", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[float] = mapped_column(Float)
    updated: Mapped[float] = mapped_column(Float)
    next_due_at: Mapped[float] = mapped_column(Float, default=0.0, index=True)
    last_polled_at: Mapped[float | None] = mapped_column(Float)
    last_poll_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("owner", "name", name="uq_monitor_tasks_owner_name"),)


class JobRow(Base):
    """One detection pass: of a task on one pair with one preset (kind ``task``), or one
    execution of an OGC API process (kind ``process``: no task, an owner)."""

    __tablename__ = "monitor_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # task: hash(task, preset, inputs)
    kind: Mapped[str] = mapped_column(String(16), default="task", server_default="task")
    task_id: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("monitor_tasks.id", ondelete="CASCADE"), nullable=True
    )
    owner: Mapped[str | None] = mapped_column(String(256))  # who submitted a process job
    progress: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    stage: Mapped[str | None] = mapped_column(String(64))
    preset: Mapped[str] = mapped_column(String(128))
    before_id: Mapped[str] = mapped_column(String(512))
    after_id: Mapped[str] = mapped_column(String(512))
    after_time: Mapped[float] = mapped_column(Float)  # claim order: oldest acquisition first
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    created: Mapped[float] = mapped_column(Float)
    available_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    error_class: Mapped[str | None] = mapped_column(String(256))
    error_message: Mapped[str | None] = mapped_column(Text)
    product_folder: Mapped[str | None] = mapped_column(Text)
    item_id: Mapped[str | None] = mapped_column(String(256))
    collection: Mapped[str | None] = mapped_column(String(256))
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_monitor_jobs_claim", "status", "available_at", "after_time"),
        Index("ix_monitor_jobs_lease", "status", "lease_expires_at"),
        Index("ix_monitor_jobs_task", "task_id", "status"),
        Index("ix_monitor_jobs_owner", "kind", "owner", "created"),
    )


class AlertRow(Base):
    """One notification of one job to one target (webhook URL or e-mail address)."""

    __tablename__ = "monitor_alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(64), ForeignKey("monitor_jobs.id", ondelete="CASCADE"))
    task_id: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email
    target: Mapped[str] = mapped_column(String(1024))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    response_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("job_id", "channel", "target", name="uq_monitor_alerts_target"),
        Index("ix_monitor_alerts_due", "status", "next_attempt_at"),
    )


#: OGC status of a process job of eowatch <= 0.x (table ``process_jobs``) -> queue state.
_ADOPTED_STATES = {"successful": "succeeded", "failed": "failed", "dismissed": "cancelled"}


def adopt_process_jobs(engine: Engine) -> int:
    """Copy the process jobs an earlier version kept in a table of their own
    (``process_jobs``) into the job queue, once: the jobs of before an upgrade stay
    listed. A job that was accepted or running then was interrupted by the upgrade
    (failed). The old table is left as it was. Returns how many jobs were copied."""
    if "process_jobs" not in inspect(engine).get_table_names():
        return 0
    old = Table("process_jobs", MetaData(), autoload_with=engine)
    known = select(JobRow.id).where(JobRow.id == old.c.id).exists()
    with Session(engine) as session, session.begin():
        rows = session.execute(select(old).where(~known)).mappings().all()
        for row in rows:
            inputs, created = dict(row["inputs"] or {}), _epoch(row["created"]) or 0.0
            interrupted = row["status"] not in _ADOPTED_STATES
            session.add(JobRow(
                id=row["id"], kind="process", task_id=None, owner=row["owner"], preset=row["process_id"],
                progress=row["progress"] or 0.0, stage=row["message"], after_time=0.0,
                before_id=str(inputs.get("before"))[:512], after_id=str(inputs.get("after"))[:512],
                payload={**inputs, "preset": row["process_id"]}, attempts=1, max_attempts=1,
                status=_ADOPTED_STATES.get(row["status"], "failed"), created=created, available_at=created,
                started_at=_epoch(row["started"]), finished_at=_epoch(row["finished"]),
                error_class="Interrupted" if interrupted else row["error_class"],
                error_message="interrupted by an upgrade of eowatch" if interrupted else row["message"],
                item_id=row["item_id"], collection=row["collection_id"],
            ))  # fmt: skip
    return len(rows)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return float((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
