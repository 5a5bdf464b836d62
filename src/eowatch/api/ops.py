"""Operations: Prometheus metrics, health and readiness, JSON structured logs
with a request id, and the limits on request bodies (size, and how deep JSON nests).

Each app owns its metrics registry (no process-wide default registry), so
several apps in one process (tests) never share counters.

``GET /ops/summary`` (``ops_summary``) gives dashboards the job numbers as JSON.

Settings read (optional): ``max_request_bytes`` (default 1 MiB).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..monitor.jobs import JobQueue
from ..settings import default
from ..store.monitoring import JOB_KINDS, JOB_STATES
from .auth import require_role
from .ops_summary import ops_summary

__all__ = ["Metrics", "ServiceMiddleware", "JsonFormatter", "configure_logging", "router", "request_id"]

log = logging.getLogger("eowatch.access")
request_id: ContextVar[str] = ContextVar("eowatch_request_id", default="-")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: The deepest nesting of arrays and objects a request body may have (a GeoJSON
#: MultiPolygon in a request is ~8; Python's parser fails near 1,000).
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
_LOG_FIELDS = ("request_id", "job_id", "method", "path", "route", "status", "duration_ms", "user", "error")

router = APIRouter()


class _JobCollector(Collector):
    """Jobs by kind and state and the queue depth, read from the one job queue at scrape time."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_state = GaugeMetricFamily(
            "eowatch_jobs", "Jobs by kind (task, process) and queue state.", labels=["kind", "state"]
        )
        waiting = 0
        for kind in JOB_KINDS:
            counts = dict.fromkeys(JOB_STATES, 0) | self.queue.counts(kind=kind)
            waiting += counts["queued"]
            for state, count in counts.items():
                by_state.add_metric([kind, state], count)
        yield by_state
        yield GaugeMetricFamily("eowatch_queue_depth", "Jobs queued and waiting for a worker.", value=waiting)


class Metrics:
    """The Prometheus metrics of one app."""

    def __init__(self, queue: JobQueue) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "eowatch_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "eowatch_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "eowatch_job_duration_seconds",
            "Duration of the process jobs this service ran, by preset and outcome.",
            ["preset", "outcome"],
            registry=self.registry,
            buckets=(1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
        )
        self.failures = Counter(
            "eowatch_job_failures",
            "Failed jobs by preset and exception class.",
            ["preset", "error_class"],
            registry=self.registry,
        )
        self.registry.register(_JobCollector(queue))

    def job_finished(self, preset: str, outcome: str, seconds: float, error_class: str | None) -> None:
        """Hook of ``ProcessService.on_finish``."""
        self.job_duration.labels(preset, outcome).observe(seconds)
        if error_class:
            self.failures.labels(preset, error_class).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and known extras."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc["request_id"] = getattr(record, "request_id", None) or request_id.get()
        for name in _LOG_FIELDS[1:]:
            if hasattr(record, name):
                doc[name] = getattr(record, name)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send eowatch (and uvicorn error) logs to stderr as JSON lines."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]
    for name in ("eowatch", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level)
        logger.propagate = False


async def _reply(send: Send, status: int, code: str, message: str, rid: str) -> None:
    body = json.dumps({"code": code, "description": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _too_deep(body: bytes) -> bool:
    """Whether arrays and objects nest deeper than ``MAX_JSON_DEPTH`` in the JSON text
    ``body`` (strings skipped): found before any parser recurses into it."""
    depth = 0
    for char in _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", body)):
        depth += 1 if char in b"[{" else -1
        if depth > MAX_JSON_DEPTH:
            return True
    return False


class ServiceMiddleware:
    """Request id, access log and HTTP metrics around every request; the body is read
    first, and refused with a clear 413 above the size limit (declared by Content-Length
    or counted while it streams in) or a 400 when it nests deeper than ``MAX_JSON_DEPTH``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body: int = default("max_request_bytes")) -> None:
        self.app, self.metrics, self.max_body = app, metrics, max_body
        self._too_large = f"the request body is larger than {max_body} bytes; send a smaller request"

    async def _body(self, receive: Receive) -> bytes | None:
        """The whole request body; None once it passes the size limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if message["type"] != "http.request" or not message.get("more_body"):
                return b"".join(chunks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _SAFE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        start, status = time.perf_counter(), 500
        method = scope["method"]
        try:
            length = headers.get("content-length")
            body = None
            if length is None or (length.isdigit() and int(length) <= self.max_body):
                body = await self._body(receive)
            if body is None:
                status = 413
                await _reply(send, 413, "RequestTooLarge", self._too_large, rid)
                return
            if _too_deep(body):
                status = 400
                message = f"the request body nests arrays or objects deeper than {MAX_JSON_DEPTH} levels"
                await _reply(send, 400, "InputError", f"{message}; send flatter JSON", rid)
                return
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if replayed:
                    return await receive()  # http.disconnect when the client goes
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            async def send_with_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    message = {
                        **message,
                        "headers": [*message.get("headers", []), (b"x-request-id", rid.encode())],
                    }
                await send(message)

            await self.app(scope, replay, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(elapsed)
            principal = scope.get("state", {}).get("principal")
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope.get("path"),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 1),
                    "user": getattr(principal, "name", None),
                },
            )
            request_id.reset(token)


# -- routes ------------------------------------------------------------------------------


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", tags=["operations"])
def healthz() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"])
def readyz(request: Request) -> JSONResponse:
    """Readiness: the database answers and the job executor accepts work."""
    checks: dict[str, str] = {}
    try:
        with request.app.state.catalog.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        checks["executor"] = request.app.state.processes.readiness()
    except Exception as exc:  # the queue's database is away: not ready
        checks["executor"] = f"unknown: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, status_code=200 if ready else 503
    )


@router.get("/ops/summary", tags=["operations"])
def summary(request: Request) -> dict[str, Any]:
    """Dashboard numbers: jobs by state, queue depth, throughput, durations,
    latencies and recent failures (admins and analysts)."""
    require_role(request, "admin", "analyst")
    return ops_summary(request.app.state.monitor_engine)
