"""A discovery provider for any STAC API, on top of ``pystac-client``.

Transient failures (timeouts, connection resets, HTTP 429 and 5xx) are retried
with exponential back-off by urllib3's ``Retry`` mounted on the requests
session that ``pystac_client.StacApiIO`` uses; when the retries are spent a
``ProviderError`` names the provider, the URL and the cause. Items the server
returns are parsed one by one: a malformed item is skipped and counted, never
fatal. Every filter is also applied on this side (``providers.rejection``), so
a server that ignores one (or lacks the CQL2 filter extension) changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import pystac
from shapely.geometry import mapping

from ..errors import InputError, ProviderError
from ..io.remote import make_retry
from ..settings import Settings, default
from .providers import Record, SearchQuery, SearchResults, record_from_item, register_provider, rejection

__all__ = ["StacApiProvider", "from_url"]

log = logging.getLogger(__name__)
ItemHook = Callable[[dict[str, Any]], dict[str, Any]]


def _cause(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 600 else text[:600] + "..."


class StacApiProvider:
    """Search a STAC API. ``collections`` maps a sensor to the collections
    searched when the query names none; ``item_hook`` may rewrite each item
    dict before it is parsed (asset signing)."""

    def __init__(
        self,
        name: str,
        url: str,
        collections: Mapping[str, Sequence[str]] | None = None,
        *,
        timeout_s: float = default("http_timeout_s"),
        retries: int = default("http_retries"),
        backoff_s: float = default("http_backoff_s"),
        page_size: int = default("stac_page_size"),
        max_pages: int = default("stac_max_pages"),
        headers: Mapping[str, str] | None = None,
        item_hook: ItemHook | None = None,
        server_filters: bool = True,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/")
        self.collections = {k: tuple(v) for k, v in (collections or {}).items()}
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.page_size = page_size
        self.max_pages = max_pages
        self.headers = dict(headers or {})
        self.item_hook = item_hook
        self.server_filters = server_filters

    @classmethod
    def from_settings(
        cls,
        name: str,
        url: str,
        settings: Settings,
        collections: Mapping[str, Sequence[str]] | None = None,
        **kw: Any,
    ) -> StacApiProvider:
        """Build with the HTTP settings of ``settings``."""
        return cls(
            name, url, collections, timeout_s=settings.http_timeout_s, retries=settings.http_retries,
            backoff_s=settings.http_backoff_s, page_size=settings.stac_page_size,
            max_pages=settings.stac_max_pages, **kw,
        )  # fmt: skip

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, url={self.url!r})"

    # -- searching -------------------------------------------------------------

    def collections_for(self, query: SearchQuery) -> tuple[str, ...]:
        if query.collections:
            return query.collections
        if query.sensor in self.collections:
            return self.collections[query.sensor]
        raise InputError(
            f"provider {self.name!r} has no default collection for {query.sensor}; name one with --collection"
        )

    def open(self) -> Any:
        """The ``pystac_client.Client`` of the landing page (retries included)."""
        from pystac_client import Client
        from pystac_client.stac_api_io import StacApiIO

        io = StacApiIO(
            headers=self.headers, timeout=self.timeout_s, max_retries=make_retry(self.retries, self.backoff_s)
        )
        try:
            return Client.open(self.url, stac_io=io, timeout=self.timeout_s)
        except Exception as exc:  # APIError, JSON and STAC errors: all mean "cannot use this API"
            raise self._error("cannot open the STAC API landing page", exc) from exc

    def _error(self, what: str, exc: BaseException) -> ProviderError:
        return ProviderError(
            f"discovery provider {self.name!r} ({self.url}): {what}: {_cause(exc)}. "
            f"Gave up after {self.retries} retries; check the network and the provider URL, or try later."
        )

    def search_parameters(self, query: SearchQuery, client: Any) -> dict[str, Any]:
        """Keyword arguments of ``Client.search`` for ``query``."""
        from pystac_client import ConformanceClasses

        params: dict[str, Any] = {
            "collections": list(self.collections_for(query)),
            "intersects": mapping(query.aoi),
            "datetime": query.datetime_range,
            "limit": min(self.page_size, max(query.limit, 1)),
        }
        clauses: list[dict[str, Any]] = []
        if query.relative_orbit is not None:
            clauses.append({"op": "=", "args": [{"property": "sat:relative_orbit"}, query.relative_orbit]})
        if query.orbit_state is not None:
            clauses.append({"op": "=", "args": [{"property": "sat:orbit_state"}, query.orbit_state]})
        if clauses and self.server_filters and client.conforms_to(ConformanceClasses.FILTER):
            params["filter"] = clauses[0] if len(clauses) == 1 else {"op": "and", "args": clauses}
            params["filter_lang"] = "cql2-json"
        return params

    def search(self, query: SearchQuery) -> SearchResults:
        """Records matching ``query``, newest first, at most ``query.limit``."""
        client = self.open()
        params = self.search_parameters(query, client)
        wanted = replace(query, collections=tuple(params["collections"]))
        try:
            search = client.search(**params)
            pages = search.pages_as_dicts()
        except Exception as exc:
            raise self._error("the search request was refused", exc) from exc
        results = SearchResults(provider=self.name)
        seen: set[str] = set()
        while len(results) < query.limit:
            if results.pages >= self.max_pages:
                results.notes.append(f"stopped after {self.max_pages} pages (setting stac_max_pages)")
                break
            try:
                page = next(pages)
            except StopIteration:
                break
            except json.JSONDecodeError as exc:
                raise self._error("the search answered with something that is not JSON", exc) from exc
            except Exception as exc:
                raise self._error("the search failed", exc) from exc
            results.pages += 1
            features = page.get("features") if isinstance(page, dict) else None
            if not isinstance(features, list):
                raise self._error("malformed search response", ValueError("no 'features' list in the page"))
            for feature in features:
                record = self._record(feature, results)
                if record is None or record.id in seen or rejection(wanted, record) is not None:
                    continue
                seen.add(record.id)
                results.append(record)
                if len(results) >= query.limit:
                    break
        if results.skipped:
            log.warning("%s: skipped %d malformed item(s): %s", self.name, results.skipped, results.notes[:3])
        results.sort(key=lambda r: r.datetime, reverse=True)
        return results

    def _record(self, feature: Any, results: SearchResults) -> Record | None:
        """Parse one item; a malformed one is counted in ``results`` and skipped."""
        ident = feature.get("id", "?") if isinstance(feature, dict) else "?"
        try:
            if not isinstance(feature, dict):
                raise InputError(f"item is a {type(feature).__name__}, not a JSON object")
            if self.item_hook is not None:
                feature = self.item_hook(feature)
            item = pystac.Item.from_dict(feature, preserve_dict=True, migrate=False)
            return record_from_item(item, self.name, href=item.get_self_href() or "")
        except ProviderError:
            raise
        except Exception as exc:  # pystac raises KeyError/TypeError/ValueError/STACError on bad items
            results.skipped += 1
            results.notes.append(f"skipped item {ident}: {type(exc).__name__}: {_cause(exc)}")
            return None


def from_url(url: str, settings: Settings, name: str | None = None) -> StacApiProvider:
    """A provider for any STAC API URL, searching the settings' collection names."""
    collections = {
        "sentinel-2": tuple(settings.stac_api_s2_collections),
        "sentinel-1": tuple(settings.stac_api_s1_collections),
    }
    return StacApiProvider.from_settings(name or url, url, settings, collections)


def _generic(settings: Settings) -> StacApiProvider:
    url = settings.stac_api_url
    if not url:
        raise InputError(
            "provider 'stac-api' needs a URL: set EOWATCH_STAC_API_URL, or give the URL as the provider name"
        )
    return from_url(str(url), settings, "stac-api")


register_provider("stac-api", _generic)
