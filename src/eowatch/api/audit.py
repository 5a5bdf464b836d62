"""Login auditing: ``GET /whoami`` (the web application's sign-in), failed and
first successful authentications in the audit log, and ``GET /audit`` for admins.

A credential is checked on every request, but writing every use would put an
insert in front of each one. So a successful authentication is logged as
``login`` only the first time per principal (name and how it proved it) in
``LOGIN_WINDOW_S`` (15 minutes), remembered in memory: a restarted service, or
each replica of a scaled-out one, logs the first use again, which is what an
audit wants anyway. A failed authentication (bad, revoked or expired
credentials, a malformed Authorization header) is logged as ``login_failed``
with the API key's public prefix at most, never the credential: only its length
class and, for an API key or a token, a prefix of its SHA-256 (a credential of
no known shape may be a password, so not even that). Every text is capped
(``MAX_TEXT``). Repeated failures of one credential, with one reason, from one
client address are one row per window with a ``count``; an address that reaches
``login_max_failures`` gets one ``login_blocked`` row, and its refused (429)
requests none (see ``eowatch.api.auth``). A request without credentials is not
an attempt and is not logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import APIRouter, Query, Request

from ..settings import default
from ..store.auth import KEY_PREFIX, AccessStore, Principal, _prefix_of
from .auth import client_address, principal, require_role, visible_collections

__all__ = ["LOGIN_WINDOW_S", "MAX_TEXT", "LoginAudit", "router"]

#: A principal's successful authentications are logged at most once per this many seconds.
LOGIN_WINDOW_S = 15 * 60
#: The longest free text (reason, path, client) written by a login row.
MAX_TEXT = 300
_MAX_REMEMBERED = 10_000  # principals (and failing credentials) remembered at most
_LENGTH_CLASSES = (64, 256, 1024, 4096)

router = APIRouter(tags=["access"])


class LoginAudit:
    """Writes ``login`` and ``login_failed`` rows (one insert at most per request)."""

    def __init__(self, access: AccessStore, window_s: float = LOGIN_WINDOW_S) -> None:
        self.access = access
        self.window_s = float(window_s)
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        # (client address, credential digest, reason): (audit row id, window start, count, detail)
        self._failures: OrderedDict[tuple[str, str, str], tuple[int, float, int, dict[str, Any]]]
        self._failures = OrderedDict()
        self._failures_lock = threading.Lock()

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
            _cap(request.url.path),
            {"via": who.via, "role": who.role, "reason": reason, **_client(request)},
        )

    def failed(
        self,
        request: Request,
        token: str,
        error: Exception,
        window_s: float = default("login_failure_window_s"),
    ) -> None:
        """A rejected credential: one row per client address, credential and reason in
        ``window_s``, with a ``count`` (one insert or update per request at most)."""
        reason = _cap(str(error))
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        key = (client_address(request), digest, reason)
        now = time.monotonic()
        with self._failures_lock:
            seen = self._failures.pop(key, None)
            if seen is not None and now - seen[1] < window_s:
                event_id, start, count, detail = seen
                detail = {**detail, "count": count + 1, "last": _utc_now()}
                self._failures[key] = (event_id, start, count + 1, detail)
                self.access.update_audit(event_id, detail)
                return
            detail = {"reason": reason, **_client(request), **_credential(token, digest), "count": 1}
            event_id = self.access.audit("-", "login_failed", _cap(request.url.path), detail)
            self._failures[key] = (event_id, now, 1, detail)
            while len(self._failures) > _MAX_REMEMBERED:
                self._failures.popitem(last=False)

    def blocked(self, request: Request, failures: int, window_s: float) -> None:
        """A client address reached the most failures of a window: its credentials are
        refused unread (429) for the rest of it, and not logged again."""
        detail = {
            "reason": f"{failures} failed authentications in {window_s:g} s: refused until the window ends",
            "failures": failures,
            "window_s": window_s,
            **_client(request),
        }
        self.access.audit("-", "login_blocked", _cap(request.url.path), detail)


def _credential(token: str, digest: str) -> dict[str, Any]:
    """How a failed credential is described: its kind, the API key's public prefix (when
    it has the shape of a real one), its length class and, for a key or a token, a
    SHA-256 prefix; never the value."""
    length = next((f"<={n}" for n in _LENGTH_CLASSES if len(token) <= n), f">{_LENGTH_CLASSES[-1]}")
    detail: dict[str, Any] = {"length": length}
    prefix = _prefix_of(token)
    if token.startswith(KEY_PREFIX):
        detail["via"] = "api-key"
        if prefix:
            detail["key_prefix"] = prefix
    elif token.count(".") == 2 and token.startswith("eyJ"):
        detail["via"] = "oidc"
    else:
        detail["via"] = "unknown credential"  # maybe a password (Basic): no digest of it
        return detail
    detail["sha256"] = digest[:16]
    return detail


def _cap(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _client(request: Request) -> dict[str, Any]:
    return {"client": _cap(request.client.host, 64) if request.client else None}


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
