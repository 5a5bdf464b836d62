"""Analyst feedback over HTTP: verdicts on the change polygons of an Item
(``eowatch.results.feedback``). A polygon is its feature ``id`` in the Item's
``changes.geojson``.

``POST /collections/{c}/items/{i}/polygons/{p}/feedback`` gives (or replaces) the
caller's verdict; ``GET`` on the same path lists the polygon's verdicts, ``GET
/collections/{c}/items/{i}/feedback`` the Item's, each with whether the caller may
give verdicts (``writable``) and the Item's change classes (``classes``). An Item the
caller cannot see answers 404 exactly like a missing one.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from ..results.feedback import Feedback, class_table, parse_since
from ..results.report import confirmed_report
from ..store.feedback import MAX_NOTE_CHARS, Verdict
from .auth import principal, visible_collections

__all__ = ["router", "MAX_POLYGON_ID"]

#: The largest polygon id a path may name (the database's 32-bit integer column).
MAX_POLYGON_ID = 2**31 - 1

router = APIRouter(tags=["feedback"])
PolygonId = Annotated[
    int, Path(ge=1, le=MAX_POLYGON_ID, description="The polygon's feature id in changes.geojson.")
]


class VerdictIn(BaseModel):
    """A verdict on a change polygon."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    verdict: Literal["confirmed", "false_alarm", "wrong_class"] = Field(
        description="confirmed: a real change of this class; false_alarm: no change; "
        "wrong_class: a change of another class."
    )
    corrected_class: StrictInt | StrictStr | None = Field(
        None,
        alias="class",
        description="With wrong_class only (optional): the right class, by value or name, one of "
        "the Item's change classes.",
    )
    note: StrictStr = Field("", max_length=MAX_NOTE_CHARS, description="A free note.")


class VerdictOut(BaseModel):
    """A stored verdict."""

    collection: str
    item: str
    polygon: int
    verdict: str
    corrected_class: int | None = Field(alias="class")
    class_name: str | None
    polygon_class: int | None
    polygon_class_name: str | None
    note: str
    author: str
    created: str
    updated: str
    replaced: str | None = Field(None, description="The verdict of this author it replaced (POST only).")


class ChangeClass(BaseModel):
    value: int
    name: str


class VerdictList(BaseModel):
    """The verdicts on an Item or one of its polygons."""

    collection: str
    item: str
    polygon: int | None = None
    writable: bool = Field(description="Whether the caller may give verdicts here.")
    classes: list[ChangeClass]
    verdicts: list[VerdictOut]
    links: list[dict[str, Any]]


def _feedback(request: Request) -> Feedback:
    feedback: Feedback = request.app.state.feedback
    return feedback


def _document(v: Verdict, replaced: Verdict | None = None) -> dict[str, Any]:
    times = v.as_dict()
    return {
        "collection": v.collection_id,
        "item": v.item_id,
        "polygon": v.polygon_id,
        "verdict": v.verdict,
        "class": v.corrected_class,
        "class_name": v.corrected_class_name,
        "polygon_class": v.polygon_class,
        "polygon_class_name": v.polygon_class_name,
        "note": v.note,
        "author": v.author,
        "created": times["created_at"],
        "updated": times["updated_at"],
        "replaced": replaced.verdict if replaced else None,
    }


def _listing(
    request: Request, item: dict[str, Any], verdicts: list[Verdict], polygon_id: int | None = None
) -> dict[str, Any]:
    collection_id, item_id = item["collection"], item["id"]
    base = str(request.app.state.base_url or request.base_url).rstrip("/")
    item_url = f"{base}/collections/{quote(collection_id, safe='')}/items/{quote(item_id, safe='')}"
    return {
        "collection": collection_id,
        "item": item_id,
        "polygon": polygon_id,
        "writable": _feedback(request).may_write(principal(request), collection_id),
        "classes": [{"value": c.value, "name": c.name} for c in class_table(item)],
        "verdicts": [_document(v) for v in verdicts],
        "links": [
            {"rel": "item", "href": item_url, "type": "application/geo+json"},
            {"rel": "polygons", "href": f"{item_url}/assets/polygons", "type": "application/geo+json"},
        ],
    }


@router.post(
    "/collections/{collection_id}/items/{item_id}/polygons/{polygon_id}/feedback",
    status_code=201,
    response_model=VerdictOut,
)
def give_verdict(
    request: Request, collection_id: str, item_id: str, polygon_id: PolygonId, body: VerdictIn
) -> dict[str, Any]:
    """Give the caller's verdict on a change polygon (replacing its earlier one); audited."""
    stored, replaced = _feedback(request).judge(
        principal(request), collection_id, item_id, polygon_id, body.verdict, body.corrected_class, body.note
    )
    return _document(stored, replaced)


@router.get(
    "/collections/{collection_id}/items/{item_id}/polygons/{polygon_id}/feedback",
    response_model=VerdictList,
)
def polygon_verdicts(
    request: Request, collection_id: str, item_id: str, polygon_id: PolygonId
) -> dict[str, Any]:
    """Every verdict on one change polygon of an Item."""
    item, found = _feedback(request).verdicts(principal(request), collection_id, item_id, polygon_id)
    return _listing(request, item, found, polygon_id)


@router.get("/collections/{collection_id}/items/{item_id}/feedback", response_model=VerdictList)
def item_verdicts(request: Request, collection_id: str, item_id: str) -> dict[str, Any]:
    """Every verdict on the change polygons of an Item."""
    item, found = _feedback(request).verdicts(principal(request), collection_id, item_id)
    return _listing(request, item, found)


@router.get(
    "/feedback/report.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}}},
)
def confirmed_changes_report(
    request: Request,
    collection: Annotated[str | None, Query(description="Only this collection's confirmed changes.")] = None,
    since: Annotated[str | None, Query(description="Only verdicts given or changed from then.")] = None,
) -> Response:
    """The confirmed changes the caller may see as a zip: GeoJSON, KML and GeoPackage,
    and before/after image chips of each (``eowatch.results.report``)."""
    body = confirmed_report(_feedback(request), visible_collections(request), collection, parse_since(since))
    name = f"eowatch-confirmed-{collection or 'all'}.zip"
    disposition = f'attachment; filename="{name}"'
    return Response(body, media_type="application/zip", headers={"Content-Disposition": disposition})
