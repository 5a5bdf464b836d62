"""Monitoring tasks over HTTP: create, list, show, change, pause, resume,
trigger and delete tasks, and list their jobs (``eowatch.monitor.TaskService``).

Who sees what: an admin every task; an analyst the tasks it owns (and it may
create tasks); a partner reads, and only reads, the tasks whose collection is
granted to its organisation, and of them only what a partner needs (what is
watched, how often, the state and the jobs: not the owner, the provider, the
webhooks, the e-mails or the error messages, which name servers and people). A
task the caller may not see answers exactly like a missing one (404), and is
absent from listings and counts; names are unique per owner, so a name taken by a
task the caller cannot see is free for it. Every change is written to the audit log.

Over HTTP the AOI must be a GeoJSON object (geometry or Feature): the text
forms of the library (a file path, WKT, a bbox) are for the command line only,
so a request can never make the service read one of its own files; a
``local:FOLDER`` provider must name a folder under ``process_input_roots`` (the
folders OGC process inputs may come from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from ..errors import AOIError, ForbiddenError, InputError, NotFoundError
from ..monitor.tasks import Task, TaskService
from ..outbound import check_outbound
from ..settings import Settings
from ..store.auth import AccessStore, Principal
from .auth import principal

__all__ = ["router", "task_document"]

router = APIRouter(tags=["monitoring"])

_STATES = ("active", "paused")
_MAX_JOBS = 1000
#: What a partner sees of a granted task and of its jobs (allow-lists).
_PARTNER_TASK = ("id", "state", "created", "updated", "next_due_at", "last_polled_at", "jobs")
_PARTNER_SPEC = ("name", "aoi", "sensors", "presets", "start", "end", "cadence", "max_cloud_cover",
                 "min_alert_area_m2", "collection")  # fmt: skip
_PARTNER_JOB = ("id", "task_id", "preset", "status", "attempts", "created", "started", "finished",
                "duration_s", "before", "after", "item_id", "collection")  # fmt: skip


def _service(request: Request) -> TaskService:
    tasks: TaskService = request.app.state.tasks
    return tasks


def _access(request: Request) -> AccessStore:
    access: AccessStore = request.app.state.access
    return access


def _base(request: Request) -> str:
    base = request.app.state.base_url or str(request.base_url)
    return str(base).rstrip("/")


def _partner(request: Request) -> bool:
    return principal(request).role == "partner"


def task_document(request: Request, task: Task) -> dict[str, Any]:
    """``Task.as_dict()`` (secrets masked) with the owner, the collection and links; for
    a partner only the ``_PARTNER_TASK`` and ``_PARTNER_SPEC`` fields (and no owner)."""
    doc = task.as_dict()
    if _partner(request):
        doc = {**{k: doc[k] for k in _PARTNER_TASK}, "spec": {k: doc["spec"][k] for k in _PARTNER_SPEC}}
    else:
        doc["owner"] = task.spec.owner
    base = _base(request)
    collection = task.spec.collection or ""
    doc.update(
        name=task.name,
        collection=collection,
        links=[
            {"rel": "self", "href": f"{base}/tasks/{task.id}", "type": "application/json"},
            {"rel": "items", "href": f"{base}/collections/{collection}/items", "type": "application/geo+json",
             "title": "Products of this task"},
            {"rel": "jobs", "href": f"{base}/tasks/{task.id}/jobs", "type": "application/json",
             "title": "Jobs of this task"},
        ],
    )  # fmt: skip
    return doc


def _scope(request: Request) -> dict[str, Any]:
    """The tasks the caller may read, as ``TaskService`` filters: an admin's all, an
    analyst's its own, a partner's those writing to a collection granted to it."""
    who = principal(request)
    if who.role == "admin":
        return {}
    if who.role == "analyst":
        return {"owner": who.name}
    return {"collections": _access(request).visible_collections(who)}


def _may_change(who: Principal, task: Task) -> bool:
    return who.role == "admin" or (who.role == "analyst" and task.spec.owner == who.name)


def _not_found(key: str) -> NotFoundError:
    # The same message as TaskService's for a missing task: nothing tells the two apart.
    return NotFoundError(f"no monitoring task {key!r} (see `eowatch task list`)")


def _readable(request: Request, key: str) -> Task:
    """The task ``key`` (an id, or a name among those the caller may read) when the
    caller may read it; NotFoundError otherwise."""
    try:
        return _service(request).get(key, **_scope(request))
    except NotFoundError:
        raise _not_found(key) from None


def _changeable(request: Request, key: str) -> Task:
    """The task ``key`` when the caller may change it: 404 when it may not even
    see it, 403 when it may see it only (a partner with the grant)."""
    task = _readable(request, key)
    who = principal(request)
    if not _may_change(who, task):
        raise ForbiddenError(
            f"the {who.role} role may read task {key!r} but not change it; ask its owner or an admin"
        )
    return task


def _audit(request: Request, action: str, task: Task, detail: dict[str, Any] | None = None) -> None:
    who = principal(request)
    _access(request).audit(who.name, action, task.id, {"name": task.name, **(detail or {})})


def _check_http_fields(request: Request, body: dict[str, Any]) -> None:
    """What a request may not ask of the server: to read its files (the AOI must be GeoJSON,
    not a path; a local catalogue must sit under ``process_input_roots``), or to reach its
    network (a STAC API or webhook URL must be public, ``eowatch.outbound``)."""
    if "aoi" in body and not isinstance(body["aoi"], dict):
        raise AOIError(
            'aoi must be a GeoJSON object (a geometry such as {"type": "Polygon", "coordinates": ...} '
            "or a Feature); file paths, WKT and bbox text are accepted on the command line only"
        )
    settings: Settings = request.app.state.settings
    provider = body.get("provider")
    if isinstance(provider, str) and provider.lower().startswith(("http://", "https://")):
        check_outbound(provider, "provider", settings.outbound_allow)
    for hook in body.get("webhooks") or []:
        if isinstance(hook, dict) and isinstance(hook.get("url"), str):
            check_outbound(hook["url"], "webhook", settings.outbound_allow)
    if isinstance(provider, str) and provider.lower().startswith("local:"):
        roots = [Path(r).resolve() for r in settings.process_input_roots]
        folder = Path(provider[len("local:") :]).resolve()
        if not any(folder.is_relative_to(root) for root in roots):
            raise InputError(
                f"provider {provider!r}: the folder is not under an allowed input folder of this service; "
                "use a STAC provider, or ask an admin to add it to process_input_roots"
            )


@router.post("/tasks", status_code=201)
def create_task(request: Request, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Create a monitoring task owned by the caller (any ``owner`` sent is ignored)."""
    who = principal(request)
    if who.role not in ("admin", "analyst"):
        raise ForbiddenError(f"the {who.role} role may not create monitoring tasks (needs admin or analyst)")
    if not isinstance(body, dict):
        raise InputError("the body of POST /tasks is a JSON object: the task's name, aoi, sensors, ...")
    _check_http_fields(request, body)
    task = _service(request).create({**body, "owner": who.name})
    _audit(request, "task-create", task, {"collection": task.spec.collection})
    return task_document(request, task)


