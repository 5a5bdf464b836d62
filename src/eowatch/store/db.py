"""Engines from a database URL, with the settings each backend needs.

SQLite (the embedded default) runs in WAL mode with foreign keys enforced, so
a reader (the API) and a writer (an ingest) can work at the same time;
PostgreSQL is reached through psycopg 3 (``postgresql+psycopg://``).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from ..errors import CatalogBusyError, CatalogError
from .models import Base
from .monitoring import adopt_process_jobs

__all__ = [
    "make_engine",
    "create_schema",
    "sqlite_url",
    "sibling_database",
    "database_error",
    "as_utc",
    "rfc3339",
]


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


def as_utc(value: dt.datetime) -> dt.datetime:
    """Datetimes come back naive from SQLite: everything is stored in UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def rfc3339(value: dt.datetime | None) -> str | None:
    """A stored datetime as RFC 3339 text in UTC (``...Z``); None stays None."""
    return None if value is None else as_utc(value).isoformat().replace("+00:00", "Z")


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
    """Create the tables that do not exist yet, and bring tables made by an earlier
    version up to date (``upgrade_schema``)."""
    try:
        Base.metadata.create_all(engine)
        upgrade_schema(engine)
        adopt_process_jobs(engine)
    except SQLAlchemyError as exc:
        raise CatalogError(
            f"cannot reach or initialise the database {engine.url!r}: {exc.__class__.__name__}: {exc}"
        ) from exc


def upgrade_schema(engine: Engine) -> list[str]:
    """Add the columns a table of an earlier version lacks, and drop NOT NULL where a
    column became optional (SQLite: the table is rebuilt, rows kept). Only additive
    changes: nothing stored is removed. Returns what was changed."""
    changes: list[str] = []
    inspector = inspect(engine)  # each table read once, before this pass changes it
    for table in Base.metadata.sorted_tables:
        existing = {c["name"]: c for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in existing:
                ddl = f"{column.type.compile(engine.dialect)}"
                if column.server_default is not None:
                    ddl += f" DEFAULT '{column.server_default.arg}'"  # type: ignore[attr-defined]
                with engine.begin() as conn:
                    conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}'))
                changes.append(f"{table.name}.{column.name} added")
        relaxed = [c.name for c in table.columns
                   if c.name in existing and c.nullable and not existing[c.name]["nullable"]]  # fmt: skip
        if relaxed:
            _drop_not_null(engine, table, relaxed)
            changes += [f"{table.name}.{name} made optional" for name in relaxed]
    return changes


def _drop_not_null(engine: Engine, table: Any, columns: list[str]) -> None:
    if engine.dialect.name != "sqlite":
        with engine.begin() as conn:
            for name in columns:
                conn.execute(text(f'ALTER TABLE {table.name} ALTER COLUMN "{name}" DROP NOT NULL'))
        return
    # SQLite cannot alter a column: copy the rows into the table as it is now defined.
    old = f"{table.name}__before_upgrade"
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
        conn.commit()
        try:
            with conn.begin():
                conn.exec_driver_sql("PRAGMA legacy_alter_table=ON")  # other tables keep their references
                conn.exec_driver_sql(f'ALTER TABLE "{table.name}" RENAME TO "{old}"')
                for index in inspect(conn).get_indexes(old):
                    conn.exec_driver_sql(f'DROP INDEX "{index["name"]}"')
                table.create(conn)
                names = ", ".join(f'"{c["name"]}"' for c in inspect(conn).get_columns(old))
                conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM "{old}"')
                conn.exec_driver_sql(f'DROP TABLE "{old}"')
        finally:
            conn.exec_driver_sql("PRAGMA legacy_alter_table=OFF")
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()
