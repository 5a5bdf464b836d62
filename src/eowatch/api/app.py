"""The application factory and the one table that maps eowatch exceptions to
HTTP status codes (titiler's ``DEFAULT_STATUS_CODES`` lesson)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .. import __version__
from ..errors import (
    AuthError,
    CatalogError,
    EowatchError,
    ForbiddenError,
    InputError,
    InputReadError,
    NotFoundError,
    ProviderError,
    RemoteReadError,
)
from ..ids import check_id
from ..services import Services
from . import stac

__all__ = ["create_app", "STATUS_CODES"]

# Most specific first: the first class an exception is an instance of wins.
STATUS_CODES: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (AuthError, 401),
    (ForbiddenError, 403),
    (InputError, 400),
    (RemoteReadError, 502),  # a server the input is on failed: not the caller's fault
    (InputReadError, 400),  # an input the caller named cannot be read
    (ProviderError, 502),
    (CatalogError, 503),
    (EowatchError, 500),
]


def _status_of(exc: Exception) -> int:
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


async def _eowatch_error(_request: Request, exc: Exception) -> JSONResponse:
    status = _status_of(exc)
    headers = {"WWW-Authenticate": 'Bearer realm="eowatch"'} if status == 401 else None
    return JSONResponse(
        {"code": type(exc).__name__, "description": str(exc)}, status_code=status, headers=headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors (no route, wrong method, body too large) in the same shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    if status == 404:
        detail = f"nothing at {request.url.path!r}: see /openapi.json for the paths of this API"
    return JSONResponse(
        {"code": type(exc).__name__, "description": str(detail)},
        status_code=status,
        headers=getattr(exc, "headers", None),
    )


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    """Request validation failures are a 400 with a readable message, not a bare 422."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in errors)
    return JSONResponse(
        {"code": "InputError", "description": f"invalid request: {problems or exc}"}, status_code=400
    )


#: The path parameters of the routes that are ids, and what each names.
_PATH_IDS = {
    "collection_id": "collection id",
    "item_id": "item id",
    "key": "task id or name",
    "job_id": "job id",
}


def _check_path_ids(request: Request) -> None:
    """Dependency of every route: the ids in its path follow ``eowatch.ids.check_id``
    (a 400 naming the rule before any lookup)."""
    for name, kind in _PATH_IDS.items():
        if name in request.path_params:
            check_id(kind, request.path_params[name])


def create_app(services: Services) -> FastAPI:
    """The eowatch web service over ``services`` (built once from ``Settings``): the
    results catalogue as a STAC API, OGC API - Processes, map tiles and operations
    endpoints, behind API-key / OpenID Connect authentication. Users and grants live in
    the catalogue's database, tasks and jobs (process executions too) in the monitoring one."""
    from ..results.feedback import Feedback
    from ..results.inbox import Inbox
    from . import audit, auth, feedback, inbox, ops, processes, tasks, tiles
    from .background import EmbeddedMonitor
    from .signing import TileSigner

    settings = services.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        embedded = EmbeddedMonitor.from_settings(services)
        app.state.embedded = embedded
        embedded.start()
        app.state.processes.start()
        try:
            yield
        finally:
            app.state.processes.shutdown()
            embedded.stop()
            services.close()

    app = FastAPI(
        title="eowatch",
        version=__version__,
        description="Change detection with eowatch: results as a STAC API, processing as "
        "OGC API - Processes, map tiles of results.",
        openapi_url=None,  # served by the STAC router with its OpenAPI media type
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(auth.authenticate), Depends(_check_path_ids)],
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.catalog = services.results
    app.state.base_url = settings.api_base_url
    app.state.access = services.access
    app.state.feedback = Feedback(services.results, services.access)
    app.state.inbox = Inbox(services.results)
    signing_key = settings.tile_signing_key
    app.state.tile_signer = TileSigner(
        signing_key.get_secret_value() if signing_key else None, settings.tile_url_ttl_s
    )
    app.state.login_audit = audit.LoginAudit(app.state.access)
    app.state.failed_logins = auth.FailedLogins(settings.login_max_failures, settings.login_failure_window_s)
    app.state.monitor_engine = services.monitor_engine
    app.state.tasks = services.tasks
    app.state.jwt_verifier = auth.make_verifier(settings)
    app.state.metrics = metrics = ops.Metrics(services.queue)
    app.state.processes = processes.ProcessService(services, on_finish=metrics.job_finished)
    app.state.extra_conformance = processes.CONFORMANCE
    app.state.extra_landing_links = [
        (processes.REL_PROCESSES, "/processes", "Processes: one per detection preset"),
        (processes.REL_JOBS, "/jobs", "Jobs"),
    ]
    app.add_exception_handler(EowatchError, _eowatch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_middleware(
        ops.ServiceMiddleware,
        metrics=metrics,
        max_body=settings.max_request_bytes,
    )
    app.include_router(stac.router)
    app.include_router(processes.router)
    app.include_router(tiles.router)
    app.include_router(ops.router)
    app.include_router(tasks.router)
    app.include_router(audit.router)
    app.include_router(feedback.router)
    app.include_router(inbox.router)
    from ..web import router as web_router  # the browser application under /app/

    app.include_router(web_router)
    return app
