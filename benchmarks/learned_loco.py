"""The learned Sentinel-2 change model's bars on OSCD (issue 17), printed:

* leave-one-city-out scores of ``s2-learned`` (each city scored through the real preset
  run by a model trained on the other 7), their mean, and the expected calibration error
  of the flagged pixels' and polygons' confidence; beside them s2-imad's scores;
* the wall time and peak memory of ``eowatch detect`` with s2-imad and s2-learned on the
  largest city (beirut), alternated ``--repeat`` times, each a child process.

    .venv/bin/python benchmarks/learned_loco.py [--oscd DIR] [--repeat 2] [--regions]
        [--json out/bench/learned_loco.json]

About 1-3 minutes on 2 cores (the region stage, ``--regions``, about 3x that).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OSCD = Path(os.environ.get("EOWATCH_SHARED_DATA", REPO.parent / "shared" / "data")) / "s2_pairs/oscd"


def _detect(city: Path, preset: str, out: Path) -> dict[str, float]:
    script = Path(sys.executable).parent / "eowatch"
    cmd = [str(script), "detect", "--before", str(city / "imgs_1"), "--after", str(city / "imgs_2"),
           "--preset", preset, "--out", str(out), "--quiet"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{preset} failed on {city.name} (status {status})")
    return {"wall_s": round(wall, 2), "peak_gib": round(usage.ru_maxrss * 1024 / 2**30, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--oscd", type=Path, default=DEFAULT_OSCD)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--regions", action="store_true", help="Cross-validate with the region stage.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from eowatch.evaluation import evaluate_oscd
    from eowatch.evaluation.cv import leave_one_out
    from eowatch.learn.pairs import oscd_pairs
    from eowatch.learn.train import TrainConfig
    from eowatch.settings import Settings

    settings = Settings()
    config = TrainConfig(region_threshold=0.1 if args.regions else None)
    t0 = time.perf_counter()
    loco = leave_one_out(oscd_pairs(args.oscd), settings, config)
    loco_s = time.perf_counter() - t0
    imad = evaluate_oscd(args.oscd, "s2-imad", None, settings)
    print(f"{'city':<14}{'learned P':>10}{'R':>7}{'F1':>7}{'s2-imad F1':>12}")
    for mine, base in zip(loco["pairs"], imad["pairs"], strict=True):
        print(f"{mine['name']:<14}{mine['precision']:>10.3f}{mine['recall']:>7.3f}{mine['f1']:>7.3f}"
              f"{base['f1']:>12.3f}")  # fmt: skip
    m, b = loco["mean"], imad["mean"]
    print(f"{'mean':<14}{m['precision']:>10.3f}{m['recall']:>7.3f}{m['f1']:>7.3f}{b['f1']:>12.3f}")
    ece_px, ece_poly = loco["reliability"]["ece"], loco["reliability_polygons"]["ece"]
    print(f"ECE pixels {ece_px:.3f}, polygons {ece_poly:.3f}; cross-validation took {loco_s:.0f} s")

    timings: dict[str, list[dict[str, float]]] = {"s2-imad": [], "s2-learned": []}
    with tempfile.TemporaryDirectory(prefix="eowatch-bench-") as scratch:
        for i in range(args.repeat):
            for preset in timings:
                timings[preset].append(_detect(args.oscd / "beirut", preset, Path(scratch) / f"{preset}-{i}"))
    for preset, runs in timings.items():
        walls = ", ".join(str(r["wall_s"]) for r in runs)
        print(f"beirut {preset:<11} wall s {walls}; peak GiB {max(r['peak_gib'] for r in runs)}")
    if args.json:
        out: dict[str, Any] = {"loco": loco, "s2_imad": imad, "beirut": timings, "loco_s": loco_s}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
