"""Fixtures of the monitoring tests: a fresh database of each kind (SQLite file,
real PostgreSQL), a local catalogue holding the bundled Paris dates, and a
webhook receiver in a separate process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from eowatch.settings import Settings
from eowatch.store import Base, make_engine
from eowatch.store import monitoring as _monitoring  # noqa: F401 - registers the monitoring tables

HERE = Path(__file__).parent


def _postgres_url() -> str:
    """A database of its own on the test server (so other suites dropping their tables
    do not interfere), emptied of every eowatch table."""
    url = os.environ.get("EOWATCH_TEST_POSTGRES_URL")
    if not url:
        reason = 'EOWATCH_TEST_POSTGRES_URL is not set; run: eval "$(scripts/start_postgres.sh)"'
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    name = f"{parsed.database}_monitor"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    own = parsed.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(own)
    Base.metadata.drop_all(engine)
    engine.dispose()
    return own


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return _postgres_url()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(output_dir=tmp_path / "out", database_url=db_url)


@pytest.fixture
def local_catalog(tmp_path: Path, paris: Path) -> Path:
    """A local catalogue folder holding date 1 of the Paris pair; add date 2 with
    ``add_date(folder, paris, 2)``."""
    root = tmp_path / "catalog"
    root.mkdir()
    shutil.copy(paris / "dates.txt", root / "dates.txt")
    add_date(root, paris, 1)
    return root


def add_date(root: Path, paris: Path, n: int) -> Path:
    """Copy ``imgs_<n>`` into the catalogue atomically (a staging name the index skips)."""
    staging = root / f".staging-{n}"
    shutil.copytree(paris / f"imgs_{n}", staging)
    return staging.rename(root / f"imgs_{n}")


class Receiver:
    """A webhook receiver in its own process, recording each POST (headers and body)."""

    def __init__(self, log: Path, fail_first: int = 0) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "webhook_receiver.py"), str(log), str(fail_first)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/hook"

    def requests(self) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while len(self.requests()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests()

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    rec = Receiver(tmp_path / "webhook.jsonl")
    yield rec
    rec.close()
