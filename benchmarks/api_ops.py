"""Service benchmark: the cost of ``GET /ops/summary`` as the job tables grow,
and what login auditing adds to an authenticated request.

* ``/ops/summary``: N monitoring jobs (finished over the last 48 h, 5 % failed)
  and N/10 process jobs are bulk-inserted into a fresh database (SQLite file or
  the PostgreSQL of ``EOWATCH_TEST_POSTGRES_URL``, database ``<name>_bench_api``),
  then the route is timed through ``TestClient`` (median of ``--repeat`` calls).
* Login audit: median latency of ``GET /healthz`` with an API key, with the
  default 15-minute window (no insert after the first request) and with a zero
  window (one audit insert on every request).

    .venv/bin/python benchmarks/api_ops.py [--jobs 1000 10000 100000] [--backend sqlite postgresql]
        [--repeat 5] [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert

from eowatch.api import create_app
from eowatch.monitor import TaskService
from eowatch.settings import Settings
from eowatch.store import Base, make_engine
from eowatch.store.db import sibling_database
from eowatch.store.monitoring import JobRow
from eowatch.store.processes import JobRow as ProcessRow


def _database(kind: str, tmp: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    own = sibling_database(os.environ["EOWATCH_TEST_POSTGRES_URL"], "bench_api")
    engine = make_engine(own)
    Base.metadata.drop_all(engine)
    engine.dispose()
    return own


def _fill(url: str, n: int) -> None:
    import datetime as dt

    engine = make_engine(url)
    settings = Settings(output_dir=Path(tempfile.mkdtemp()), database_url=url)
    aoi = "2.31,48.80,2.35,48.84"
    task_ids = [TaskService(settings, engine).create({"name": f"t{i}", "aoi": aoi}).id for i in range(20)]
    now, rng = time.time(), random.Random(1)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        finished = now - rng.uniform(0, 48 * 3600)
        failed = rng.random() < 0.05
        rows.append(dict(
            id=uuid.uuid4().hex, task_id=task_ids[i % 20], preset=rng.choice(["s2-imad", "s1-logratio"]),
            before_id=f"b{i}", after_id=f"a{i}", after_time=finished - 86400, payload={},
            status="failed" if failed else "succeeded", attempts=1, max_attempts=5,
            created=finished - 100, available_at=finished - 100, started_at=finished - rng.uniform(5, 60),
            finished_at=finished, error_class="eowatch.errors.InputError" if failed else None,
            error_message="bench" if failed else None,
        ))  # fmt: skip
    procs = [
        dict(id=uuid.uuid4().hex, process_id="s2-imad", owner="bench", status="successful", progress=1.0,
             message="", inputs={}, collection_id="processes",
             started=dt.datetime.fromtimestamp(now - 3600 - i, dt.UTC),
             finished=dt.datetime.fromtimestamp(now - 3500 - i, dt.UTC))
        for i in range(n // 10)
    ]  # fmt: skip
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(insert(JobRow), rows[start : start + 5000])
        if procs:
            conn.execute(insert(ProcessRow), procs)
    engine.dispose()


def _median_ms(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    for backend in args.backend:
        for n in args.jobs:
            url = _database(backend, tmp)
            _fill(url, n)
            settings = Settings(output_dir=tmp / "out", database_url=url, auth_required=False)
            app = create_app(settings)
            with TestClient(app) as client:
                assert client.get("/ops/summary").status_code == 200  # warm up
                ms = _median_ms(lambda c=client: c.get("/ops/summary").raise_for_status(), args.repeat)
                summary = client.get("/ops/summary").json()
            app.state.catalog.close()
            done = sum(b["succeeded"] + b["failed"] for b in summary["throughput"])
            print(f"{backend:<10} jobs={n:>7}  /ops/summary median {ms:8.1f} ms  (finished in 24 h: {done})")

    url = _database("sqlite", tmp)
    settings = Settings(output_dir=tmp / "out", database_url=url, auth_required=True)
    app = create_app(settings)
    app.state.access.create_user("bench", "analyst")
    headers = {"X-API-Key": app.state.access.create_key("bench")}
    with TestClient(app) as client:
        windows = ((15 * 60.0, "15 min window (default)"), (0.0, "zero window: insert per request"))
        for window, label in windows:
            app.state.login_audit.window_s = window
            client.get("/healthz", headers=headers)
            call = lambda c=client: c.get("/healthz", headers=headers).raise_for_status()  # noqa: E731
            ms = _median_ms(call, args.requests)
            print(f"GET /healthz with an API key, {label}: median {ms:.2f} ms")
    app.state.catalog.close()


if __name__ == "__main__":
    main()
