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
``organisation``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request

from ..errors import AuthError, ForbiddenError
from ..settings import Settings
from ..store.auth import ROLES, AccessStore, Principal

__all__ = [
    "ANONYMOUS",
    "PUBLIC_PATHS",
    "JWTVerifier",
    "authenticate",
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
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"the bearer token cannot be checked: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"the bearer token is not valid: {exc}") from exc
        role = str(claims.get(self.role_claim) or "partner")
        if role not in ROLES:
            raise AuthError(f"the bearer token names an unknown role {role!r}")
        return Principal(str(claims["sub"]), role, str(claims.get(self.org_claim) or ""), via="oidc")


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
    try:
        token = _credentials(request)
    except AuthError as exc:
        _log_failure(request, "", exc)
        raise
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


def _log_failure(request: Request, token: str, exc: AuthError) -> None:
    login_audit = getattr(request.app.state, "login_audit", None)
    if login_audit is not None:
        login_audit.failed(request, token, exc)


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
