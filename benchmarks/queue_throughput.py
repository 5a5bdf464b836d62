"""Jobs per minute the monitoring queue sustains with trivial jobs (queue overhead only):
enqueue N jobs, then W worker threads claim and complete them until the queue is empty.

    python benchmarks/queue_throughput.py [--jobs 2000] [--workers 1 4]
    (PostgreSQL too when EOWATCH_TEST_POSTGRES_URL is set: eval "$(scripts/start_postgres.sh)")
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

from eowatch.monitor import JobQueue, TaskService
from eowatch.settings import Settings
from eowatch.store import Base, make_engine
from eowatch.store.db import sibling_database


def run(url: str, jobs: int, workers: int, tmp: Path) -> tuple[float, float]:
    engine = make_engine(url)
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    task = TaskService(Settings(output_dir=tmp), engine).create({"name": "bench", "aoi": "2.3,48.8,2.4,48.9"})
    queue = JobQueue(engine, lease_s=60)
    start = time.perf_counter()
    for i in range(jobs):
        queue.enqueue(task.id, "s2-imad", f"b{i}", f"a{i}", {"i": i}, after_time=float(i))
    enqueue_s = time.perf_counter() - start

    def work(worker_id: str) -> None:
        while (job := queue.claim(worker_id)) is not None:
            queue.complete(job.id, worker_id, summary={"ok": True})

    start = time.perf_counter()
    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run_s = time.perf_counter() - start
    assert queue.counts() == {"succeeded": jobs}, queue.counts()
    engine.dispose()
    return jobs / enqueue_s * 60, jobs / run_s * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}")]
        if os.environ.get("EOWATCH_TEST_POSTGRES_URL"):
            targets.append(("postgresql", sibling_database(os.environ["EOWATCH_TEST_POSTGRES_URL"], "bench")))
        else:
            print("PostgreSQL skipped: EOWATCH_TEST_POSTGRES_URL is not set")
        print(f"{'database':<11} {'workers':>7} {'enqueue jobs/min':>17} {'claim+complete jobs/min':>24}")
        for name, url in targets:
            for workers in args.workers:
                enq, done = run(url, args.jobs, workers, Path(tmp))
                print(f"{name:<11} {workers:>7} {enq:>17,.0f} {done:>24,.0f}")


if __name__ == "__main__":
    main()
