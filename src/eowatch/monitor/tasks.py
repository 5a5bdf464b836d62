"""Monitoring tasks: what to watch, how often, with which presets, and whom to tell.

A ``TaskSpec`` (pydantic) is validated once and stored as JSON in the
``monitor_tasks`` table; ``TaskService`` creates, lists, shows, pauses,
resumes, deletes and triggers tasks. The scheduler reads the same rows.
"""

from __future__ import annotations

import builtins
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, Select, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from ..aoi import check_aoi, parse_aoi
from ..catalog.providers import list_providers, normalise_sensor, parse_time
from ..errors import CatalogError, InputError, NotFoundError
from ..ids import check_id
from ..settings import Settings
from ..store.monitoring import JobRow, TaskRow

__all__ = [
    "TaskSpec", "Task", "WebhookTarget", "TaskService", "next_due", "merge_patch",
    "job_view",
]  # fmt: skip

DEFAULT_CADENCE_S = 3600
_NEVER = 9.0e15  # the due time of a paused task: far after any real time
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WebhookTarget(BaseModel):
    """A URL that receives alerts as a JSON POST, signed with ``secret`` (HMAC-SHA256)."""

    model_config = ConfigDict(extra="forbid")

    url: str
    secret: str | None = None

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"webhook URL {value!r} must start with http:// or https://")
        return value


