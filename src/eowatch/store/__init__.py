"""Persistence: a SQLAlchemy engine from a URL (SQLite by default, PostgreSQL to
scale out) and the tables of the results catalogue."""

from __future__ import annotations

from . import monitoring  # noqa: F401,E402  (registers the monitoring tables on Base)
from .db import create_schema, make_engine, sqlite_url
from .models import Base, CollectionRow, ItemRow

__all__ = ["Base", "CollectionRow", "ItemRow", "create_schema", "make_engine", "sqlite_url"]
