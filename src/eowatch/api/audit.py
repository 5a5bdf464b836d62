"""Login auditing: ``GET /whoami`` (the web application's sign-in), failed and
first successful authentications in the audit log, and ``GET /audit`` for admins.

A credential is checked on every request, but writing every use would put an
insert in front of each one. So a successful authentication is logged as
``login`` only the first time per principal (name and how it proved it) in
``LOGIN_WINDOW_S`` (15 minutes), remembered in memory: a restarted service, or
each replica of a scaled-out one, logs the first use again, which is what an
audit wants anyway. A failed authentication (bad, revoked or expired
credentials, a malformed Authorization header) is always logged as
``login_failed``, with the API key's public prefix at most, never the key.
A request without credentials is not an attempt and is not logged.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Query, Request

from ..store.auth import AccessStore, Principal, _prefix_of
from .auth import principal, require_role, visible_collections

__all__ = ["LOGIN_WINDOW_S", "LoginAudit", "router"]

#: A principal's successful authentications are logged at most once per this many seconds.
LOGIN_WINDOW_S = 15 * 60
_MAX_REMEMBERED = 10_000  # principals remembered before the expired ones are forgotten

router = APIRouter(tags=["access"])


class LoginAudit:
    """Writes ``login`` and ``login_failed`` rows (one insert at most per request)."""

    def __init__(self, access: AccessStore, window_s: float = LOGIN_WINDOW_S) -> None:
        self.access = access
        self.window_s = float(window_s)
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def _due(self, who: Principal, now: float) -> bool:
        """Whether ``who`` has no login logged in the window; marks it logged now."""
        key = (who.name, who.via)
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.window_s:
                return False
            if len(self._last) >= _MAX_REMEMBERED:
                self._last = {k: t for k, t in self._last.items() if now - t < self.window_s}
            self._last[key] = now
            return True

    def succeeded(self, request: Request, who: Principal) -> None:
        """An authenticated request: logged when it is the principal's first in the window."""
        if self._due(who, time.monotonic()):
            self._write(request, who, "first use of the credential in the window")

    def signed_in(self, request: Request, who: Principal) -> None:
        """An explicit sign-in (``/whoami``): always logged, once per request."""
        if getattr(request.state, "login_logged", False):
            return
        self._due(who, time.monotonic())  # restart the window: no second row for the next request
        self._write(request, who, "sign-in")

    def _write(self, request: Request, who: Principal, reason: str) -> None:
        request.state.login_logged = True
        self.access.audit(
            who.name,
            "login",
            request.url.path,
            {"via": who.via, "role": who.role, "reason": reason, **_client(request)},
        )

    def failed(self, request: Request, token: str, error: Exception) -> None:
        """A rejected credential: logged with the key prefix (API keys) or the method only."""
        detail: dict[str, Any] = {"reason": str(error), **_client(request)}
        prefix = _prefix_of(token)
        if prefix:
            detail.update(via="api-key", key_prefix=prefix)
        elif token.count(".") == 2 and token.startswith("eyJ"):
            detail["via"] = "oidc"
        else:
            detail["via"] = "unknown credential"
        self.access.audit("-", "login_failed", request.url.path, detail)


def _client(request: Request) -> dict[str, Any]:
    return {"client": request.client.host if request.client else None}


@router.get("/whoami")
def whoami(request: Request) -> dict[str, Any]:
    """The caller: name, role, organisation, the collections it may read (null:
    all of them) and how it authenticated. Logged as a ``login``."""
    who = principal(request)
    audit: LoginAudit | None = getattr(request.app.state, "login_audit", None)
    if audit is not None:
        audit.signed_in(request, who)
    visible = visible_collections(request)
    return {
        "name": who.name,
        "role": who.role,
        "organisation": who.organisation,
        "collections": None if visible is None else sorted(visible),
        "via": who.via,
    }


@router.get("/audit")
def audit_log(request: Request, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """The latest audit events, newest first (admins only)."""
    require_role(request, "admin")
    access: AccessStore = request.app.state.access
    return {"events": access.audit_log(limit)}
