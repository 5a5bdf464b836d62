"""Signed tile URLs: tile URLs that carry their own short-lived credential, for the
clients that cannot send an ``Authorization`` header (QGIS, a stock Leaflet or
OpenLayers XYZ layer, GDAL's WMS/XYZ driver).

The query parameter ``sig`` is ``<payload>.<mac>``: the payload is base64url JSON of
the scope (the path prefix ``/collections/{c}/items/{i}/tiles/{asset}/``), the signer's
name, role and organisation and the expiry (Unix seconds); the mac is its HMAC-SHA256
under the server's ``tile_signing_key``. A signed URL is refused (401) when forged or
expired, and outside its scope (403). Within its life it acts as the signer, whose
grants are read afresh on every tile like those of any caller, so a revoked grant
stops the tiles at the next request (clients may show cached tiles for
``tile_cache_s`` more); a local user who was removed, or whose role or organisation
changed, is checked on every tile too. A revoked API key does not revoke the URLs
signed with it before: they expire with ``tile_url_ttl_s``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ..errors import AuthError, ForbiddenError, NotFoundError
from ..store.auth import OIDC_NAME_PREFIX, AccessStore, Principal

__all__ = ["TileSigner", "SignedUrl", "tile_scope", "SIGNATURE_PARAM"]

#: The query parameter that holds a signature.
SIGNATURE_PARAM = "sig"


def tile_scope(collection_id: str, item_id: str, asset_key: str) -> str:
    """The path prefix a signature for one raster asset's tiles covers (quoted as in URLs)."""
    parts = (quote(collection_id, safe=""), quote(item_id, safe=""), quote(asset_key, safe=""))
    return "/collections/{}/items/{}/tiles/{}/".format(*parts)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _body(payload: str) -> tuple[Any, ...] | None:
    """Scope, name, role, organisation, via and expiry of a payload (None: unreadable)."""
    try:
        body = json.loads(_unb64(payload))
        return tuple(body[k] for k in "snrov") + (int(body["e"]),)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


@dataclass(frozen=True)
class SignedUrl:
    """A signature (the ``sig`` query value) and when it expires (Unix seconds)."""

    signature: str
    expires: int


class TileSigner:
    """Signs and verifies tile URLs with one secret (``key``; drawn at random when None:
    then only this process accepts its signatures)."""

    def __init__(self, key: str | None, ttl_s: int) -> None:
        self._key = (key or secrets.token_urlsafe(32)).encode()
        self.ttl_s = ttl_s

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def sign(self, who: Principal, scope: str, now: float | None = None) -> SignedUrl:
        """A signature acting as ``who`` on the paths under ``scope`` for ``ttl_s``."""
        expires = int(now if now is not None else time.time()) + self.ttl_s
        body = {"s": scope, "n": who.name, "r": who.role, "o": who.organisation, "v": who.via, "e": expires}
        payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
        return SignedUrl(f"{payload}.{self._mac(payload)}", expires)

    def verify(self, signature: str, path: str, access: AccessStore, now: float | None = None) -> Principal:
        """The principal a signature acts as on ``path`` (the request's, percent-encoded)."""
        payload, _, mac = signature.partition(".")
        if not payload or not mac or not hmac.compare_digest(mac, self._mac(payload)):
            raise AuthError("the tile URL's signature is not valid; fetch the layer's TileJSON again")
        body = _body(payload)
        if body is None:  # signed here, by another version
            raise AuthError("the tile URL's signature cannot be read; fetch the TileJSON again")
        scope, name, role, org, via, expires = body
        remaining = int(expires) - (now if now is not None else time.time())
        if remaining <= 0:
            raise AuthError(
                f"the signed tile URL expired {-remaining:.0f} s ago; fetch the layer's TileJSON again"
            )
        if not path.startswith(scope):
            raise ForbiddenError("this signed URL is for the tiles of another layer")
        who = Principal(str(name), str(role), str(org), via="signed-url")
        if via == "api-key" and not str(name).startswith(OIDC_NAME_PREFIX):
            who = self._current(access, who)
        return who

    @staticmethod
    def _current(access: AccessStore, signed: Principal) -> Principal:
        """The local user as it is now: refused when removed or changed since signing."""
        try:
            now = access.get_user(signed.name)
        except NotFoundError as exc:
            raise AuthError(f"user {signed.name!r} of this signed URL no longer exists") from exc
        if (now.role, now.organisation) != (signed.role, signed.organisation):
            raise AuthError(f"user {signed.name!r} changed since this URL was signed; get a new TileJSON")
        return Principal(now.name, now.role, now.organisation, via="signed-url")

    def remaining_s(self, signature: str, now: float | None = None) -> int:
        """Seconds a verified signature has left (0 when unreadable)."""
        body = _body(signature.partition(".")[0])
        if body is None:
            return 0
        return max(0, int(body[-1]) - int(now if now is not None else time.time()))
