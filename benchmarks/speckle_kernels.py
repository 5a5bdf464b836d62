"""Speckle filters on a full Sentinel-1 tile: the compiled kernels of ``eowatch.kernels.speckle``
against Orfeo ToolBox's ``otbcli_Despeckle`` Lee filter (when it is on PATH).

A seeded ``size`` x ``size`` float32 image (unit-mean Gamma speckle of ``enl`` looks over
16-pixel patches of log-normal backscatter) is filtered by each kernel in a child process
(median of ``--repeat`` runs, wall and process CPU time; peak RSS from ``ru_maxrss``, and the
peak above the RSS before the first run: output plus working memory). OTB's Lee with radius
``window // 2`` (radius 3 = a 7x7 window) and ``enl`` looks runs on the same image written as
a float32 GeoTIFF, so its time includes reading and writing that file: the "lee, GeoTIFF in/out"
row does the same with our kernel (rasterio read, filter, write) for a like-for-like ratio.
OTB runs with ``--otb-threads`` ITK threads (default 1, as our kernels: one per window).

OTB's Lee weighs ``b = 1 - Cu^2 / Ci^2`` with the sample variance; ours is Lee (1981),
``b = (1 - Cu^2 / Ci^2) / (1 + Cu^2)`` with the population variance, so the two differ by about
a percent (median) where they are compared. To show that both ran the same window and looks,
OTB's formula is also evaluated on our ``local_mean_var`` and compared with OTB's output.

    .venv/bin/python benchmarks/speckle_kernels.py [--size 5490] [--window 7] [--enl 4.4] [--repeat 3]
        [--otb-threads 1] [--no-otb]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

FILTERS = ("lee_filter", "gamma_map_filter", "refined_lee_filter")


def make_image(size: int, enl: float, seed: int = 0) -> np.ndarray:
    """Unit-mean Gamma(enl, 1 / enl) speckle over 16x16 patches of log-normal backscatter
    (median -13 dB, 1 neper spread), float32."""
    rng = np.random.default_rng(seed)
    patches = -(-size // 16)
    field = np.exp(rng.normal(np.log(0.05), 1.0, (patches, patches))).astype(np.float32)
    field = np.repeat(np.repeat(field, 16, axis=0), 16, axis=1)[:size, :size]
    image = rng.standard_gamma(enl, (size, size), dtype=np.float32)
    image *= field / np.float32(enl)
    return image


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(args: argparse.Namespace) -> None:
    """One kernel, timed in this (fresh) process; prints a JSON line."""
    from eowatch.kernels import speckle

    name = args.child
    filt = getattr(speckle, "lee_filter" if name == "lee_geotiff" else name)
    filt(np.ones((64, 64), np.float32), args.window, args.enl)  # compile / load the cached code
    if name == "lee_geotiff":
        import rasterio

        def run() -> None:
            with rasterio.open(args.tif) as src:
                profile = src.profile
                x = src.read(1)
            y = filt(x, args.window, args.enl)
            with rasterio.open(Path(args.tif).with_name("ours.tif"), "w", **profile) as dst:
                dst.write(y, 1)

        base = _rss_mb()
    else:
        image = np.load(args.npy)
        base = _rss_mb()

        def run() -> None:
            filt(image, args.window, args.enl)

    wall, cpu = [], []
    for _ in range(args.repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak, "extra_mb": peak - base}))


def _ours(name: str, args: argparse.Namespace, npy: Path, tif: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", name, "--npy", str(npy), "--tif", str(tif)]
    cmd += ["--window", str(args.window), "--enl", str(args.enl), "--repeat", str(args.repeat)]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _otb(args: argparse.Namespace, tif: Path, out: Path) -> dict[str, Any]:
    cmd = ["otbcli_Despeckle", "-in", str(tif), "-out", str(out), "float", "-filter", "lee"]
    cmd += ["-filter.lee.rad", str(args.window // 2), "-filter.lee.nblooks", str(args.enl), "-ram", "2048"]
    env = dict(os.environ, ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=str(args.otb_threads))
    wall, cpu, peak = [], [], 0.0
    for _ in range(args.repeat):
        w0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        wall.append(time.perf_counter() - w0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {errors[-2000:]}")
        cpu.append(usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss / 1024)
    return {"wall": wall, "cpu": cpu, "peak_mb": peak, "extra_mb": float("nan")}


def _agreement(image: np.ndarray, ours: np.ndarray, theirs: np.ndarray, args: argparse.Namespace) -> str:
    """How far OTB's Lee is from ours, and from its own formula on our window statistics
    (relative differences, away from the image border where OTB pads differently)."""
    from eowatch.kernels.speckle import local_mean_var

    mean, var, n = local_mean_var(image, args.window)
    ci2 = var * n / (n - 1) / (mean * mean)
    weight = np.clip(1.0 - 1.0 / args.enl / ci2, 0.0, 1.0)
    own = mean + weight * (image - mean)
    core = (slice(args.window, -args.window),) * 2
    rel = np.abs(ours - theirs)[core] / np.abs(theirs)[core]
    formula = np.abs(own - theirs)[core] / np.abs(theirs)[core]
    return (
        f"|ours - OTB| / OTB, Lee: median {np.median(rel):.2e}, 99th pct {np.percentile(rel, 99):.2e}\n"
        f"OTB's formula on our local_mean_var vs OTB: max {formula.max():.2e} (same window and looks)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=5490, help="image rows and columns (a 10 m S1 tile)")
    parser.add_argument("--window", type=int, default=7, help="odd window size (OTB radius = window // 2)")
    parser.add_argument("--enl", type=float, default=4.4, help="equivalent number of looks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per filter (the median is reported)")
    parser.add_argument("--otb-threads", type=int, default=1, help="ITK threads for otbcli_Despeckle")
    parser.add_argument("--no-otb", action="store_true", help="skip OTB even if it is installed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--npy", help=argparse.SUPPRESS)
    parser.add_argument("--tif", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return

    otb = None if args.no_otb else shutil.which("otbcli_Despeckle")
    px = args.size * args.size
    print(f"{args.size} x {args.size} float32 ({px / 1e6:.1f} Mpx), window {args.window}, ENL {args.enl}, "
          f"median of {args.repeat}")  # fmt: skip
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="speckle-bench-") as tmp:
        image = make_image(args.size, args.enl)
        npy, tif = Path(tmp) / "image.npy", Path(tmp) / "image.tif"
        np.save(npy, image)
        if otb:
            import rasterio
            from rasterio.transform import from_origin

            profile = {
                "driver": "GTiff", "width": args.size, "height": args.size, "count": 1, "dtype": "float32",
                "crs": "EPSG:32631", "transform": from_origin(500000.0, 5000000.0, 10.0, 10.0),
                "tiled": True, "blockxsize": 512, "blockysize": 512,
            }  # fmt: skip
            with rasterio.open(tif, "w", **profile) as dst:
                dst.write(image, 1)
        del image
        for name in FILTERS:
            rows.append((name, _ours(name, args, npy, tif)))
        if otb:
            rows.append(("lee, GeoTIFF in/out", _ours("lee_geotiff", args, npy, tif)))
            rows.append(
                (f"OTB Lee ({args.otb_threads} thr), GeoTIFF in/out", _otb(args, tif, Path(tmp) / "otb.tif"))
            )
            with rasterio.open(Path(tmp) / "otb.tif") as a, rasterio.open(Path(tmp) / "ours.tif") as b:
                theirs, ours = a.read(1).astype(np.float64), b.read(1).astype(np.float64)
            agreement = _agreement(np.load(npy), ours, theirs, args)

    print(f"{'filter':<36} {'wall s':>8} {'CPU s':>8} {'Mpx/s':>8} {'peak RSS MB':>12} {'+ MB':>8}")
    for name, r in rows:
        wall, cpu = statistics.median(r["wall"]), statistics.median(r["cpu"])
        mpx = px / 1e6 / wall
        print(f"{name:<36} {wall:8.2f} {cpu:8.2f} {mpx:8.1f} {r['peak_mb']:12.0f} {r['extra_mb']:8.0f}")
    if otb:
        table = dict(rows)
        ours_io, theirs = table["lee, GeoTIFF in/out"], rows[-1][1]
        for label, key in (("wall", "wall"), ("CPU", "cpu")):
            kernel_only = statistics.median(table["lee_filter"][key]) / statistics.median(theirs[key])
            with_io = statistics.median(ours_io[key]) / statistics.median(theirs[key])
            print(f"ours / OTB Lee, {label}: {with_io:.3f} (both GeoTIFF in/out), {kernel_only:.3f} (kernel)")
        print(agreement)
    else:
        print("otbcli_Despeckle not run (not on PATH, or --no-otb)")


if __name__ == "__main__":
    main()
