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

from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

__all__ = ["TaskRow", "JobRow", "AlertRow", "JOB_STATES", "TASK_STATES", "ALERT_STATES"]

TASK_STATES = ("active", "paused")
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
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
    """One detection pass of a task on one pair with one preset."""

    __tablename__ = "monitor_jobs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hash(task, preset, inputs)
    task_id: Mapped[str] = mapped_column(String(64), ForeignKey("monitor_tasks.id", ondelete="CASCADE"))
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
