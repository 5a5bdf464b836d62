"""The numbers behind the operations dashboard (``GET /ops/summary``), read from
the one job queue (``monitor_jobs``: monitoring tasks' jobs and OGC process
executions, each counted once) with SQL aggregates (counts, 10-minute buckets) and
bounded queries (the latest ``SAMPLE`` finished jobs for durations and
latencies, the latest 20 failures), so the cost does not grow with history.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Integer, cast, func, select
from sqlalchemy.orm import Session

from ..monitor.jobs import OGC_STATUS
from ..store.monitoring import JOB_STATES as MONITOR_STATES
from ..store.monitoring import JobRow as MonitorJob
from ..store.monitoring import TaskRow

__all__ = ["ops_summary", "WINDOW_S", "BUCKET_S", "SAMPLE"]

WINDOW_S = 24 * 3600  #: throughput window
BUCKET_S = 600  #: throughput bucket
SAMPLE = 1000  #: latest finished jobs read for durations and latencies (per source)
RECENT_FAILURES = 20
#: A monitoring job whose acquisition was older than this when it was queued is a backfill
#: (a task started over past dates): its acquisition-to-product time is the archive's age,
#: not the system's delay, and is reported apart.
BACKFILL_AGE_S = 3 * 86400

_LATENCY = (
    "acquisition_to_product: seconds from the sensing time of a job's later acquisition to the moment its "
    "product was catalogued (monitoring jobs that succeeded); "
    "enqueued_to_product: seconds from the scheduler queueing the job to its product being catalogued "
    "(queue wait + retries + run); live: jobs queued within 3 days of their acquisition, backfill: the "
    "others (past dates of a new task)"
)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values`` by linear interpolation (numpy's default)."""
    pos = (len(values) - 1) * q
    low, high = math.floor(pos), math.ceil(pos)
    return values[low] + (values[high] - values[low]) * (pos - low)


def stats(values: Iterable[float]) -> dict[str, Any]:
    """Count, median and 90th percentile (None without values), rounded to ms."""
    data = sorted(values)
    if not data:
        return {"count": 0, "median": None, "p90": None}
    return {"count": len(data), "median": round(quantile(data, 0.5), 3), "p90": round(quantile(data, 0.9), 3)}


def _bucket_of_float(column: Any, dialect: str) -> Any:
    """``floor(column / BUCKET_S)`` for an epoch-seconds column, on SQLite and PostgreSQL."""
    if dialect == "postgresql":
        return cast(func.floor(column / BUCKET_S), Integer)
    return cast(column / BUCKET_S, Integer)  # SQLite truncates: the same for positive times


def _part(engine: Engine, now: float, kind: str) -> dict[str, Any]:
    """The figures of one kind of job (``task``: monitoring, ``process``: OGC executions)."""
    dialect = engine.dialect.name
    since = now - WINDOW_S
    of_kind = MonitorJob.kind == kind
    with Session(engine) as session:
        states = dict.fromkeys(MONITOR_STATES, 0) | {s: int(n) for s, n in session.execute(
            select(MonitorJob.status, func.count()).where(of_kind).group_by(MonitorJob.status))}  # fmt: skip
        bucket = _bucket_of_float(MonitorJob.finished_at, dialect)
        buckets = session.execute(
            select(bucket, MonitorJob.status, func.count())
            .where(of_kind, MonitorJob.finished_at >= since, MonitorJob.status.in_(("succeeded", "failed")))
            .group_by(bucket, MonitorJob.status)
        ).all()
        done = session.execute(
            select(MonitorJob.preset, MonitorJob.started_at, MonitorJob.finished_at, MonitorJob.after_time,
                   MonitorJob.created)
            .where(of_kind, MonitorJob.status == "succeeded", MonitorJob.finished_at.is_not(None))
            .order_by(MonitorJob.finished_at.desc()).limit(SAMPLE)
        ).all()  # fmt: skip
        failures = session.execute(
            select(MonitorJob.id, TaskRow.name, MonitorJob.task_id, MonitorJob.preset, MonitorJob.error_class,
                   MonitorJob.error_message, MonitorJob.finished_at, MonitorJob.attempts)
            .outerjoin(TaskRow, TaskRow.id == MonitorJob.task_id)
            .where(of_kind, MonitorJob.status == "failed")
            .order_by(MonitorJob.finished_at.desc()).limit(RECENT_FAILURES)
        ).all()  # fmt: skip
    durations: list[tuple[str, float]] = []
    acquisition: list[float] = []
    backfill: list[float] = []
    enqueued: list[float] = []
    for preset, started, finished_at, after_time, created in done:
        finished = float(finished_at or 0.0)  # the query keeps finished jobs only
        if started is not None:
            durations.append((preset, finished - started))
        if after_time and after_time > 0:  # 0: no acquisition time (a process execution)
            late = created - after_time > BACKFILL_AGE_S
            (backfill if late else acquisition).append(finished - after_time)
        enqueued.append(finished - created)
    return {
        "states": states,
        "buckets": [(int(b), str(s), int(n)) for b, s, n in buckets],
        "durations": durations,
        "acquisition": acquisition,
        "backfill": backfill,
        "enqueued": enqueued,
        "failures": [
            {
                "source": "monitoring" if kind == "task" else "processes",
                "job_id": i,
                "task": name or task_id,
                "preset": preset,
                "error_class": cls,
                "error": msg,
                "attempts": attempts,
                "time": _iso(when),
                "_t": when or 0.0,
            }
            for i, name, task_id, preset, cls, msg, when, attempts in failures
        ],  # fmt: skip
    }


