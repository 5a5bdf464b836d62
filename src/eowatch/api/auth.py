"""Who is calling: API keys (``Authorization: Bearer eow_...`` or ``X-API-Key``)
and OpenID Connect bearer tokens (JWTs verified against a configured JWKS).

``authenticate`` runs before every route and leaves the caller in
``request.state.principal``; ``visible_collections(request)`` is what every
catalogue path filters on, so a collection that is not granted answers exactly
as if it did not exist.

Settings read (all optional): ``auth_required`` (default False: anonymous
callers read everything, as before access control existed), ``oidc_jwks_url``
(an http(s) URL or a local JSON file), ``oidc_audience``, ``oidc_issuer``,
``oidc_role_claim`` (default ``eowatch_role``), ``oidc_org_claim`` (default
``organisation``), ``login_max_failures`` and ``login_failure_window_s``.

An OpenID Connect caller is named ``oidc:<issuer host>/<sub>`` (``oidc_name``),
never by its bare ``sub``: ownership of tasks and jobs is checked by name, and a
token whose subject is ``alice`` must not be the local user ``alice`` (local
names may not start with ``oidc:``).

A client address (an IPv6 one by its /64) that fails to authenticate
``login_max_failures`` times in a window of ``login_failure_window_s`` gets a
429 with ``Retry-After`` for the rest of the window on every request that
carries credentials, which are then not even checked (``FailedLogins``, made
with the app: in memory, per process, bounded). Requests without credentials are not attempts.
"""

from __future__ import annotations

import ipaddress
import json
import math
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.exceptions import HTTPException

from ..errors import AuthError, ForbiddenError
from ..settings import Settings
from ..store.auth import MAX_NAME_CHARS, OIDC_NAME_PREFIX, ROLES, AccessStore, Principal
from .signing import SIGNATURE_PARAM

__all__ = [
    "ANONYMOUS",
    "PUBLIC_PATHS",
    "FailedLogins",
    "IdentityProviderUnreachable",
    "JWTVerifier",
    "TooManyFailedLogins",
    "authenticate",
    "client_address",
    "oidc_name",
    "principal",
    "require_role",
    "visible_collections",
]

#: The caller when authentication is not required and no credentials were given.
ANONYMOUS = Principal("anonymous", "admin", "", via="none")
#: Paths anyone may read, even when authentication is required.
PUBLIC_PATHS = frozenset(
    {"/conformance", "/openapi.json", "/docs", "/healthz", "/readyz", "/metrics", "/app"}
)
#: Path prefixes anyone may read: the web application's pages and scripts (its data calls send a key).
PUBLIC_PREFIXES = ("/app/",)
#: Client addresses whose failed authentications are remembered (the least recent forgotten first).
MAX_CLIENTS = 10_000


def oidc_name(sub: str, issuer: str | None) -> str:
    """The principal name of OpenID Connect subject ``sub`` of ``issuer``:
    ``oidc:<issuer host>/<sub>`` (``oidc:/<sub>`` for tokens without an issuer). The
    host ends at the first ``/``, so no two (issuer host, subject) pairs share a name,
    and no local user name starts with ``oidc:``."""
    issuer = issuer or ""
    host = urlsplit(issuer).netloc if "://" in issuer else issuer
    return f"{OIDC_NAME_PREFIX}{host.lower().replace('/', '')}/{sub}"


class IdentityProviderUnreachable(AuthError):
    """The identity provider's keys cannot be fetched: not the caller's fault, so not
    counted against its address."""


class TooManyFailedLogins(HTTPException):
    """429 for a client address that failed to authenticate too often in the window."""

    def __init__(self, retry_after_s: float) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(
            429,
            f"too many failed authentications from this address: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


class FailedLogins:
    """Failed authentications per client address in fixed windows (from an address's
    first failure), in memory and bounded to ``max_clients`` addresses."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = MAX_CLIENTS) -> None:
        self.max_failures, self.window_s = int(max_failures), float(window_s)
        self.max_clients = int(max_clients)
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # client: (window start, failures)
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """Seconds until ``client`` may try again; None when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            seen = self._seen.get(client)
        if seen is None or seen[1] < self.max_failures:
            return None
        left = seen[0] + self.window_s - now
        return left if left > 0 else None

    def failed(self, client: str, now: float | None = None) -> int:
        """Count a failure of ``client``: its failures in the current window, this one included."""
        now = time.monotonic() if now is None else now
        with self._lock:
            start, count = self._seen.pop(client, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            self._seen[client] = (start, count + 1)  # the most recent last
            while len(self._seen) > self.max_clients:
                self._seen.popitem(last=False)
            return count + 1


def client_address(request: Request) -> str:
    """The address failures are counted by: the client's IP, an IPv6 one by its /64
    (one host commonly holds a whole /64)."""
    host = request.client.host if request.client else ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class JWTVerifier:
    """Verifies OpenID Connect access tokens against a JWKS (URL or file)."""

    def __init__(
        self,
        jwks: str,
        audience: str | None = None,
        issuer: str | None = None,
        role_claim: str = "eowatch_role",
        org_claim: str = "organisation",
    ) -> None:
        import jwt

        self._jwt = jwt
        self.audience, self.issuer = audience, issuer
        self.role_claim, self.org_claim = role_claim, org_claim
        self._client: Any = None
        self._keyset: Any = None
        if jwks.startswith(("http://", "https://")):
            self._client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300, timeout=10)
        else:
            self._keyset = jwt.PyJWKSet.from_dict(json.loads(Path(jwks).read_text()))

    def _key(self, token: str) -> Any:
        jwt = self._jwt
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token).key
        kid = jwt.get_unverified_header(token).get("kid")
        keys = [k for k in self._keyset.keys if kid is None or k.key_id == kid]
        if not keys:
            raise AuthError("the bearer token is signed by a key the identity provider does not list")
        return keys[0].key

    def verify(self, token: str) -> Principal:
        """The principal named by a valid token; AuthError with the reason otherwise."""
        jwt = self._jwt
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384"],
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("the bearer token has expired; get a new one from the identity provider") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError(
                f"the bearer token is not meant for this service (audience {self.audience!r})"
            ) from exc
        except jwt.PyJWKClientConnectionError as exc:
            raise IdentityProviderUnreachable(f"the bearer token cannot be checked: {exc}") from exc
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"the bearer token cannot be checked: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the bearer token is not valid: {exc}") from exc
        role = str(claims.get(self.role_claim) or "partner")
        if role not in ROLES:
            raise AuthError(f"the bearer token names an unknown role {role!r:.64}")
        sub = str(claims["sub"])
        name = oidc_name(sub, str(claims.get("iss") or self.issuer or ""))
        if not sub or len(name) > MAX_NAME_CHARS:
            raise AuthError(
                f"the bearer token's subject must be 1 to {MAX_NAME_CHARS} characters with the issuer's host"
            )
        return Principal(name, role, str(claims.get(self.org_claim) or ""), via="oidc")


