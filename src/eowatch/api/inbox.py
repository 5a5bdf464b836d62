"""The alert inbox over HTTP (``eowatch.results.inbox``): ``GET /inbox`` lists the
change polygons of the results new to the caller, most confident and largest first,
in the collections the caller may read; ``POST /inbox/seen`` marks them seen."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request

from ..results.feedback import parse_since
from ..results.inbox import MAX_ALERTS, Inbox, InboxQuery
from ..store.db import rfc3339
from .auth import principal, visible_collections

__all__ = ["router"]

router = APIRouter(tags=["inbox"])


def _inbox(request: Request) -> Inbox:
    inbox: Inbox = request.app.state.inbox
    return inbox


def _names(values: list[str] | None) -> frozenset[str] | None:
    names = {v.strip() for value in values or [] for v in value.split(",") if v.strip()}
    return frozenset(names) or None


_Text = str | None
_Names = list[str] | None


@router.get("/inbox")
def inbox(
    request: Request,
    since: Annotated[_Text, Query(description="Catalogued after this (default: the caller's mark).")] = None,
    class_name: Annotated[_Names, Query(alias="class", description="Class names (repeat or a,b).")] = None,
    collection: Annotated[_Names, Query(description="Collections (a task's: task-<name>).")] = None,
    start: Annotated[_Text, Query(description="Acquired (after date) on or after this.")] = None,
    end: Annotated[_Text, Query(description="Acquired (after date) on or before this.")] = None,
    min_confidence: Annotated[float | None, Query(description="Least confidence, 0-1.")] = None,
    limit: Annotated[int, Query(description=f"Most polygons returned (1-{MAX_ALERTS}).")] = 200,
) -> dict[str, Any]:
    """The change polygons of the results new to the caller."""
    query = InboxQuery(
        since=parse_since(since),
        classes=_names(class_name),
        collections=_names(collection),
        start=parse_since(start),
        end=parse_since(end),
        min_confidence=min_confidence,
        limit=limit,
    )
    return _inbox(request).alerts(principal(request).name, visible_collections(request), query)


@router.post("/inbox/seen")
def mark_seen(
    request: Request,
    body: Annotated[dict[str, Any] | None, Body(description='Optional {"seen_at": RFC 3339}.')] = None,
) -> dict[str, Any]:
    """Mark the caller's inbox seen (up to ``seen_at``, default now)."""
    when = parse_since(str((body or {}).get("seen_at") or ""))
    seen = _inbox(request).mark_seen(principal(request).name, when)
    return {"seen_at": rfc3339(seen)}
