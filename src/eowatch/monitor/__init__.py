"""Monitoring: tasks polled on a cadence, a durable de-duplicated job queue,
workers running detection passes on an executor (local processes or Dask),
and signed alerts.

>>> from eowatch.monitor import TaskService, Scheduler, Worker
>>> services = Services(Settings())                                   # doctest: +SKIP
>>> task = {"name": "paris", "aoi": "2.2,48.8,2.4,48.9", "provider": "local:/data"}
>>> services.tasks.create(task)                                       # doctest: +SKIP
>>> Scheduler(services).tick()                                        # doctest: +SKIP
>>> Worker(services).run_once()                                       # doctest: +SKIP
"""

from __future__ import annotations

from .alerts import SIGNATURE_HEADER, deliver_due, sign, verify_signature
from .executors import (
    DaskExecutor,
    Executor,
    InlineExecutor,
    LocalProcessExecutor,
    get_executor,
    register_executor,
)
from .jobs import Job, JobQueue, backoff_delay, is_transient, job_id_for
from .scheduler import Scheduler, TickReport
from .tasks import Task, TaskService, TaskSpec, WebhookTarget
from .worker import JobOutcome, Worker, run_job

__all__ = [
    "SIGNATURE_HEADER", "deliver_due", "sign", "verify_signature",
    "DaskExecutor", "Executor", "InlineExecutor", "LocalProcessExecutor", "get_executor", "register_executor",
    "Job", "JobQueue", "backoff_delay", "is_transient", "job_id_for",
    "Scheduler", "TickReport",
    "Task", "TaskService", "TaskSpec", "WebhookTarget",
    "JobOutcome", "Worker", "run_job",
]  # fmt: skip
