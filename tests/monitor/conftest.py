"""Fixtures of the monitoring tests: a fresh database of each kind (SQLite file,
real PostgreSQL), a local catalogue holding the bundled Paris dates, and a
webhook receiver in a separate process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from eowatch.results import ResultsCatalog
from eowatch.services import Services
from eowatch.settings import Settings
from eowatch.store import make_engine
from eowatch.store import monitoring as _monitoring  # noqa: F401 - registers the monitoring tables

from ..databases import fresh_database

HERE = Path(__file__).parent


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'monitor.db'}"
    return fresh_database("postgresql", tmp_path, "monitor")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    # the webhook receivers of these tests listen on loopback, where alerts go only when allowed
    return Settings(output_dir=tmp_path / "out", database_url=db_url, outbound_allow=("127.0.0.1",))


def services_for(settings: Settings, engine: Engine) -> Services:
    """The services of a worker or scheduler whose results and tasks share ``engine``."""
    return Services(settings, results=ResultsCatalog(engine), monitor_engine=engine)


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
