"""OGC API - Processes: one process per detection preset, executed
synchronously or as a job (``Prefer: respond-async``) on the service's own
thread pool, its product registered in the results catalogue.

The job machinery is deliberately small (``ProcessService`` over
``eowatch.store.processes.JobStore``); the monitoring job queue is separate.

Settings read: ``process_input_roots`` (local folders inputs may come from;
default none: only http(s) inputs), ``process_workers``, ``process_collection``.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from ..aoi import check_aoi, parse_aoi
from ..detect import Preset, get_preset, list_presets, parse_params
from ..errors import AOIError, InputError, NotFoundError, UnknownPresetError
from ..ids import ID_PATTERN, check_id
from ..products import assets_for
from ..results import ResultsCatalog
from ..settings import Settings
from ..store.processes import JobStore, _now
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
_STAGES = {"resolve": 0.05, "read": 0.2, "mask": 0.45, "detect": 0.6, "write": 0.8, "registering": 0.95}
_RESERVED = ("before", "after", "aoi", "collection")

router = APIRouter()


class JobNotReady(NotFoundError):
    """The job has no results (yet, or because it failed)."""


class JobDismissed(Exception):
    """Raised inside a running job that was dismissed: it stops there."""


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
    """Describes presets as processes and runs them as jobs."""

    settings: Settings
    catalog: ResultsCatalog
    jobs: JobStore
    on_finish: OnFinish | None = None
    _pool: ThreadPoolExecutor = field(init=False)
    _futures: dict[str, Future[Any]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        workers = self.settings.process_workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eowatch-job")
        self.jobs.fail_interrupted()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

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
            return value
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
            clean["aoi"] = geom.wkt
        collection = inputs.get("collection") or self.settings.process_collection
        clean["collection"] = check_id("input 'collection'", collection)
        params = {k: v for k, v in inputs.items() if k not in _RESERVED}
        clean["params"] = parse_params(preset, params).model_dump(mode="json", include=set(params))
        return preset, clean

    def submit(self, process_id: str, inputs: Any, owner: str, wait: bool) -> dict[str, Any]:
        """Create a job; run it now (``wait``) or on the pool. Returns the job."""
        preset, clean = self.validate(process_id, inputs)
        job = self.jobs.create(preset.name, owner, clean, clean["collection"])
        if wait:
            self.run(job["id"], raise_errors=True)
        else:
            self._futures[job["id"]] = self._pool.submit(self.run, job["id"])
        return self.jobs.get(job["id"])

    def run(self, job_id: str, raise_errors: bool = False) -> None:
        """Run one job to the end, recording progress and outcome."""
        from ..pipeline import DetectRequest, detect_pair

        job = self.jobs.get(job_id)
        if job["status"] != "accepted":
            return
        if not self.jobs.update(job_id, status="running", started=_now(), message="running", progress=0.01):
            return  # dismissed before it started
        start = time.perf_counter()
        inputs = job["inputs"]

        def progress(stage: str) -> None:  # a dismissed job stops at its next stage
            if not self.jobs.update(job_id, progress=_STAGES.get(stage, 0.5), message=stage):
                raise JobDismissed(f"job {job_id} was dismissed")

        outcome, error_class = "successful", None
        try:
            out_dir = Path(self.settings.output_dir) / "jobs" / job_id
            request = DetectRequest(
                inputs["before"],
                inputs["after"],
                preset=job["process_id"],
                params=inputs["params"],
                aoi=inputs.get("aoi"),
            )
            run = detect_pair(request, self.settings, out_dir, progress)
            progress("registering")
            item = self.catalog.ingest_folder(run.folder, inputs["collection"])
            done = dict(status="successful", progress=1.0, message="done", finished=_now())
            if not self.jobs.update(job_id, item_id=item["id"], **done):  # dismissed meanwhile: unpublish
                self.catalog.delete_item(inputs["collection"], item["id"])
                raise JobDismissed(f"job {job_id} was dismissed")
        except JobDismissed:
            outcome = "dismissed"
            shutil.rmtree(Path(self.settings.output_dir) / "jobs" / job_id, ignore_errors=True)
        except Exception as exc:
            outcome, error_class = "failed", type(exc).__name__
            log.warning("job failed", extra={"job_id": job_id, "error": f"{error_class}: {exc}"})
            self.jobs.update(
                job_id,
                status="failed",
                message=f"{error_class}: {exc}",
                error_class=error_class,
                finished=_now(),
            )
            if raise_errors:
                raise
        finally:
            self._futures.pop(job_id, None)
            if self.on_finish:
                self.on_finish(job["process_id"], outcome, time.perf_counter() - start, error_class)

    def visible_job(self, job_id: str, who: Any) -> dict[str, Any]:
        """A job the caller may see (their own; admins: any); dismissed jobs are gone."""
        job = self.jobs.get(job_id, None if who.role == "admin" else who.name)
        if job["status"] == "dismissed":
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def dismiss(self, job_id: str, who: Any) -> dict[str, Any]:
        """Dismiss a job: a queued one never starts, a running one stops at its next stage
        and publishes nothing; its status stays "dismissed" (never "failed" afterwards)."""
        job = self.visible_job(job_id, who)
        future = self._futures.pop(job_id, None)
        if future is not None:
            future.cancel()
        self.jobs.dismiss(job_id)
        return {**job, "status": "dismissed", "message": "dismissed"}


# -- documents ------------------------------------------------------------------------------


def _base(request: Request) -> str:
    return str(request.app.state.base_url or request.base_url).rstrip("/")


def _service(request: Request) -> ProcessService:
    service: ProcessService = request.app.state.processes
    return service


def _link(rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def _status_doc(base: str, job: dict[str, Any]) -> dict[str, Any]:
    url = f"{base}/jobs/{job['id']}"
    links = [_link("self", url), _link("up", f"{base}/jobs")]
    if job["status"] == "successful":
        links.append(_link(REL_RESULTS, f"{url}/results"))
    doc = {
        "type": "process",
        "processID": job["process_id"],
        "jobID": job["id"],
        "status": job["status"],
        "message": job["message"],
        "progress": job["progress"],
        "created": job["created"],
        "started": job["started"],
        "finished": job["finished"],
        "links": links,
    }
    return {k: v for k, v in doc.items() if v is not None}


def _results_doc(request: Request, job: dict[str, Any]) -> dict[str, Any]:
    if job["status"] != "successful":
        state = "failed: " + job["message"] if job["status"] == "failed" else job["status"]
        raise JobNotReady(f"job {job['id']!r} has no results ({state})")
    base, coll, item_id = _base(request), job["collection"], job["item"]
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
    request.app.state.access.audit(who.name, "execute", process_id, {"job": job["id"]})
    if wait:
        return _results_doc(request, job)
    url = f"{_base(request)}/jobs/{job['id']}"
    return JSONResponse(
        _status_doc(_base(request), job),
        status_code=201,
        headers={"Location": url, "Preference-Applied": "respond-async"},
    )


@router.get("/jobs", tags=["jobs"])
def jobs(request: Request) -> dict[str, Any]:
    """The caller's jobs (an admin's: everyone's), newest first."""
    who, base = principal(request), _base(request)
    rows = _service(request).jobs.list(None if who.role == "admin" else who.name)
    return {
        "jobs": [_status_doc(base, j) for j in rows if j["status"] != "dismissed"],
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
