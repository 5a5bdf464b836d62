"""Engines from a database URL, with the settings each backend needs.

SQLite (the embedded default) runs in WAL mode with foreign keys enforced, so
a reader (the API) and a writer (an ingest) can work at the same time;
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..errors import CatalogBusyError, CatalogError
from .models import Base

__all__ = ["make_engine", "create_schema", "sqlite_url", "sibling_database", "database_error"]


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The URL of a SQLite database file."""
    return f"sqlite:///{Path(path).resolve()}"


def sibling_database(url: str, suffix: str) -> str:
    """The URL of database ``<database>_<suffix>`` on the PostgreSQL server of
    ``url``, created when missing: a database of its own for a test suite or a
    benchmark, so runs sharing one server never drop each other's tables."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    name = f"{parsed.database}_{suffix}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


#: Longest wait for a lock held by another writer (then ``CatalogBusyError``: retried).
_LOCK_TIMEOUT_MS = 10_000


def database_error(message: str, exc: SQLAlchemyError) -> CatalogError:
    """The error for a failed database call: ``CatalogBusyError`` (retryable) when the
    database was locked, busy or unreachable (SQLAlchemy's ``OperationalError``),
    else ``CatalogError`` (a constraint, bad data: retrying gives the same answer)."""
    kind = CatalogBusyError if isinstance(exc, OperationalError) else CatalogError
    return kind(f"{message}: {str(exc).splitlines()[0][:500]}")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={_LOCK_TIMEOUT_MS}")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``: ``sqlite:///path.db`` or
    ``postgresql+psycopg://user@host:port/db`` (a bare ``postgresql://`` uses psycopg 3).
    The schema is created when missing."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise CatalogError(
            f"{url!r} is not a database URL; use sqlite:///path/to/eowatch.db or "
            "postgresql+psycopg://user:password@host:port/database"
        ) from exc
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        kwargs["pool_pre_ping"] = True
        # Nothing waits forever: a connection or a lock wait ends like SQLite's busy timeout.
        kwargs["connect_args"] = {"connect_timeout": 10, "options": f"-c lock_timeout={_LOCK_TIMEOUT_MS}"}
    else:
        raise CatalogError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    try:
        engine = create_engine(parsed, **kwargs)
    except (ImportError, SQLAlchemyError) as exc:
        raise CatalogError(f"cannot open the database {parsed!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    create_schema(engine)
    return engine


def create_schema(engine: Engine) -> None:
    """Create the catalogue tables that do not exist yet."""
    try:
        Base.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"cannot reach or initialise the database {engine.url!r}: {exc.__class__.__name__}: {exc}"
        ) from exc
