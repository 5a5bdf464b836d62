"""Latency from an acquisition appearing in the local catalogue to its products being
catalogued, for the bundled Paris pair (s2-imad): a task watches a local catalogue that
holds date 1; date 2 is added; the task is triggered; one scheduler tick and one worker
pass (inline executor) follow. A scheduler with cadence C adds up to C to this figure.

    python benchmarks/monitor_latency.py [--database URL] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from eowatch.monitor import Scheduler, TaskService, Worker
from eowatch.results import ResultsCatalog
from eowatch.settings import Settings
from eowatch.store import Base, make_engine

PARIS = Path(__file__).resolve().parents[1] / "data" / "oscd-paris"


def once(tmp: Path, url: str | None) -> dict[str, float]:
    catalog = tmp / "catalog"
    catalog.mkdir()
    shutil.copy(PARIS / "dates.txt", catalog)
    shutil.copytree(PARIS / "imgs_1", catalog / "imgs_1")
    settings = Settings(output_dir=tmp / "out", database_url=url or f"sqlite:///{tmp / 'eowatch.db'}")
    engine = make_engine(str(settings.database_url))
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    tasks = TaskService(settings, engine)
    spec = {"name": "paris", "aoi": str(PARIS / "paris.geojson"), "presets": ["s2-imad"],
            "start": "2016-06-01", "provider": f"local:{catalog}",
            "pairing": {"max_gap_days": 400}}  # fmt: skip
    tasks.create(spec)
    scheduler = Scheduler(settings, engine)
    scheduler.tick()
    shutil.copytree(PARIS / "imgs_2", catalog / ".staging")
    (catalog / ".staging").rename(catalog / "imgs_2")
    t0 = time.perf_counter()
    tasks.trigger("paris")
    report = scheduler.tick()
    t1 = time.perf_counter()
    assert len(report.enqueued) == 1, report
    worker = Worker(settings, engine=engine, executor="inline")
    outcome = worker.run_once()
    t2 = time.perf_counter()
    assert outcome is not None and outcome.status == "succeeded", outcome
    assert ResultsCatalog(engine).search(collections=["task-paris"]).matched == 1
    worker.close()
    engine.dispose()
    return {"tick": t1 - t0, "job": t2 - t1, "total": t2 - t0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", help="Database URL (default: a fresh SQLite file).")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            results.append(once(Path(tmp), args.database))
    for key in ("tick", "job", "total"):
        values = [r[key] for r in results]
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{key:<6} median {statistics.median(values):6.2f} s  (runs: {runs})")


if __name__ == "__main__":
    main()