@router.get("/tasks")
def list_tasks(
    request: Request, state: str | None = Query(None, description="active or paused")
) -> dict[str, Any]:
    """The tasks the caller may read, by name."""
    if state is not None and state not in _STATES:
        raise InputError(f"state {state!r} is not one of {', '.join(_STATES)}")
    docs = [task_document(request, t) for t in _service(request).list(state=state, **_scope(request))]
    return {"tasks": docs, "numberMatched": len(docs)}


@router.get("/tasks/{key}")
def get_task(request: Request, key: str) -> dict[str, Any]:
    """One task, by id or name."""
    return task_document(request, _readable(request, key))


@router.patch("/tasks/{key}")
def update_task(request: Request, key: str, body: Annotated[Any, Body()]) -> dict[str, Any]:
    """Change a task with a JSON merge patch of its spec (``null`` removes a field)."""
    task = _changeable(request, key)
    if not isinstance(body, dict):
        raise InputError("the body of PATCH /tasks/{id} is a JSON object of the fields to change")
    _check_http_fields(request, body)
    changes = {k: v for k, v in body.items() if k != "owner"}  # the owner stays who created it
    updated = _service(request).update(task.id, changes)
    _audit(request, "task-update", updated, {"fields": sorted(changes)})
    return task_document(request, updated)


@router.post("/tasks/{key}/pause")
def pause_task(request: Request, key: str) -> dict[str, Any]:
    """Stop polling the task (queued jobs stay queued)."""
    task = _service(request).pause(_changeable(request, key).id)
    _audit(request, "task-pause", task)
    return task_document(request, task)


@router.post("/tasks/{key}/resume")
def resume_task(request: Request, key: str) -> dict[str, Any]:
    """Poll the task again, at once."""
    task = _service(request).resume(_changeable(request, key).id)
    _audit(request, "task-resume", task)
    return task_document(request, task)


@router.post("/tasks/{key}/trigger")
def trigger_task(request: Request, key: str) -> dict[str, Any]:
    """Make the task due now: the next scheduler tick polls it (even when paused)."""
    task = _service(request).trigger(_changeable(request, key).id)
    _audit(request, "task-trigger", task)
    return task_document(request, task)


@router.delete("/tasks/{key}", status_code=204)
def delete_task(request: Request, key: str) -> Response:
    """Delete the task and its jobs; its products stay in the results catalogue."""
    task = _changeable(request, key)
    _service(request).delete(task.id)
    _audit(request, "task-delete", task, {"collection": task.spec.collection})
    return Response(status_code=204)


@router.get("/tasks/{key}/jobs")
def task_jobs(request: Request, key: str, limit: int = Query(100, ge=1, le=_MAX_JOBS)) -> dict[str, Any]:
    """The jobs of a task, newest first."""
    jobs = _service(request).jobs(_readable(request, key).id, limit=limit)
    if _partner(request):
        jobs = [{k: job[k] for k in _PARTNER_JOB} for job in jobs]
    return {"jobs": jobs}
