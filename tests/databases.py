"""Fresh, empty test databases: a SQLite file, or a PostgreSQL database on the
server started by scripts/start_postgres.sh (EOWATCH_TEST_POSTGRES_URL; CI must
have it, elsewhere its tests are skipped)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine

from eowatch.store.db import sibling_database


def fresh_database(kind: str, tmp: Path, name: str | None = None) -> str:
    """The URL of an empty database of ``kind`` (sqlite or postgresql). With a
    ``name``, PostgreSQL tests get a database of their own (``<test db>_<name>``)
    so suites running at once never drop each other's tables."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / ((name or 'catalog') + '.db')}"
    url = os.environ.get("EOWATCH_TEST_POSTGRES_URL")
    if not url:
        reason = 'EOWATCH_TEST_POSTGRES_URL is not set; run: eval "$(scripts/start_postgres.sh)"'
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    if name:
        url = sibling_database(url, name)
    engine = create_engine(url)  # not make_engine: it would make (and upgrade) the schema first
    found = MetaData()
    found.reflect(engine)  # every table, also those of earlier versions (process_jobs)
    found.drop_all(engine)
    engine.dispose()
    return url
