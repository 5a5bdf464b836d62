"""Microsoft Planetary Computer: its STAC API plus asset signing.

PC blobs are readable with a short-lived SAS token that the token service
hands out per collection (``GET {token_url}/{collection}`` answers
``{"token": "...", "msft:expiry": "..."}``); the token is appended as the
query string of every ``*.blob.core.windows.net`` asset href. Tokens are cached
until shortly before they expire. The token service URL is a setting
(``pc_token_url``) so tests point it at a local server.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from ..errors import ProviderError
from ..io.remote import make_session
from ..settings import Settings
from .providers import parse_time, register_provider
from .stac_api import StacApiProvider

__all__ = ["PC_STAC_URL", "PC_TOKEN_URL", "PC_COLLECTIONS", "PCSigner", "planetary_computer"]

PC_STAC_URL = "https://planetarycomputer.microsoft.com/api/stac/v1"
PC_TOKEN_URL = "https://planetarycomputer.microsoft.com/api/sas/v1/token"
#: ``sentinel-1-rtc`` is radiometrically terrain corrected gamma0 in linear power.
PC_COLLECTIONS = {"sentinel-2": ("sentinel-2-l2a",), "sentinel-1": ("sentinel-1-rtc",)}
_BLOB_SUFFIX = ".blob.core.windows.net"
_MARGIN = timedelta(minutes=5)


class PCSigner:
    """Signs the blob hrefs of an item dict with the collection's SAS token."""

    def __init__(self, token_url: str = PC_TOKEN_URL, *, timeout_s: float = 30.0, retries: int = 3,
                 backoff_s: float = 0.5, subscription_key: str | None = None) -> None:  # fmt: skip
        self.token_url = token_url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        headers = {"Ocp-Apim-Subscription-Key": subscription_key} if subscription_key else {}
        self.session = make_session(retries, backoff_s, headers)
        self._tokens: dict[str, tuple[str, datetime]] = {}
        self._lock = threading.Lock()
        self.requests = 0  # token requests made (cache misses)

    def token(self, collection: str) -> str:
        """The SAS token for ``collection`` (cached until 5 minutes before expiry)."""
        now = datetime.now(UTC)
        with self._lock:
            cached = self._tokens.get(collection)
            if cached and cached[1] - _MARGIN > now:
                return cached[0]
            url = f"{self.token_url}/{collection}"
            self.requests += 1
            try:
                resp = self.session.get(url, timeout=self.timeout_s)
                resp.raise_for_status()
                body = resp.json()
                token = str(body["token"]).lstrip("?")
                expiry = parse_time(body.get("msft:expiry") or (now + timedelta(minutes=45)).isoformat())
            except Exception as exc:
                raise ProviderError(
                    f"discovery provider 'planetary-computer': cannot get a SAS token for {collection!r} "
                    f"from {url}: {exc}. Check the network or the setting pc_token_url; "
                    "a subscription key (pc_subscription_key) raises the rate limits."
                ) from exc
            self._tokens[collection] = (token, expiry)
            return token

    def sign_href(self, href: str, collection: str) -> str:
        """``href`` with the token appended when it is an unsigned PC blob URL."""
        parsed = urlparse(href)
        if not parsed.netloc.endswith(_BLOB_SUFFIX) or "sig=" in parsed.query:
            return href
        token = self.token(collection)
        return f"{href}{'&' if parsed.query else '?'}{token}"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        collection = str(item.get("collection") or "")
        if not collection:
            return item
        signed = dict(item)
        signed["assets"] = {
            key: ({**asset, "href": self.sign_href(asset["href"], collection)}
                  if isinstance(asset, dict) and isinstance(asset.get("href"), str) else asset)
            for key, asset in (item.get("assets") or {}).items()
        }  # fmt: skip
        return signed


def planetary_computer(settings: Settings) -> StacApiProvider:
    """Planetary Computer with signed asset hrefs (``pc_stac_url``, ``pc_token_url``,
    ``pc_subscription_key`` settings override the defaults)."""
    url = settings.pc_stac_url or PC_STAC_URL
    key = settings.pc_subscription_key
    signer = PCSigner(
        settings.pc_token_url or PC_TOKEN_URL,
        timeout_s=settings.http_timeout_s,
        retries=settings.http_retries,
        backoff_s=settings.http_backoff_s,
        subscription_key=key,
    )
    headers = {"Ocp-Apim-Subscription-Key": key} if key else None
    return StacApiProvider.from_settings(
        "planetary-computer", url, settings, PC_COLLECTIONS, item_hook=signer, headers=headers
    )


register_provider("planetary-computer", planetary_computer)
register_provider("pc", planetary_computer)
