"""OGC API - Processes: one process per detection preset, executed
synchronously or as a job (``Prefer: respond-async``), its product registered in
the results catalogue.

Executions are jobs of the one job queue (``eowatch.monitor.jobs``, kind
``process``): a synchronous one runs in the request's thread, an asynchronous
one on this service's process worker (``process_workers`` at once) or on any
``eowatch worker``. So they survive a restart, keep to the same leases, limits
and retries as monitoring jobs, and a dismissed job is stopped where it runs.
OGC states are those of ``OGC_STATUS``.

Settings read: ``process_input_roots`` (local folders inputs may come from;
default none: only http(s) inputs), ``process_workers``, ``process_collection``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from shapely.geometry import mapping

from ..aoi import check_aoi, parse_aoi
from ..detect import Preset, get_preset, list_presets, parse_params
from ..errors import AOIError, InputError, NotFoundError, UnknownPresetError
from ..ids import ID_PATTERN, check_id
from ..monitor.jobs import OGC_STATUS, Job, JobQueue
from ..monitor.payload import JobPayload
from ..monitor.worker import JobOutcome
from ..outbound import check_outbound
from ..products import assets_for
from ..results import ResultsCatalog
from ..services import Services
from ..settings import Settings
from .auth import principal, require_role

__all__ = ["router", "CONFORMANCE", "ProcessService", "JobNotReady", "process_outputs"]

log = logging.getLogger("eowatch.api.processes")

_OGC = "http://www.opengis.net/spec/ogcapi-processes-1/1.0/conf"
CONFORMANCE = [
    f"{_OGC}/core",
    f"{_OGC}/ogc-process-description",
    f"{_OGC}/json",
    f"{_OGC}/job-list",
    f"{_OGC}/dismiss",
    f"{_OGC}/oas30",
]
REL_PROCESSES = "http://www.opengis.net/def/rel/ogc/1.0/processes"
REL_JOBS = "http://www.opengis.net/def/rel/ogc/1.0/job-list"
REL_RESULTS = "http://www.opengis.net/def/rel/ogc/1.0/results"
REL_EXECUTE = "http://www.opengis.net/def/rel/ogc/1.0/execute"
JSON = "application/json"
GEOJSON = "application/geo+json"
_RESERVED = ("before", "after", "aoi", "collection")

router = APIRouter()


class JobNotReady(NotFoundError):
    """The job has no results (yet, or because it failed)."""


OnFinish = Callable[[str, str, float, str | None], None]


def _input_schemas(preset: Preset) -> dict[str, Any]:
    schema = preset.Params.model_json_schema()
    defs = schema.get("$defs", {})
    inputs: dict[str, Any] = {
        "before": {
            "title": "Before",
            "description": "The earlier acquisition: a product folder or file on the server "
            "(under an allowed input root), or an http(s) URL of a STAC Item or raster.",
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "after": {
            "title": "After",
            "description": "The later acquisition, given like 'before'.",
            "schema": {"type": "string"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "aoi": {
            "title": "Area of interest",
            "description": "A GeoJSON geometry (EPSG:4326), WKT or 'minlon,minlat,maxlon,maxlat'.",
            "schema": {"oneOf": [{"type": "string"}, {"type": "object"}]},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "collection": {
            "title": "Collection",
            "description": "Results catalogue collection the product is registered in.",
            "schema": {"type": "string", "pattern": ID_PATTERN},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    }
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        if defs and "$ref" in json.dumps(prop):
            prop["$defs"] = defs
        inputs[name] = {
            "title": prop.pop("title", name),
            "description": prop.get("description", ""),
            "schema": prop,
            "minOccurs": 0,
            "maxOccurs": 1,
        }
    return inputs


#: The process output that is not a file of the product folder.
ITEM_OUTPUT = {
    "title": "STAC Item",
    "description": "The product's STAC Item in the results catalogue.",
    "schema": {"type": "object", "contentMediaType": GEOJSON},
}


def process_outputs(preset: Preset[Any, Any]) -> dict[str, Any]:
    """The outputs of a preset's process: its STAC Item and every asset the product
    writers declare for a pair run of it (``eowatch.products.registry``)."""
    outputs: dict[str, Any] = {"item": ITEM_OUTPUT}
    for spec in assets_for(preset, parse_params(preset)):
        outputs[spec.key] = {
            "title": spec.title,
            "description": spec.description,
            "schema": {"type": "string", "contentMediaType": spec.media_type},
        }
    return outputs


@dataclass
class ProcessService:
    """Describes presets as processes and runs them as jobs of the queue."""

    services: Services
    on_finish: OnFinish | None = None
    _stop: threading.Event = field(init=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, default=None)

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def catalog(self) -> ResultsCatalog:
        return self.services.results

    @property
    def queue(self) -> JobQueue:
        return self.services.queue

    def start(self) -> None:
        """Start the worker of asynchronous executions (a thread; each job runs on the
        settings' executor: by default a process of its own)."""
        if self._thread is None and self.settings.process_workers > 0:
            self._thread = threading.Thread(target=self._work, name="eowatch-process-worker", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        from ..monitor import Worker

        worker = Worker(self.services, kinds=("process",), concurrency=self.settings.process_workers,
                        on_outcome=self._finished)  # fmt: skip
        try:
            worker.run(self._stop)
        except Exception:  # logged; /readyz then says the worker stopped
            log.exception("the process worker stopped on an error")
        finally:
            worker.close()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop taking jobs; a job in flight is given ``timeout_s``, then left to its lease."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def readiness(self) -> str:
        """ "ok", or why asynchronous executions would not start now."""
        if self.settings.process_workers == 0:
            return "ok"  # executions wait for `eowatch worker` processes
        if self._thread is None or not self._thread.is_alive():
            return "stopped: the process worker is not running"
        counts = self.queue.counts(kind="process")
        running, waiting = counts.get("running", 0), counts.get("queued", 0)
        if waiting and running >= self.settings.process_workers:
            return f"no free worker: {running} of {self.settings.process_workers} busy, {waiting} waiting"
        return "ok"

    def _finished(self, job: Job, outcome: JobOutcome) -> None:
        if self.on_finish is not None:
            error = outcome.exception
            self.on_finish(job.preset, OGC_STATUS.get(outcome.status, outcome.status), outcome.seconds or 0.0,
                           type(error).__name__ if error else None)  # fmt: skip

    # -- descriptions -----------------------------------------------------------------

    @staticmethod
    def preset(process_id: str) -> Preset:
        try:
            return get_preset(process_id)
        except UnknownPresetError as exc:
            names = ", ".join(p.name for p in list_presets())
            raise NotFoundError(f"no process {process_id!r}; the processes are: {names}") from exc

    @staticmethod
    def summary(preset: Preset) -> dict[str, Any]:
        return {
            "id": preset.name,
            "title": f"{preset.name} change detection ({preset.sensor})",
            "description": preset.summary,
            "version": "1.0.0",
            "keywords": [preset.sensor, "change detection"],
            "jobControlOptions": ["sync-execute", "async-execute", "dismiss"],
            "outputTransmission": ["value", "reference"],
        }

    def describe(self, process_id: str) -> dict[str, Any]:
        preset = self.preset(process_id)
        return {**self.summary(preset), "inputs": _input_schemas(preset), "outputs": process_outputs(preset)}

    # -- execution ---------------------------------------------------------------------

    def _local_input(self, value: Any, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"input {name!r} must be a non-empty string (a path or an http(s) URL)")
        if value.startswith(("http://", "https://")):
            return check_outbound(value, f"input {name!r}", self.settings.outbound_allow)
        if "://" in value:
            raise InputError(f"input {name!r}: only http(s) URLs or server paths are accepted, not {value!r}")
        roots = [Path(r).resolve() for r in self.settings.process_input_roots]
        path = Path(value).resolve()
        if not any(path.is_relative_to(root) for root in roots):
            raise InputError(
                f"input {name!r}: {value!r} is not under an allowed input folder of this service; "
                "give an http(s) URL or a path under process_input_roots"
            )
        if not path.exists():
            raise InputError(f"input {name!r}: {value!r} does not exist on the server")
        return str(path)

    def validate(self, process_id: str, inputs: Any) -> tuple[Preset, dict[str, Any]]:
        """Check an execution request's inputs; InputError with the reason otherwise."""
        preset = self.preset(process_id)
        if not isinstance(inputs, dict):
            raise InputError("the execute request needs an 'inputs' object")
        missing = [n for n in ("before", "after") if n not in inputs]
        if missing:
            raise InputError(f"missing required input(s): {', '.join(missing)}")
        clean: dict[str, Any] = {n: self._local_input(inputs[n], n) for n in ("before", "after")}
        if inputs.get("aoi") is not None:
            aoi = inputs["aoi"]
            if not isinstance(aoi, str | dict):
                raise AOIError("input 'aoi' must be a GeoJSON geometry object, WKT or a bbox string")
            try:
                geom = check_aoi(parse_aoi(aoi, files=False), self.settings.max_aoi_area_km2)
            except AOIError as exc:
                raise AOIError(f"input 'aoi': {exc}") from exc
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise AOIError(f"input 'aoi' is not a usable geometry: {exc}") from exc
            clean["aoi"] = mapping(geom)
        collection = inputs.get("collection") or self.settings.process_collection
        clean["collection"] = check_id("input 'collection'", collection)
        params = {k: v for k, v in inputs.items() if k not in _RESERVED}
        clean["params"] = parse_params(preset, params).model_dump(mode="json", include=set(params))
        return preset, clean

    def submit(self, process_id: str, inputs: Any, owner: str, wait: bool) -> Job:
        """Queue an execution; with ``wait``, run it here and now (its error raised as is)."""
        from ..monitor import InlineExecutor, Worker

        preset, clean = self.validate(process_id, inputs)
        payload = JobPayload(
            preset=preset.name, collection=clean["collection"], before=clean["before"], after=clean["after"],
            params=clean["params"], aoi=clean.get("aoi"),
        ).to_json()  # fmt: skip
        if not wait:
            return self.queue.submit_process(preset.name, owner, payload, clean["collection"])
        worker = Worker(self.services, executor=InlineExecutor(), kinds=("process",))
        job = self.queue.submit_process(preset.name, owner, payload, clean["collection"],
                                        claimed_by=worker.worker_id, lease_s=worker.lease_s)  # fmt: skip
        outcome = worker.run_claimed(job)
        self._finished(job, outcome)
        if outcome.exception is not None:
            raise outcome.exception
        return self.queue.get(job.id)

    def visible_job(self, job_id: str, who: Any) -> Job:
        """A process job the caller may see (their own; admins: any); dismissed jobs are gone,
        and other kinds of job, or other owners', answer exactly like a missing one."""
        job = self.queue.get(job_id)
        mine = who.role == "admin" or job.owner == who.name
        if job.kind != "process" or not mine or job.ogc_status == "dismissed":
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def jobs_of(self, who: Any) -> list[Job]:
        """The caller's process jobs (an admin's: everyone's), newest first."""
        owner = None if who.role == "admin" else who.name
        jobs = self.queue.list(kind="process", owner=owner, newest_first=True, limit=100)
        return [j for j in jobs if j.ogc_status != "dismissed"]

    def dismiss(self, job_id: str, who: Any) -> Job:
        """Dismiss a job: a queued one never starts, a running one is stopped where it runs
        and publishes nothing; it stays dismissed (never "failed" afterwards)."""
        self.visible_job(job_id, who)
        self.queue.dismiss(job_id)
        return self.queue.get(job_id)


# -- documents ------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.app.state.base_url or request.base_url).rstrip("/")


def _service(request: Request) -> ProcessService:
    service: ProcessService = request.app.state.processes
    return service


def _link(rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def _iso(epoch: datetime | None) -> str | None:
    return None if epoch is None else epoch.isoformat().replace("+00:00", "Z")


def _status_doc(base: str, job: Job) -> dict[str, Any]:
    url = f"{base}/jobs/{job.id}"
    links = [_link("self", url), _link("up", f"{base}/jobs")]
    status = job.ogc_status
    if status == "successful":
        links.append(_link(REL_RESULTS, f"{url}/results"))
    failed = f"{(job.error_class or '').rsplit('.', 1)[-1]}: {job.error_message}"
    doc = {
        "type": "process",
        "processID": job.preset,
        "jobID": job.id,
        "status": status,
        "message": failed if status == "failed" else (job.stage or status),
        "progress": int(round(job.progress * 100)),
        "created": _iso(job.created),
        "started": _iso(job.started_at),
        "finished": _iso(job.finished_at),
        "links": links,
    }
    return {k: v for k, v in doc.items() if v is not None}


def _results_doc(request: Request, job: Job) -> dict[str, Any]:
    if job.ogc_status != "successful" or not job.item_id or not job.collection:
        state = f"failed: {job.error_message}" if job.status == "failed" else job.ogc_status
        raise JobNotReady(f"job {job.id!r} has no results ({state})")
    base, coll, item_id = _base(request), job.collection, job.item_id
    item_url = f"{base}/collections/{quote(coll, safe='')}/items/{quote(item_id, safe='')}"
    item = _service(request).catalog.get_item(coll, item_id)
    results: dict[str, Any] = {"item": {"href": item_url, "type": GEOJSON}}
    for key, asset in item["assets"].items():
        href = str(asset.get("href", ""))
        results[key] = {
            "href": href if "://" in href else f"{item_url}/assets/{quote(key, safe='')}",
            "type": asset.get("type") or "application/octet-stream",
        }
    return results


# -- routes ------------------------------------------------------------------------------


@router.get("/processes", tags=["processes"])
def processes(request: Request) -> dict[str, Any]:
    """Every process: one per detection preset."""
    base = _base(request)
    items = []
    for preset in list_presets():
        url = f"{base}/processes/{preset.name}"
        items.append({**ProcessService.summary(preset), "links": [_link("self", url)]})
    return {"processes": items, "links": [_link("self", f"{base}/processes")]}


@router.get("/processes/{process_id}", tags=["processes"])
def process(request: Request, process_id: str) -> dict[str, Any]:
    """One process with its inputs and outputs."""
    base = _base(request)
    doc = _service(request).describe(process_id)
    url = f"{base}/processes/{process_id}"
    return {**doc, "links": [_link("self", url), _link(REL_EXECUTE, f"{url}/execution")]}


@router.post("/processes/{process_id}/execution", tags=["processes"], response_model=None)
def execute(request: Request, process_id: str, body: dict[str, Any]) -> Response | dict[str, Any]:
    """Run a process: synchronously (the results), or as a job with
    ``Prefer: respond-async`` (201 and the job's Location)."""
    who = require_role(request, "admin", "analyst")
    wait = "respond-async" not in request.headers.get("prefer", "")
    job = _service(request).submit(process_id, body.get("inputs"), who.name, wait)
    request.app.state.access.audit(who.name, "execute", process_id, {"job": job.id})
    if wait:
        return _results_doc(request, job)
    url = f"{_base(request)}/jobs/{job.id}"
    return JSONResponse(
        _status_doc(_base(request), job),
        status_code=201,
        headers={"Location": url, "Preference-Applied": "respond-async"},
    )


@router.get("/jobs", tags=["jobs"])
def jobs(request: Request) -> dict[str, Any]:
    """The caller's jobs (an admin's: everyone's), newest first."""
    who, base = principal(request), _base(request)
    return {
        "jobs": [_status_doc(base, j) for j in _service(request).jobs_of(who)],
        "links": [_link("self", f"{base}/jobs")],
    }


@router.get("/jobs/{job_id}", tags=["jobs"])
def job(request: Request, job_id: str) -> dict[str, Any]:
    """Status and progress of a job."""
    return _status_doc(_base(request), _service(request).visible_job(job_id, principal(request)))


@router.get("/jobs/{job_id}/results", tags=["jobs"])
def results(request: Request, job_id: str) -> dict[str, Any]:
    """Links to the product of a successful job: its STAC Item and assets."""
    return _results_doc(request, _service(request).visible_job(job_id, principal(request)))


@router.delete("/jobs/{job_id}", tags=["jobs"])
def dismiss(request: Request, job_id: str) -> dict[str, Any]:
    """Dismiss a job: cancel it if queued, forget it either way."""
    return _status_doc(_base(request), _service(request).dismiss(job_id, principal(request)))
