"""The results catalogue as a STAC API (core, collections, OGC API - Features,
item search). Route bodies are thin: the catalogue answers, this module only
adds links, absolute asset URLs and media types."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from ..errors import InputError
from ..ids import check_id
from ..results import STAC_VERSION, ResultsCatalog, SearchResult
from .auth import principal, visible_collections

__all__ = ["router", "CONFORMANCE"]

CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/collections",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
    "https://api.stacspec.org/v1.0.0/item-search",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
DEFAULT_LIMIT = 10

router = APIRouter()


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


def _catalog(request: Request) -> ResultsCatalog:
    catalog: ResultsCatalog = request.app.state.catalog
    return catalog


def _conformance(request: Request) -> list[str]:
    """This API's conformance classes plus those other routers of the app add."""
    return [*CONFORMANCE, *getattr(request.app.state, "extra_conformance", [])]


def _base(request: Request) -> str:
    configured = request.app.state.base_url
    return str(configured or request.base_url).rstrip("/")


def _link(rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "href": href, **extra}


def _q(value: str) -> str:
    return quote(value, safe="")


# -- decoration of catalogue answers ------------------------------------------------------


def _collection(base: str, coll: dict[str, Any]) -> dict[str, Any]:
    url = f"{base}/collections/{_q(coll['id'])}"
    return {
        **coll,
        "links": [
            _link("self", url),
            _link("root", f"{base}/"),
            _link("parent", f"{base}/"),
            _link("items", f"{url}/items", GEOJSON),
        ],
    }


def _item(base: str, item: dict[str, Any]) -> dict[str, Any]:
    coll_url = f"{base}/collections/{_q(item['collection'])}"
    url = f"{coll_url}/items/{_q(item['id'])}"
    assets = {}
    for key, asset in item["assets"].items():
        href = str(asset.get("href", ""))
        assets[key] = {**asset, "href": href if "://" in href else f"{url}/assets/{_q(key)}"}
    # keep only links that mean something outside this server's file system
    kept = [link for link in item["links"] if str(link.get("href", "")).startswith(("http://", "https://"))]
    links = [
        _link("self", url, GEOJSON),
        _link("root", f"{base}/"),
        _link("parent", coll_url),
        _link("collection", coll_url),
        *kept,
    ]
    return {**item, "assets": assets, "links": links}


def _feature_collection(
    base: str, result: SearchResult, self_link: dict[str, Any], next_link: dict[str, Any] | None
) -> dict[str, Any]:
    links = [self_link, _link("root", f"{base}/")]
    if next_link:
        links.append(next_link)
    return {
        "type": "FeatureCollection",
        "features": [_item(base, item) for item in result.items],
        "links": links,
        "numberMatched": result.matched,
        "numberReturned": len(result.items),
    }


