"""The application factory and the one table that maps eowatch exceptions to
HTTP status codes (titiler's ``DEFAULT_STATUS_CODES`` lesson)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .. import __version__
from ..errors import CatalogError, EowatchError, InputError, NotFoundError, ProviderError
from ..results import ResultsCatalog
from . import stac

__all__ = ["create_app", "STATUS_CODES"]

# Most specific first: the first class an exception is an instance of wins.
STATUS_CODES: list[tuple[type[Exception], int]] = [
    (NotFoundError, 404),
    (InputError, 400),
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
    return JSONResponse({"code": type(exc).__name__, "description": str(exc)}, status_code=status)


def create_app(settings: Any, catalog: ResultsCatalog | None = None) -> FastAPI:
    """The eowatch web service for ``settings``: the results catalogue as a
    STAC API. ``catalog`` defaults to the one named by the settings
    (``database_url``, else ``<output_dir>/eowatch.db``)."""
    app = FastAPI(
        title="eowatch",
        version=__version__,
        description="Change detection results of eowatch, served as a STAC API.",
        openapi_url=None,  # served by the STAC router with its OpenAPI media type
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.catalog = catalog or ResultsCatalog.from_settings(settings)
    app.state.base_url = getattr(settings, "api_base_url", None)
    app.add_exception_handler(EowatchError, _eowatch_error)
    app.include_router(stac.router)
    return app
