"""A worker process for the kill test: ``python slow_worker.py DB_URL OUTPUT_DIR MARKER LEASE_S``.
Its detection pass writes the products, touches MARKER, then hangs (to be killed)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from eowatch import pipeline
from eowatch.monitor import Worker
from eowatch.services import Services
from eowatch.settings import Settings

db_url, output_dir, marker, lease_s = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])
real_detect = pipeline.detect_pair


def detect_then_hang(*args: Any, **kwargs: Any) -> Any:
    out = real_detect(*args, **kwargs)
    marker.write_text(str(out.folder))
    time.sleep(120)
    return out


pipeline.detect_pair = detect_then_hang
settings = Settings(output_dir=Path(output_dir), database_url=db_url)
Worker(Services(settings), executor="inline", lease_s=lease_s, worker_id="doomed").run_once()