def _get_url(base: str, path: str, params: dict[str, Any]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{base}{path}" + (f"?{query}" if query else "")


# -- parameter parsing (400 with a message, never a bare 422) ---------------------------


def _limit(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"limit must be a whole number, not {value!r}") from exc
    if isinstance(value, float | bool) or limit < 1:
        raise InputError(f"limit must be a whole number from 1, not {value!r}")
    return min(limit, 10_000)


def _ids(value: Any, kind: str) -> list[str] | None:
    """``a,b`` (query) or ``["a", "b"]`` (body) as a list of ids (``check_id``)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list):
        raise InputError(f"a filter by {kind} must be a list of ids")
    return [check_id(kind, v) for v in value]


def _search_args(params: dict[str, Any], from_body: bool) -> dict[str, Any]:
    unknown = set(params) - {"bbox", "intersects", "datetime", "ids", "collections", "limit", "token"}
    if from_body and unknown:
        raise InputError(f"unsupported search fields: {', '.join(sorted(unknown))}")
    bbox = params.get("bbox")
    if from_body and bbox is not None and not isinstance(bbox, list):
        raise InputError("bbox must be an array of 4 or 6 numbers")
    intersects = params.get("intersects")
    if isinstance(intersects, str):
        try:
            intersects = json.loads(intersects)
        except json.JSONDecodeError as exc:
            raise InputError(f"intersects is not GeoJSON: {exc}") from exc
    if intersects is not None and not isinstance(intersects, dict):
        raise InputError("intersects must be a GeoJSON geometry object")
    when = params.get("datetime")
    if when is not None and not isinstance(when, str):
        raise InputError("datetime must be a string: an instant or 'start/end'")
    token = params.get("token")
    return {
        "bbox": bbox if bbox not in (None, "") else None,
        "intersects": intersects,
        "datetime": when,
        "ids": _ids(params.get("ids"), "item id"),
        "collections": _ids(params.get("collections"), "collection id"),
        "limit": _limit(params.get("limit")),
        "token": str(token) if token else None,
    }


# -- routes ------------------------------------------------------------------------------


@router.get("/", response_class=JSONResponse)
def landing(request: Request) -> dict[str, Any]:
    """The landing page: a STAC Catalog with links to everything else."""
    base = _base(request)
    children = [
        _link("child", f"{base}/collections/{_q(c['id'])}", title=c.get("title"))
        for c in _catalog(request).list_collections(visible_collections(request))
    ]
    extra = [
        _link(rel, f"{base}{path}", title=title)
        for rel, path, title in getattr(request.app.state, "extra_landing_links", [])
    ]
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "eowatch",
        "title": "eowatch results",
        "description": "Change maps, change polygons and quicklooks of eowatch runs.",
        "conformsTo": _conformance(request),
        "links": [
            _link("self", f"{base}/"),
            _link("root", f"{base}/"),
            _link("conformance", f"{base}/conformance"),
            _link("data", f"{base}/collections"),
            _link("search", f"{base}/search", GEOJSON, method="GET"),
            _link("search", f"{base}/search", GEOJSON, method="POST"),
            _link("service-desc", f"{base}/openapi.json", OPENAPI),
            _link("service-doc", f"{base}/docs", "text/html"),
            *extra,
            *children,
        ],
    }


class OpenAPIResponse(JSONResponse):
    media_type = OPENAPI


@router.get("/openapi.json", response_class=OpenAPIResponse, include_in_schema=False)
def openapi(request: Request) -> OpenAPIResponse:
    """The OpenAPI description of this service."""
    return OpenAPIResponse(request.app.openapi())


@router.get("/docs", response_class=HTMLResponse, include_in_schema=False)
def docs(request: Request) -> HTMLResponse:
    """Interactive documentation of the API."""
    return get_swagger_ui_html(openapi_url=f"{_base(request)}/openapi.json", title="eowatch API")


@router.get("/conformance")
def conformance(request: Request) -> dict[str, Any]:
    """The conformance classes this API implements."""
    return {"conformsTo": _conformance(request)}


@router.get("/collections")
def collections(request: Request) -> dict[str, Any]:
    """Every collection of the results catalogue."""
    base = _base(request)
    return {
        "collections": [
            _collection(base, c) for c in _catalog(request).list_collections(visible_collections(request))
        ],
        "links": [_link("self", f"{base}/collections"), _link("root", f"{base}/")],
    }


@router.get("/collections/{collection_id}")
def collection(request: Request, collection_id: str) -> dict[str, Any]:
    """One collection."""
    visible = visible_collections(request)
    return _collection(_base(request), _catalog(request).get_collection(collection_id, visible))


@router.get("/collections/{collection_id}/items", response_class=GeoJSONResponse)
def items(request: Request, collection_id: str) -> GeoJSONResponse:
    """The Items of a collection (bbox, datetime, limit and paging)."""
    base = _base(request)
    visible = visible_collections(request)
    _catalog(request).get_collection(collection_id, visible)  # 404 before any parameter error
    params = dict(request.query_params)
    args = _search_args({k: params.get(k) for k in ("bbox", "datetime", "limit", "token")}, False)
    result = _catalog(request).search(**{**args, "collections": [collection_id]}, visible=visible)
    path = f"/collections/{_q(collection_id)}/items"
    self_link = _link("self", _get_url(base, path, params), GEOJSON)
    next_link = None
    if result.next_token:
        next_link = _link("next", _get_url(base, path, {**params, "token": result.next_token}), GEOJSON)
    body = _feature_collection(base, result, self_link, next_link)
    body["links"].append(_link("collection", f"{base}/collections/{_q(collection_id)}"))
    return GeoJSONResponse(body)


@router.get("/collections/{collection_id}/items/{item_id}", response_class=GeoJSONResponse)
def item(request: Request, collection_id: str, item_id: str) -> GeoJSONResponse:
    """One Item, with absolute asset URLs."""
    visible = visible_collections(request)
    return GeoJSONResponse(_item(_base(request), _catalog(request).get_item(collection_id, item_id, visible)))


@router.get("/collections/{collection_id}/items/{item_id}/assets/{asset_key}")
def asset(request: Request, collection_id: str, item_id: str, asset_key: str) -> FileResponse:
    """The file of one asset of an Item, with the asset's media type."""
    path, media_type = _catalog(request).asset_file(
        collection_id, item_id, asset_key, visible_collections(request)
    )
    request.app.state.access.audit(
        principal(request).name, "download", f"{collection_id}/{item_id}/{asset_key}"
    )
    return FileResponse(path, media_type=media_type or "application/octet-stream", filename=path.name)


@router.get("/search", response_class=GeoJSONResponse)
def search_get(request: Request) -> GeoJSONResponse:
    """Item search by query parameters."""
    base = _base(request)
    params = dict(request.query_params)
    result = _catalog(request).search(**_search_args(params, False), visible=visible_collections(request))
    self_link = _link("self", _get_url(base, "/search", params), GEOJSON)
    next_link = None
    if result.next_token:
        next_link = _link(
            "next", _get_url(base, "/search", {**params, "token": result.next_token}), GEOJSON, method="GET"
        )
    return GeoJSONResponse(_feature_collection(base, result, self_link, next_link))


@router.post("/search", response_class=GeoJSONResponse)
async def search_post(request: Request) -> GeoJSONResponse:
    """Item search by a JSON body; the next page is a POST with the token in the body."""
    base = _base(request)
    try:
        body = await request.json()
    except ValueError as exc:
        raise InputError(f"the search body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InputError("the search body must be a JSON object")
    result = _catalog(request).search(**_search_args(body, True), visible=visible_collections(request))
    self_link = _link("self", f"{base}/search", GEOJSON)
    next_link = None
    if result.next_token:
        next_link = _link(
            "next",
            f"{base}/search",
            GEOJSON,
            method="POST",
            body={**body, "token": result.next_token},
            merge=False,
        )
    return GeoJSONResponse(_feature_collection(base, result, self_link, next_link))