def _credentials(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError("the Authorization header must be 'Bearer <API key or token>'")
        return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key else None


def authenticate(request: Request) -> None:
    """Dependency of every route: resolve the caller into ``request.state.principal``."""
    state = request.app.state
    if "authorization" in request.headers or "x-api-key" in request.headers:
        limiter: FailedLogins = state.failed_logins
        retry_after = limiter.retry_after(client_address(request))
        if retry_after is not None:
            raise TooManyFailedLogins(retry_after)  # the credentials are not even looked at
    try:
        token = _credentials(request)
    except AuthError as exc:
        _log_failure(request, request.headers.get("authorization", ""), exc)
        raise
    if token is None and SIGNATURE_PARAM in request.query_params:
        _signed_url(request)
        return
    if token is None:
        path = request.url.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if state.settings.auth_required and not public:
            raise AuthError("authentication required: send 'Authorization: Bearer <key>' or 'X-API-Key'")
        request.state.principal = ANONYMOUS
        return
    access: AccessStore = state.access
    try:
        if token.count(".") == 2 and token.startswith("eyJ"):
            verifier: JWTVerifier | None = getattr(state, "jwt_verifier", None)
            if verifier is None:
                raise AuthError("bearer tokens are not accepted: no identity provider is configured")
            who = verifier.verify(token)
        else:
            who = access.authenticate(token)
    except AuthError as exc:
        _log_failure(request, token, exc)
        raise
    request.state.principal = who
    login_audit = getattr(state, "login_audit", None)  # eowatch.api.audit.LoginAudit
    if login_audit is not None:
        login_audit.succeeded(request, who)


def _signed_url(request: Request) -> None:
    """The caller of a signed tile URL (``eowatch.api.signing``): its signer."""
    state = request.app.state
    signature = request.query_params[SIGNATURE_PARAM]
    limiter: FailedLogins = state.failed_logins
    retry_after = limiter.retry_after(client_address(request))
    if retry_after is not None:
        raise TooManyFailedLogins(retry_after)
    path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    try:
        request.state.principal = state.tile_signer.verify(signature, path, state.access)
    except AuthError as exc:
        _log_failure(request, signature, exc)
        raise


def _log_failure(request: Request, token: str, exc: AuthError) -> None:
    """Count the failure against the client address, and audit it (``LoginAudit``)."""
    limiter: FailedLogins = request.app.state.failed_logins
    if isinstance(exc, IdentityProviderUnreachable):
        failures = 0  # the service's trouble, not the caller's
    else:
        failures = limiter.failed(client_address(request))
    login_audit = getattr(request.app.state, "login_audit", None)  # eowatch.api.audit.LoginAudit
    if login_audit is not None:
        login_audit.failed(request, token, exc, window_s=limiter.window_s)
        if failures == limiter.max_failures:
            login_audit.blocked(request, failures, limiter.window_s)


def principal(request: Request) -> Principal:
    """The caller of this request."""
    who: Principal = getattr(request.state, "principal", ANONYMOUS)
    return who


def visible_collections(request: Request) -> frozenset[str] | None:
    """The collections the caller may read (None: all), read fresh on each
    request so a revoked grant takes effect at once."""
    access: AccessStore = request.app.state.access
    return access.visible_collections(principal(request))


def require_role(request: Request, *roles: str) -> Principal:
    """The caller, when its role is one of ``roles``; ForbiddenError otherwise."""
    who = principal(request)
    if who.role not in roles:
        raise ForbiddenError(f"the {who.role} role may not do this (needs {' or '.join(roles)})")
    return who


def make_verifier(settings: Settings) -> JWTVerifier | None:
    """The JWT verifier configured by ``settings.oidc_jwks_url``, if any."""
    jwks = settings.oidc_jwks_url
    if not jwks:
        return None
    return JWTVerifier(
        str(jwks),
        audience=settings.oidc_audience,
        issuer=settings.oidc_issuer,
        role_claim=settings.oidc_role_claim,
        org_claim=settings.oidc_org_claim,
    )