def _throughput(buckets: Iterable[tuple[int, str, int]], now: float) -> list[dict[str, Any]]:
    """Every 10-minute bucket of the window, oldest first, zeros included (a dashboard draws a gap
    as a drop, not as missing data)."""
    counts: dict[int, dict[str, int]] = defaultdict(lambda: {"succeeded": 0, "failed": 0})
    for b, status, n in buckets:
        counts[b][status] += n
    last = int(now // BUCKET_S)
    first = last - WINDOW_S // BUCKET_S + 1
    return [{"t": _iso(float(b * BUCKET_S)), **counts.get(b, {"succeeded": 0, "failed": 0})}
            for b in range(first, last + 1)]  # fmt: skip


def ops_summary(engine: Engine, now: float | None = None) -> dict[str, Any]:
    """Jobs by state, queue depth, throughput, durations, latencies and recent failures,
    from the one job queue in ``engine`` (process jobs' states as OGC names them)."""
    now = time.time() if now is None else now
    mon, proc = _part(engine, now, "task"), _part(engine, now, "process")
    proc["states"] = {OGC_STATUS[s]: n for s, n in proc["states"].items()}
    by_preset: dict[str, list[float]] = defaultdict(list)
    for preset, seconds in [*mon["durations"], *proc["durations"]]:
        by_preset[preset].append(seconds)
    failures = sorted([*mon["failures"], *proc["failures"]], key=lambda f: f["_t"], reverse=True)
    depth = {"monitoring": mon["states"].get("queued", 0), "processes": proc["states"].get("accepted", 0)}
    return {
        "generated": _iso(now),
        "jobs_by_state": {"monitoring": mon["states"], "processes": proc["states"]},
        "queue_depth": sum(depth.values()),
        "queue_depth_by_source": depth,
        "throughput": _throughput([*mon["buckets"], *proc["buckets"]], now),
        "throughput_window": {"hours": WINDOW_S // 3600, "bucket_s": BUCKET_S},
        "duration_s": {preset: stats(v) for preset, v in sorted(by_preset.items())},
        "latency_s": {
            **stats(mon["acquisition"]),
            "measures": "acquisition_to_product (live jobs)",
            "acquisition_to_product": stats(mon["acquisition"]),
            "backfill_acquisition_to_product": stats(mon["backfill"]),
            "enqueued_to_product": stats(mon["enqueued"]),
            "description": _LATENCY,
            "sample": f"the latest {SAMPLE} succeeded monitoring jobs",
        },
        "recent_failures": [{k: v for k, v in f.items() if k != "_t"} for f in failures[:RECENT_FAILURES]],
        "window_note": f"durations and latencies: the latest {SAMPLE} finished jobs of each source; "
        "a duration is the last attempt's run time",
    }
