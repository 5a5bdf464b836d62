"""The analyst's alert inbox: the change polygons of the results catalogued since the
analyst last looked, across every collection they may read (a monitoring task's results
are its collection), most confident and largest first, filtered by class, collection,
acquisition dates and confidence.

"Since the analyst last looked" is a mark per user (``mark_seen``), kept in the
catalogue's database; without one the inbox covers the last ``DEFAULT_LOOKBACK``. The
newest ``MAX_ITEMS`` results are read per request (their ``changes.geojson``), so the
cost is bounded however long the analyst was away; the answer says when it was cut.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..errors import InputError, NotFoundError
from ..store.db import as_utc, create_schema, database_error, rfc3339
from ..store.models import InboxMarkRow, ItemRow
from .catalog import ResultsCatalog

__all__ = ["Inbox", "InboxQuery", "DEFAULT_LOOKBACK", "MAX_ITEMS", "MAX_ALERTS"]

#: What the inbox covers for a user who never marked it seen.
DEFAULT_LOOKBACK = dt.timedelta(days=7)
#: Newest results read per request.
MAX_ITEMS = 200
#: Most polygons returned at once.
MAX_ALERTS = 1000


@dataclass(frozen=True)
class InboxQuery:
    """Filters of the inbox (None: no filter)."""

    since: dt.datetime | None = None
    classes: frozenset[str] | None = None
    collections: frozenset[str] | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    min_confidence: float | None = None
    limit: int = 200

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_ALERTS:
            raise InputError(f"limit must be between 1 and {MAX_ALERTS}, not {self.limit}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise InputError(f"min_confidence must be between 0 and 1, not {self.min_confidence}")


class Inbox:
    """The inbox of each user over the results catalogue."""

    def __init__(self, catalog: ResultsCatalog) -> None:
        self.catalog = catalog
        create_schema(catalog.engine)

    def _session(self) -> Session:
        return Session(self.catalog.engine, expire_on_commit=False)

    def last_seen(self, user: str) -> dt.datetime | None:
        try:
            with self._session() as session:
                row = session.get(InboxMarkRow, user)
        except SQLAlchemyError as exc:
            raise database_error("cannot read the inbox mark", exc) from exc
        return None if row is None else as_utc(row.seen_at)

    def mark_seen(self, user: str, when: dt.datetime | None = None) -> dt.datetime:
        """Mark the inbox of ``user`` seen up to ``when`` (now by default)."""
        seen = as_utc(when) if when is not None else dt.datetime.now(dt.UTC)
        try:
            with self._session() as session, session.begin():
                row = session.get(InboxMarkRow, user)
                if row is None:
                    session.add(InboxMarkRow(user=user, seen_at=seen))
                else:
                    row.seen_at = seen
        except SQLAlchemyError as exc:
            raise database_error("cannot store the inbox mark", exc) from exc
        return seen

    def _items(self, since: dt.datetime, visible: Collection[str] | None, query: InboxQuery) -> list[ItemRow]:
        conditions: list[Any] = [ItemRow.created > since]
        if visible is not None:
            conditions.append(ItemRow.collection_id.in_(list(visible)))
        if query.collections is not None:
            conditions.append(ItemRow.collection_id.in_(list(query.collections)))
        if query.start is not None:
            conditions.append(ItemRow.datetime >= query.start)
        if query.end is not None:
            conditions.append(ItemRow.datetime <= query.end)
        statement = select(ItemRow).where(*conditions).order_by(ItemRow.created.desc()).limit(MAX_ITEMS + 1)
        try:
            with self._session() as session:
                return list(session.scalars(statement))
        except SQLAlchemyError as exc:
            raise database_error("cannot read the results", exc) from exc

    def alerts(self, user: str, visible: Collection[str] | None, query: InboxQuery) -> dict[str, Any]:
        """The polygons of the results new to ``user`` (catalogued after ``query.since``,
        else after their mark, else within ``DEFAULT_LOOKBACK``) that pass the filters."""
        marked = self.last_seen(user)
        since = query.since or marked or dt.datetime.now(dt.UTC) - DEFAULT_LOOKBACK
        rows = self._items(since, visible, query)
        cut = len(rows) > MAX_ITEMS
        alerts: list[dict[str, Any]] = []
        for row in rows[:MAX_ITEMS]:
            alerts += self._polygons(row, query)
        alerts.sort(key=lambda a: (-(a["confidence"] or 0.0), -a["area_m2"], a["item"], a["polygon"]))
        return {
            "since": rfc3339(since),
            "last_seen": rfc3339(marked),
            "results": min(len(rows), MAX_ITEMS),
            "results_truncated": cut,
            "matched": len(alerts),
            "alerts": alerts[: query.limit],
        }

    def _polygons(self, row: ItemRow, query: InboxQuery) -> list[dict[str, Any]]:
        try:
            path, _media = self.catalog.asset_file(row.collection_id, row.id, "polygons")
            features: Sequence[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["features"]
        except (NotFoundError, OSError, ValueError, KeyError, TypeError):
            return []  # a result without (readable) polygons has no alert to show
        props = row.properties or {}
        out = []
        for index, feature in enumerate(features, start=1):
            p = feature.get("properties") or {}
            name = str(p.get("class_name") or p.get("class"))
            confidence = p.get("confidence")
            if query.classes is not None and name not in query.classes:
                continue
            if query.min_confidence is not None and (confidence is None or confidence < query.min_confidence):
                continue
            out.append(
                {
                    "collection": row.collection_id,
                    "item": row.id,
                    "polygon": feature.get("id", index),
                    "class": p.get("class"),
                    "class_name": name,
                    "area_m2": float(p.get("area_m2") or 0.0),
                    "confidence": None if confidence is None else float(confidence),
                    "bbox": _bbox(feature.get("geometry")),
                    "before": props.get("start_datetime"),
                    "after": props.get("end_datetime") or props.get("datetime"),
                    "preset": props.get("eowatch:preset"),
                    "catalogued": rfc3339(row.created),
                }
            )
        return out


def _bbox(geometry: dict[str, Any] | None) -> list[float] | None:
    """[west, south, east, north] of a GeoJSON geometry (None when empty or missing)."""
    if not geometry:
        return None
    found = shapely.geometry.shape(geometry)
    return None if found.is_empty else [float(v) for v in found.bounds]
