"""Routes of the web application: its static files under ``/app/`` and the small
``/app/config.json`` the pages read first (base map, version). The pages are
public (api.auth.PUBLIC_PREFIXES); the data they show is not."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from .. import __version__
from ..errors import NotFoundError
from ..settings import Settings

__all__ = ["router", "STATIC", "web_config"]

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
VENDOR = STATIC / "vendor"
# Explicit types: some systems map .js to text/plain, and browsers refuse ES modules served so.
_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
          ".json": "application/json", ".svg": "image/svg+xml", ".html": "text/html; charset=utf-8",
          ".png": "image/png"}  # fmt: skip


def web_config(settings: Settings) -> dict[str, Any]:
    """What the pages need to know about this deployment."""
    basemap = settings.web_basemap_url
    return {
        "version": __version__,
        "basemap": {"url": basemap, "attribution": settings.web_basemap_attribution} if basemap else None,
        "outlines": "vendor/world-atlas/countries-50m.json",
    }


def _static_file(path: str) -> Path:
    """The file at ``path`` under the static folder; NotFoundError for anything else
    (including any path that would leave the folder)."""
    root = STATIC.resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        if path.startswith("vendor/") and not VENDOR.is_dir():
            raise NotFoundError(
                f"web library {path!r} is missing: run scripts/setup_web.sh (npm ci in web/) to install them"
            )
        raise NotFoundError(f"no web application file {path!r}")
    return target


@router.get("/app")
def app_root() -> RedirectResponse:
    return RedirectResponse("/app/", status_code=308)


@router.get("/app/config.json")
def config(request: Request) -> JSONResponse:
    return JSONResponse(web_config(request.app.state.settings), headers={"Cache-Control": "no-cache"})


@router.get("/app/{path:path}")
def static(path: str) -> FileResponse:
    target = _static_file(path or "index.html")
    guessed = mimetypes.guess_type(target.name)[0]
    media = _TYPES.get(target.suffix.lower()) or guessed or "application/octet-stream"
    # Pages and scripts revalidate (a new version shows at once); vendor files are pinned by the lock file.
    cache = "public, max-age=86400" if target.is_relative_to(VENDOR.resolve()) else "no-cache"
    return FileResponse(target, media_type=media, headers={"Cache-Control": cache})
