"""Tables of the results catalogue: collections, the STAC Items of runs and the
analysts' verdicts on their change polygons.

Geometry, properties, assets and links are stored as JSON so that the same
schema works on SQLite and on PostgreSQL without PostGIS; the bounding box is
kept in four indexed columns for a fast spatial prefilter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "CollectionRow", "ItemRow", "VerdictRow", "InboxMarkRow"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the eowatch tables."""


class CollectionRow(Base):
    """A collection of run Items (per monitoring task or chosen by the user)."""

    __tablename__ = "collections"

    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    title: Mapped[str | None] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(Text, default="")
    extent: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ItemRow(Base):
    """One STAC Item: the record of one product run."""

    __tablename__ = "items"

    collection_id: Mapped[str] = mapped_column(
        String(256), ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[str] = mapped_column(String(256), primary_key=True)
    datetime: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)
    start_datetime: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    end_datetime: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    minx: Mapped[float] = mapped_column(Float)
    miny: Mapped[float] = mapped_column(Float)
    maxx: Mapped[float] = mapped_column(Float)
    maxy: Mapped[float] = mapped_column(Float)
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)
    assets: Mapped[dict[str, Any]] = mapped_column(JSON)
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stac_extensions: Mapped[list[str]] = mapped_column(JSON)
    folder: Mapped[str] = mapped_column(Text)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)

    __table_args__ = (
        Index("ix_items_bbox", "minx", "maxx", "miny", "maxy"),
        Index("ix_items_sort", "datetime", "id"),
    )


class VerdictRow(Base):
    """One author's verdict on one change polygon of an Item (``eowatch.store.feedback``).

    A polygon is its feature ``id`` in the Item's ``changes.geojson`` (its area rank);
    its class and geometry as judged are kept too, so the verdict stays a complete
    training label even if the Item is re-made or removed. No foreign key to ``items``:
    re-ingesting an Item replaces its row, and must not drop the verdicts on it."""

    __tablename__ = "verdicts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    collection_id: Mapped[str] = mapped_column(String(256))
    item_id: Mapped[str] = mapped_column(String(256))
    polygon_id: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(256))
    verdict: Mapped[str] = mapped_column(String(16))
    corrected_class: Mapped[int | None] = mapped_column(Integer)
    corrected_class_name: Mapped[str | None] = mapped_column(String(256))
    note: Mapped[str] = mapped_column(Text, default="")
    polygon_class: Mapped[int | None] = mapped_column(Integer)
    polygon_class_name: Mapped[str | None] = mapped_column(String(256))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    geometry_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)

    __table_args__ = (
        UniqueConstraint(
            "collection_id", "item_id", "polygon_id", "author", name="uq_verdicts_author_polygon"
        ),
    )


class InboxMarkRow(Base):
    """When a user last marked their alert inbox as seen (``eowatch.results.inbox``)."""

    __tablename__ = "inbox_marks"

    user: Mapped[str] = mapped_column(String(256), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
