"""The scheduler: poll each due task, discover, pair, enqueue one job per new pair and preset.

``Scheduler(services).tick()`` is one pass (what ``eowatch scheduler --once``
and a server process call); ``run_forever(stop_event)`` repeats it. A tick
is idempotent: jobs are identified by task, preset and input ids, so ticking
twice, restarting, or running two schedulers at once never adds a duplicate.
A task with a past period gets every eligible pair of the period (backfill);
jobs are claimed oldest acquisition first.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, or_, select, update
from sqlalchemy.orm import Session

from ..catalog import PairingRules, SearchQuery, discover, propose_pairs
from ..catalog.pairing import Pair
from ..errors import EowatchError
from ..services import Services
from ..store.monitoring import TaskRow
from .payload import JobPayload, TaskRef
from .tasks import TaskSpec, next_due

__all__ = ["Scheduler", "TickReport"]

log = logging.getLogger(__name__)


@dataclass
class TickReport:
    """What one tick did."""

    polled: list[str] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    existing: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class Scheduler:
    """Polls due tasks and fills the job queue."""

    def __init__(self, services: Services) -> None:
        self.services, self.settings = services, services.settings
        self.engine: Engine = services.monitor_engine
        self.queue = services.queue
        self.poll_s = services.settings.scheduler_poll_s

    def _due(self, now: float) -> list[TaskRow]:
        with Session(self.engine, expire_on_commit=False) as session:
            query = select(TaskRow).where(
                TaskRow.next_due_at <= now, or_(TaskRow.state == "active", TaskRow.next_due_at == 0.0)
            )
            return list(session.scalars(query.order_by(TaskRow.next_due_at, TaskRow.name)).all())

    def _take(self, row: TaskRow, now: float) -> bool:
        """Move the task's due time forward; only the scheduler whose update lands polls it."""
        spec_cadence = row.spec.get("cadence", 3600)
        with Session(self.engine) as session, session.begin():
            result = session.execute(
                update(TaskRow)
                .where(TaskRow.id == row.id, TaskRow.next_due_at == row.next_due_at)
                .values(next_due_at=next_due(spec_cadence, now))
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def tick(self, now: float | None = None) -> TickReport:
        """Poll every task that is due (or triggered) and enqueue its new jobs."""
        now = time.time() if now is None else now
        report = TickReport()
        for row in self._due(now):
            if not self._take(row, now):
                continue  # another scheduler took this poll; its jobs would be the same anyway
            error: str | None = None
            try:
                self.poll(row, report)
            except (EowatchError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                report.errors[row.name] = error
                log.warning("task %s: poll failed: %s", row.name, error)
            with Session(self.engine) as session, session.begin():
                session.execute(
                    update(TaskRow)
                    .where(TaskRow.id == row.id)
                    .values(last_polled_at=now, last_poll_error=error)
                )
        return report

    def poll(self, row: TaskRow, report: TickReport | None = None) -> list[str]:
        """Discover and pair over the task's period; enqueue one job per pair and preset.
        Returns the ids of the jobs created now."""
        report = report if report is not None else TickReport()
        spec = TaskSpec.model_validate(row.spec)
        report.polled.append(spec.name)
        provider = self.services.provider(spec.provider)
        created: list[str] = []
        for sensor in spec.sensors:
            rules = PairingRules.for_sensor(sensor, self.settings, **spec.pairing)
            start, end = self._window(spec, row, rules)
            query = SearchQuery(
                aoi=spec.geometry, start=start, end=end, sensor=sensor, max_cloud_cover=spec.max_cloud_cover,
                limit=self.settings.monitor_search_limit,
            )  # fmt: skip
            found = discover(query, provider, self.settings)
            period_start = spec.start or datetime.fromtimestamp(row.created, UTC)
            pairs = [
                p for p in propose_pairs(found, rules, spec.geometry) if p.after.datetime >= period_start
            ]
            for pair in pairs:  # oldest after first
                for preset in self._presets(spec, sensor):
                    job_id, new = self.queue.enqueue(
                        row.id, preset, pair.before.id, pair.after.id, self._payload(row, spec, pair, preset),
                        after_time=pair.after.datetime.timestamp(),
                    )  # fmt: skip
                    if new:
                        created.append(job_id)
                        report.enqueued.append(job_id)
                    else:
                        report.existing += 1
        return created

    def _window(self, spec: TaskSpec, row: TaskRow, rules: PairingRules) -> tuple[datetime, datetime]:
        """The search period: the task's, reaching back far enough to find the reference
        of its first acquisition; a continuous task runs up to now."""
        first = spec.start or datetime.fromtimestamp(row.created, UTC)
        end = spec.end or datetime.now(UTC)
        return first - timedelta(days=rules.max_gap_days), end

    def _presets(self, spec: TaskSpec, sensor: str) -> list[str]:
        from ..detect import get_preset

        named = [p for p in spec.presets if get_preset(p).sensor == sensor]
        if named or spec.presets:
            return named
        s = self.settings
        return [s.default_s1_preset if sensor == "sentinel-1" else s.default_s2_preset]

    @staticmethod
    def _payload(row: TaskRow, spec: TaskSpec, pair: Pair, preset: str) -> dict[str, Any]:
        return JobPayload(
            preset=preset, collection=row.collection, before=pair.before.acquisition,
            after=pair.after.acquisition, params=spec.params.get(preset, {}), aoi=spec.aoi,
            task=TaskRef(row.id, spec.name, row.collection), pair=pair.as_dict(),
        ).to_json()  # fmt: skip

    def run_forever(self, stop_event: threading.Event, poll_s: float | None = None) -> None:
        """Tick every ``poll_s`` seconds (``scheduler_poll_s``, default 10) until ``stop_event`` is set."""
        interval = float(poll_s if poll_s is not None else self.poll_s)
        while not stop_event.is_set():
            try:
                self.tick()
            except Exception:  # a broken tick must not stop the scheduler; it is logged
                log.exception("scheduler tick failed")
            stop_event.wait(interval)
