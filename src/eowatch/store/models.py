"""Tables of the results catalogue: collections and the STAC Items of runs.

Geometry, properties, assets and links are stored as JSON so that the same
schema works on SQLite and on PostgreSQL without PostGIS; the bounding box is
kept in four indexed columns for a fast spatial prefilter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "CollectionRow", "ItemRow"]


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