class TaskSpec(BaseModel):
    """What a monitoring task watches and what it does with new acquisitions.

    ``aoi`` accepts GeoJSON (text, dict, file), WKT or ``minx,miny,maxx,maxy``
    and is stored as a GeoJSON geometry. ``end=None`` watches continuously.
    ``cadence`` is seconds between polls or a cron expression (``croniter``).
    ``presets`` default to the settings' default preset of each sensor;
    ``params`` maps a preset name to its parameters. ``pairing`` overrides
    ``PairingRules`` fields (``max_gap_days``, ``min_valid_fraction``...)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    aoi: Any
    sensors: list[str] = Field(default_factory=lambda: ["sentinel-2"])
    presets: list[str] = Field(default_factory=list)
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    start: datetime | None = None
    end: datetime | None = None
    cadence: int | str = DEFAULT_CADENCE_S
    provider: str | None = None
    pairing: dict[str, Any] = Field(default_factory=dict)
    max_cloud_cover: float | None = Field(None, ge=0, le=100)
    min_alert_area_m2: float = Field(0.0, ge=0)
    webhooks: list[WebhookTarget] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    owner: str | None = None
    collection: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_id("task name", value)

    @field_validator("aoi", mode="before")
    @classmethod
    def _aoi(cls, value: Any) -> dict[str, Any]:
        geom = value if isinstance(value, BaseGeometry) else parse_aoi(value)
        return dict(mapping(geom))

    @field_validator("sensors")
    @classmethod
    def _sensors(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("a task watches at least one sensor (s1 or s2)")
        return list(dict.fromkeys(normalise_sensor(s) for s in value))

    @field_validator("start", "end", mode="before")
    @classmethod
    def _time(cls, value: Any) -> datetime | None:
        return None if value in (None, "") else parse_time(value)

    @field_validator("cadence")
    @classmethod
    def _cadence(cls, value: int | str) -> int | str:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, int):
            if value < 1:
                raise ValueError(f"cadence must be at least 1 second, not {value}")
            return value
        next_due(value, time.time())  # validates the cron expression
        return value.strip()

    @model_validator(mode="after")
    def _period(self) -> TaskSpec:
        if self.start and self.end and self.end < self.start:
            raise ValueError(
                f"the period ends ({self.end:%Y-%m-%d}) before it starts ({self.start:%Y-%m-%d})"
            )
        if self.collection is None:
            self.collection = f"task-{self.name}"
        return self

    @property
    def geometry(self) -> BaseGeometry:
        return shape(self.aoi)

    @property
    def continuous(self) -> bool:
        return self.end is None


class Task(BaseModel):
    """A stored task: its spec plus identity and polling state."""

    id: str
    spec: TaskSpec
    state: str
    created: datetime
    updated: datetime
    next_due_at: datetime | None
    last_polled_at: datetime | None
    last_poll_error: str | None = None
    jobs: dict[str, int] = Field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    def as_dict(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """JSON-ready view (webhook secrets masked unless asked)."""
        data = self.model_dump(mode="json")
        if not show_secrets:
            for hook in data["spec"]["webhooks"]:
                if hook.get("secret"):
                    hook["secret"] = "***"
        return data


def next_due(cadence: int | str, after: float) -> float:
    """The epoch time of the next poll after ``after``: ``after + cadence`` seconds,
    or the next instant of a cron expression (UTC)."""
    if isinstance(cadence, int):
        return after + cadence
    try:
        from croniter import croniter
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError(
            f"cadence {cadence!r} is a cron expression: install croniter (pip install 'eowatch[monitor]') "
            "or give an interval in seconds"
        ) from None
    try:
        it = croniter(cadence, datetime.fromtimestamp(after, UTC))
    except (ValueError, KeyError) as exc:
        raise InputError(
            f"cadence {cadence!r} is neither seconds nor a valid cron expression: {exc}"
        ) from None
    return float(it.get_next(float))


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class TaskService:
    """Create, list, show, pause, resume, delete and trigger monitoring tasks (stored in
    ``engine``: ``Services.monitor_engine``)."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def validate(self, spec: TaskSpec | dict[str, Any]) -> TaskSpec:
        """``spec`` checked as a new or changed task would be: fields, AOI size, presets.
        ``InputError`` names every problem."""
        if not isinstance(spec, TaskSpec):
            try:
                spec = TaskSpec.model_validate(spec)
            except ValidationError as exc:
                raise InputError(f"invalid task: {_problems(exc)}") from None
            except ValueError as exc:
                raise InputError(f"invalid task: {exc}") from None
        # checked here, not in TaskSpec, so that specs stored under an older rule still load
        check_id("the task's collection id", spec.collection)
        check_aoi(spec.geometry, self.settings.max_aoi_area_km2)
        _check_runnable(spec)
        return spec

    def create(self, spec: TaskSpec | dict[str, Any]) -> Task:
        """Validate and store a new task (due at once). Names are unique per owner: ``InputError``
        when invalid or when the owner has a task of that name. A task left to the default
        collection (``task-<name>``) that another task already writes to gets ``task-<id>``,
        so that the products of two owners' same-named tasks never mix."""
        defaulted = not isinstance(spec, TaskSpec) and spec.get("collection") is None
        spec = self.validate(spec)
        task_id, now = uuid.uuid4().hex[:16], time.time()
        try:
            with self._session() as session, session.begin():
                if _count(session, TaskRow.name == spec.name, TaskRow.owner == spec.owner):
                    raise InputError(f"a task named {spec.name!r} already exists; choose another name")
                if defaulted and _count(session, TaskRow.collection == spec.collection):
                    spec = spec.model_copy(update={"collection": f"task-{task_id}"})
                session.add(TaskRow(
                    id=task_id, name=spec.name, owner=spec.owner, collection=spec.collection or "",
                    state="active", spec=spec.model_dump(mode="json"), created=now, updated=now,
                    next_due_at=0.0,
                ))  # fmt: skip
        except IntegrityError:
            raise InputError(f"a task named {spec.name!r} already exists; choose another name") from None
        except SQLAlchemyError as exc:
            raise CatalogError(f"cannot store task {spec.name!r}: {exc}") from exc
        return self.get(task_id)

    def _find(
        self, session: Session, key: str, owner: str | None = None, collections: frozenset[str] | None = None
    ) -> TaskRow:
        """The task of id ``key``, else the one named ``key``, among those ``_scoped`` to
        ``owner`` and ``collections``; ``InputError`` when several of them have that name."""
        query = select(TaskRow).where(or_(TaskRow.id == key, TaskRow.name == key))
        rows = session.scalars(_scoped(query, owner, None, collections).limit(3)).all()
        rows = [r for r in rows if r.id == key] or rows
        if len(rows) > 1:
            raise InputError(f"several tasks (of several owners) are named {key!r}; give the task's id")
        if not rows:
            raise NotFoundError(f"no monitoring task {key!r} (see `eowatch task list`)")
        return rows[0]

    def _task(self, session: Session, row: TaskRow, counts: dict[str, int] | None = None) -> Task:
        if counts is None:
            counts = self._counts(session, [row.id]).get(row.id, {})
        due = row.next_due_at if 0 < row.next_due_at < _NEVER else None
        return Task(
            id=row.id, spec=TaskSpec.model_validate(row.spec), state=row.state, created=_dt(row.created),
            updated=_dt(row.updated), next_due_at=_dt(due),
            last_polled_at=_dt(row.last_polled_at), last_poll_error=row.last_poll_error, jobs=counts,
        )  # fmt: skip

    def get(self, key: str, owner: str | None = None, collections: frozenset[str] | None = None) -> Task:
        """A task by id or name (of ``owner``, writing to one of ``collections``, when given)."""
        with self._session() as session:
            return self._task(session, self._find(session, key, owner, collections))

    def list(
        self, owner: str | None = None, state: str | None = None, collections: frozenset[str] | None = None
    ) -> list[Task]:
        """Every task (of ``owner``, in ``state``, writing to one of ``collections``), by name."""
        query = _scoped(select(TaskRow).order_by(TaskRow.name), owner, state, collections)
        with self._session() as session:
            rows = session.scalars(query).all()
            counts = self._counts(session, [row.id for row in rows])
            return [self._task(session, row, counts.get(row.id, {})) for row in rows]

    @staticmethod
    def _counts(session: Session, task_ids: builtins.list[str]) -> dict[str, dict[str, int]]:
        """Jobs per state of each task, in one grouped query."""
        counts: dict[str, dict[str, int]] = {}
        if not task_ids:
            return counts
        query = (
            select(JobRow.task_id, JobRow.status, func.count())
            .where(JobRow.task_id.in_(task_ids))
            .group_by(JobRow.task_id, JobRow.status)
        )
        for task_id, status, n in session.execute(query):
            counts.setdefault(str(task_id), {})[status] = int(n)
        return counts

    def update(self, key: str, changes: dict[str, Any]) -> Task:
        """Apply ``changes`` to a task as a JSON merge patch (RFC 7386: ``null``
        removes a field, objects merge, anything else replaces; ``aoi`` is always
        replaced whole) and re-validate the merged spec. A webhook secret sent
        back masked (``***``) keeps the stored one. An active task is polled
        again at once with its new spec. ``InputError`` when the result is invalid
        or the new name is taken."""
        if not isinstance(changes, dict):
            raise InputError('a task change is a JSON object of the fields to change, e.g. {"cadence": 600}')
        with self._session() as session, session.begin():
            row = self._find(session, key)
            merged = merge_patch(dict(row.spec), changes, replace=("aoi",))
            _keep_masked_secrets(merged, row.spec)
            spec = self.validate(merged)
            if _count(session, TaskRow.name == spec.name, TaskRow.owner == row.owner, TaskRow.id != row.id):
                raise InputError(f"a task named {spec.name!r} already exists; choose another name")
            values: dict[str, Any] = dict(
                name=spec.name, owner=spec.owner, collection=spec.collection or "",
                spec=spec.model_dump(mode="json"), updated=time.time(),
            )  # fmt: skip
            if row.state == "active":
                values["next_due_at"] = 0.0
            try:
                session.execute(update(TaskRow).where(TaskRow.id == row.id).values(**values))
                session.flush()
            except IntegrityError:  # a concurrent rename won the name
                raise InputError(f"a task named {spec.name!r} already exists; choose another name") from None
            task_id = row.id
        return self.get(task_id)

    def jobs(self, key: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        """The jobs of a task, newest first, as JSON-ready dicts (``job_view``)."""
        with self._session() as session:
            row = self._find(session, key)
            query = (
                select(JobRow).where(JobRow.task_id == row.id)
                .order_by(JobRow.created.desc(), JobRow.after_time.desc(), JobRow.id).limit(limit)
            )  # fmt: skip
            return [job_view(job) for job in session.scalars(query).all()]

    def _set(self, key: str, **values: Any) -> Task:
        with self._session() as session, session.begin():
            row = self._find(session, key)
            session.execute(update(TaskRow).where(TaskRow.id == row.id).values(updated=time.time(), **values))
        return self.get(key)

    def pause(self, key: str) -> Task:
        """Stop polling the task (queued jobs stay queued)."""
        return self._set(key, state="paused", next_due_at=_NEVER)

    def resume(self, key: str) -> Task:
        """Poll the task again, at once."""
        return self._set(key, state="active", next_due_at=0.0)

    def trigger(self, key: str) -> Task:
        """Make the task due now: the next scheduler tick polls it (even if paused)."""
        return self._set(key, next_due_at=0.0)

    def delete(self, key: str) -> None:
        """Delete the task with its jobs and alert records. Products already in
        the results catalogue stay there."""
        with self._session() as session, session.begin():
            row = self._find(session, key)
            session.execute(delete(JobRow).where(JobRow.task_id == row.id))
            session.delete(row)


def _count(session: Session, *conditions: Any) -> int:
    """How many tasks meet ``conditions`` (``TaskRow.owner == None`` is ``IS NULL``)."""
    return int(session.scalar(select(func.count()).select_from(TaskRow).where(*conditions)) or 0)


def _scoped(
    query: Select[TaskRow], owner: str | None, state: str | None, collections: frozenset[str] | None
) -> Select[TaskRow]:
    """``query`` narrowed to the tasks of ``owner``, in ``state``, writing to one of
    ``collections`` (each when given)."""
    if owner is not None:
        query = query.where(TaskRow.owner == owner)
    if state is not None:
        query = query.where(TaskRow.state == state)
    if collections is not None:
        query = query.where(TaskRow.collection.in_(sorted(collections)))
    return query


def _check_runnable(spec: TaskSpec) -> None:
    """Refuse a task that could never run: an unknown preset, one of a sensor the task does
    not watch (or a watched sensor none of its presets is for), an unknown discovery
    provider, an e-mail address that is not one."""
    from ..detect import get_preset

    sensor_of = {preset: get_preset(preset).sensor for preset in spec.presets}  # names the choices
    for preset, sensor in sensor_of.items():
        if sensor not in spec.sensors:
            raise InputError(
                f"preset {preset!r} is for {sensor} but the task watches {', '.join(spec.sensors)}; "
                "choose a preset of a watched sensor (see `eowatch presets`) or watch its sensor"
            )
    if idle := [s for s in spec.sensors if sensor_of and s not in sensor_of.values()]:
        raise InputError(
            f"the task watches {', '.join(idle)} but none of its presets ({', '.join(sensor_of)}) is for it; "
            "add a preset for it or stop watching it"
        )
    name = (spec.provider or "").strip().lower()
    if name and not name.startswith(("http://", "https://", "local:")) and name not in list_providers():
        raise InputError(
            f"unknown discovery provider {spec.provider!r}; available: {', '.join(list_providers())}, "
            "local:FOLDER or the URL of a STAC API"
        )
    for address in spec.emails:
        if not _EMAIL.match(address):
            raise InputError(f"{address!r} is not an e-mail address; give one like name@example.org")


def _problems(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field: problem; field: problem``."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "task"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        if err.get("type") == "extra_forbidden":
            msg = f"unknown field (the fields are {', '.join(TaskSpec.model_fields)})"
        parts.append(f"{where}: {msg}")
    return "; ".join(parts)


def merge_patch(
    target: dict[str, Any], patch: dict[str, Any], replace: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``target`` with the JSON merge patch ``patch`` applied (RFC 7386); the keys in
    ``replace`` take the patch's value whole instead of merging."""
    result = dict(target)
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        elif isinstance(value, dict) and isinstance(result.get(name), dict) and name not in replace:
            result[name] = merge_patch(result[name], value)
        else:
            result[name] = value
    return result


def _keep_masked_secrets(spec: dict[str, Any], stored: dict[str, Any]) -> None:
    """Webhooks sent back as shown (secret ``***``) keep the secret stored for that URL."""
    secrets = {h.get("url"): h.get("secret") for h in stored.get("webhooks") or [] if isinstance(h, dict)}
    for hook in spec.get("webhooks") or []:
        if isinstance(hook, dict) and hook.get("secret") == "***":
            hook["secret"] = secrets.get(hook.get("url"))


def job_view(row: JobRow) -> dict[str, Any]:
    """One job of a task as the API and CLI show it (times ISO 8601 UTC)."""
    ran = row.finished_at is not None and row.started_at is not None
    duration = row.finished_at - row.started_at if ran else None  # type: ignore[operator]
    error = f"{row.error_class}: {row.error_message}" if row.error_class else None
    return {
        "id": row.id, "task_id": row.task_id, "preset": row.preset, "status": row.status,
        "attempts": row.attempts, "error": error, "error_class": row.error_class,
        "created": _iso(row.created), "started": _iso(row.started_at), "finished": _iso(row.finished_at),
        "duration_s": None if duration is None else round(duration, 3),
        "before": row.before_id, "after": row.after_id, "item_id": row.item_id, "collection": row.collection,
    }  # fmt: skip


def _iso(value: float | None) -> str | None:
    stamp = _dt(value)
    return None if stamp is None else stamp.isoformat().replace("+00:00", "Z")
