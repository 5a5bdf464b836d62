"""Full-scene benchmark: eowatch's chains on a full Sentinel-2 tile pair and a
Sentinel-1 scene pair (and a three-date series) of the same size, against Orfeo
ToolBox's MAD on the same four 10 m bands, and the Sentinel-2 chain on a Dask
cluster of 1 then 2 workers. Every preset can run (``--s2-presets all``,
``--s1-presets all``): each must fit the same memory target.

Every run is a child process (the real ``eowatch detect`` CLI, or
``otbcli_MultivariateAlterationDetector``) so its own wall time, CPU time
(user + system, children included) and peak resident memory come from
``os.wait4``. The chain's per-stage timings are read from the product's STAC
Item (``eowatch:timings_s``). Inputs are built once from the real imagery and
cached under ``--work`` (see ``scene_inputs.py``).

    .venv/bin/python benchmarks/full_scene.py [--work /tmp/eowatch-bench] [--size 10980]
        [--only s2,s1,series,otb,dask] [--s2-presets s2-imad|all] [--s1-presets ...|all]
        [--repeat N] [--otb-ram 2048] [--json out/bench/full_scene.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scene_inputs import REPO, BenchInputs, build_all

RUNS = ("s2", "s1", "series", "otb", "dask")
OTB_MAD = "otbcli_MultivariateAlterationDetector"
TARGET_RATIO = 0.5  # our full S2 chain at most half of OTB's MAD time
TARGET_RSS_GIB = 2.5e9 / 2**30  # the "2.5 GB", read as decimal (2.33 GiB): the stricter reading


def eowatch_cmd() -> list[str]:
    script = Path(sys.executable).parent / "eowatch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "eowatch.cli.main"]


class RunFailed(Exception):
    """A run exited with an error or was stopped by the memory guard; the benchmark goes on."""


def _tree_rss_bytes(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def _guard(
    proc: subprocess.Popen[bytes], max_rss_gib: float, tripped: list[str], done: threading.Event
) -> None:
    """Kill ``proc`` when its process tree's resident memory passes ``max_rss_gib``: on a shared
    machine a chain that does not fit must fail alone, not make the kernel kill someone else."""
    start = time.perf_counter()
    while not done.wait(0.5):
        rss = _tree_rss_bytes(proc.pid) / 1024**3
        if rss > max_rss_gib:
            after = time.perf_counter() - start
            tripped.append(f"stopped by the memory guard: {rss:.1f} GiB resident after {after:.0f} s "
                           f"(limit {max_rss_gib:.1f} GiB, --max-rss-gib)")  # fmt: skip
            _kill_tree(proc.pid)
            return


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        for p in [*root.children(recursive=True), root]:
            p.kill()
    except psutil.NoSuchProcess:
        pass


# The measured command runs under this small launcher, which reports its rusage. Measuring the
# command straight from the harness would not do: Linux carries the peak RSS of the process that
# spawned it into the child's ru_maxrss at exec (vfork shares the harness's memory map), so a
# harness that built inputs in memory would inflate every figure.
_LAUNCHER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kib": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def launched(cmd: list[str], usage_file: Path) -> list[str]:
    """``cmd`` under the launcher, which writes its CPU time and peak RSS to ``usage_file``."""
    return [sys.executable, "-c", _LAUNCHER, str(usage_file), *cmd]


def measure(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, max_rss_gib: float = 0.0
) -> dict[str, Any]:
    """Run ``cmd`` as a child; its wall time, CPU time and peak RSS (wait4, in the launcher)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()
    tripped: list[str] = []
    done = threading.Event()
    usage_file = log.with_suffix(".rusage.json")
    usage_file.unlink(missing_ok=True)
    with log.open("wb") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(launched(cmd, usage_file), stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})  # fmt: skip
        guard = threading.Thread(target=_guard, args=(proc, max_rss_gib, tripped, done), daemon=True)
        if max_rss_gib > 0:
            guard.start()
        returncode = proc.wait()
        wall = time.perf_counter() - start
        done.set()
    if tripped:
        raise RunFailed(tripped[0])
    if returncode != 0 or not usage_file.exists():
        tail = log.read_text(errors="replace")[-1500:]
        raise RunFailed(f"{' '.join(cmd)} failed (exit {returncode}); log {log}:\n{tail}")
    usage = json.loads(usage_file.read_text())
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage["cpu_s"], 2),
        "peak_rss_gib": round(usage["maxrss_kib"] / 1024**2, 3),  # ru_maxrss is in KiB on Linux
        "load_before": [round(x, 2) for x in load],
    }


@dataclass(frozen=True)
class Bench:
    """Where runs write (``work/runs``, ``work/logs``) and the memory guard's limit."""

    work: Path
    max_rss_gib: float


def detect_run(name: str, before: Path, after: Path, preset: str | None, bench: Bench,
               env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    cmd = [*eowatch_cmd(), "detect", "--before", str(before), "--after", str(after)]
    return _cli_run(name, cmd + (["--preset", preset] if preset else []), bench, env)


def series_run(name: str, dates: list[Path], bench: Bench) -> dict[str, Any]:
    """The omnibus test over a time series (``eowatch detect-series``)."""
    return _cli_run(
        name, [*eowatch_cmd(), "detect-series", *map(str, dates), "--preset", "s1-omnibus"], bench
    )


def _cli_run(name: str, cmd: list[str], bench: Bench, env: dict[str, str] | None = None) -> dict[str, Any]:
    out = bench.work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)  # one product folder at a time (a full statistic COG is ~0.5 GB)
    cmd = [*cmd, "--out", str(out), "--quiet"]
    version = eowatch_version()
    figures = measure(cmd, bench.work / "logs" / f"{name}.log", env, bench.max_rss_gib)
    item = json.loads(next(out.glob("*/item.json")).read_text())
    props = item["properties"]
    stages = dict(props["eowatch:timings_s"])
    # Windowed runs keep their sub-stages (fit, windows, regions, write_*) in the block engine's metadata.
    stages.update(props.get("eowatch:metadata", {}).get("blockwise", {}).get("stages_s", {}))
    figures["stages_s"] = {k: round(v, 2) for k, v in stages.items()}
    figures["preset"] = props["eowatch:preset"]
    figures["status"] = props["eowatch:status"]
    figures["polygons"] = props.get("eowatch:polygon_count")
    figures["eowatch_commit"] = version
    if blockwise := props.get("eowatch:metadata", {}).get("blockwise"):
        # Windowed chain: reading and applying interleave inside "windows"; these are summed thread-seconds.
        figures["blockwise"] = blockwise
    return figures


def otb_run(inputs: BenchInputs, bench: Bench, ram_mb: int) -> dict[str, Any]:
    out = bench.work / "runs" / "otb"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cmd = [OTB_MAD, "-in1", str(inputs.otb_before), "-in2", str(inputs.otb_after),
           "-out", str(out / "mad.tif"), "float", "-ram", str(ram_mb)]  # fmt: skip
    figures = measure(cmd, bench.work / "logs" / "otb.log", None, bench.max_rss_gib)
    figures["ram_mb"] = ram_mb
    return figures


def dask_support() -> str | None:
    """None when the chain can run one scene on Dask, else why not."""
    from eowatch.settings import Settings

    if "scene_executor" not in Settings.model_fields:
        return (
            "eowatch.settings.Settings has no scene_executor field (the chain has no Dask scene executor yet)"
        )
    try:
        import distributed  # noqa: F401
    except ImportError:
        return "dask.distributed is not installed (pip install 'eowatch[dask]')"
    return None


_CLUSTER = """
import sys, time
from distributed import LocalCluster
cluster = LocalCluster(n_workers=int(sys.argv[1]), threads_per_worker=1, processes=True,
                       dashboard_address=None, memory_limit=0)
print(cluster.scheduler_address, flush=True)
sys.stdin.read()  # until the harness closes stdin
cluster.close()
"""


def dask_run(workers: int, inputs: BenchInputs, bench: Bench) -> dict[str, Any]:
    """The S2 chain with its scene executor on a LocalCluster of ``workers`` single-thread
    worker processes. Figures add the cluster's CPU and peak RSS (its own process tree,
    start-up included) to the CLI client's."""
    usage_file = bench.work / "logs" / f"dask-{workers}-cluster.rusage.json"
    usage_file.parent.mkdir(parents=True, exist_ok=True)
    usage_file.unlink(missing_ok=True)
    cmd = launched([sys.executable, "-c", _CLUSTER, str(workers)], usage_file)
    cluster = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert cluster.stdout and cluster.stdin
    address = cluster.stdout.readline().strip()
    if not address:
        raise RunFailed(f"the Dask LocalCluster of {workers} worker(s) did not start")
    try:
        env = {"EOWATCH_SCENE_EXECUTOR": "dask", "EOWATCH_DASK_SCHEDULER_ADDRESS": address}
        figures = detect_run(f"dask-{workers}", inputs.s2_before, inputs.s2_after, None, bench, env)
    finally:
        cluster.stdin.close()
        cluster.wait()
    usage = json.loads(usage_file.read_text())
    figures["client_cpu_s"] = figures["cpu_s"]
    figures["cluster_cpu_s"] = round(usage["cpu_s"], 2)
    figures["cpu_s"] = round(figures["cpu_s"] + figures["cluster_cpu_s"], 2)
    figures["client_peak_rss_gib"] = figures["peak_rss_gib"]
    # ru_maxrss of a tree is its largest single process, not the sum of the workers.
    figures["cluster_peak_rss_gib"] = round(usage["maxrss_kib"] / 1024**2, 3)
    figures["workers"] = workers
    return figures


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of the numeric figures over repeats; the rest from the first run."""
    merged = dict(runs[0])
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = round(statistics.median(r[key] for r in runs), 3)
        elif key == "stages_s":
            merged[key] = {k: round(statistics.median(r[key].get(k, 0.0) for r in runs), 2) for k in value}
    merged["repeats"] = [{k: r[k] for k in ("wall_s", "cpu_s", "peak_rss_gib")} for r in runs]
    return merged


def eowatch_version() -> str:
    """The checkout's commit, marked when src/ has uncommitted changes (others may commit mid-benchmark)."""
    git = ["git", "-C", str(REPO)]
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True).stdout
    return commit.strip() + ("+uncommitted-src-changes" if dirty.strip() else "")


def machine_info() -> dict[str, Any]:
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "mem_total_gib": round(int(meminfo["MemTotal"].split()[0]) / 1024**2, 1),
        "mem_available_gib": round(int(meminfo["MemAvailable"].split()[0]) / 1024**2, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "eowatch_commit": eowatch_version(),
        "otb": shutil.which(OTB_MAD),
    }


def print_table(report: dict[str, Any]) -> None:
    rows = report["runs"]
    print(f"\n{'run':<16}{'wall s':>9}{'cpu s':>9}{'peak GiB':>10}  stages (s)")
    for name, r in rows.items():
        stages = " ".join(f"{k}={v}" for k, v in r.get("stages_s", {}).items())
        if bw := r.get("blockwise"):
            stages += (f" | {bw['executor']} x{bw['workers']}, {bw['windows']} windows:"
                       f" read {bw['read_thread_s']} + apply {bw['apply_thread_s']} thread-s")  # fmt: skip
        print(f"{name:<16}{r['wall_s']:>9.1f}{r['cpu_s']:>9.1f}{r['peak_rss_gib']:>10.2f}  {stages}")
    for name, why in report["failed"].items():
        print(f"{name:<16}FAILED: {why.splitlines()[0]}")
    for name, why in report["skipped"].items():
        print(f"{name:<16}skipped: {why}")
    for key, value in report["summary"].items():
        print(f"{key}: {value}")
    m = report["machine"]
    print(f"machine: {m['cores_available']} cores ({m['cpu_model']}), {m['mem_total_gib']} GiB, "
          f"load before {m['load_average']}, eowatch {m['eowatch_commit']}")  # fmt: skip


def summarise(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    if "s2" in runs and "otb" in runs:
        ratio = runs["s2"]["wall_s"] / runs["otb"]["wall_s"]
        summary["ratio_s2_chain_to_otb_mad"] = round(ratio, 3)
        summary["ratio_target_met"] = ratio <= TARGET_RATIO
        # CPU seconds compare the work done when other load on the machine stretches both wall times.
        summary["cpu_ratio_s2_chain_to_otb_mad"] = round(runs["s2"]["cpu_s"] / runs["otb"]["cpu_s"], 3)
    if "s2" in runs:
        summary["s2_peak_rss_target_met"] = runs["s2"]["peak_rss_gib"] < TARGET_RSS_GIB
    detections = {n: r for n, r in runs.items() if n != "otb" and not n.startswith("dask")}
    summary["peak_rss_target_met"] = {n: r["peak_rss_gib"] < TARGET_RSS_GIB for n, r in detections.items()}
    if "dask-1" in runs and "dask-2" in runs:
        summary["dask_speedup_1_to_2_workers"] = round(runs["dask-1"]["wall_s"] / runs["dask-2"]["wall_s"], 3)
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/eowatch-bench"), help="inputs cache and runs")
    parser.add_argument(
        "--size", type=int, default=10980, help="scene side in 10 m pixels (MGRS tile: 10980)"
    )
    parser.add_argument("--only", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; medians are reported")
    parser.add_argument(
        "--s2-presets", default="s2-imad", help="Sentinel-2 presets to run (s2-imad is the run 's2'), or all"
    )
    parser.add_argument(
        "--s1-presets", default="s1-flood,s1-omnibus", help="Sentinel-1 presets to run, or all"
    )
    parser.add_argument("--otb-ram", type=int, default=2048, help="OTB -ram (MB): its streaming block budget")
    parser.add_argument("--s1-size", type=int, default=0, help="Sentinel-1 scene side (default: --size)")
    parser.add_argument(
        "--max-rss-gib",
        type=float,
        default=0.0,
        help="memory guard: stop a run whose process tree passes this (default 80%% of available)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    args = parser.parse_args(argv)
    only = [r.strip() for r in args.only.split(",") if r.strip()]
    if unknown := set(only) - set(RUNS):
        parser.error(f"--only: unknown run(s) {sorted(unknown)}; choose from {','.join(RUNS)}")

    from eowatch.detect import get_preset, list_presets, parse_params

    s2_presets = _presets(args.s2_presets, "sentinel-2", list_presets)
    s1_presets = _presets(args.s1_presets, "sentinel-1", list_presets)
    s2_bands = sorted(
        {b for name in s2_presets for b in get_preset(name).bands(parse_params(get_preset(name)), ())}
    )
    machine = machine_info()  # load average before anything runs
    t0 = time.perf_counter()
    s1_size = args.s1_size or args.size
    needs_s1 = "s1" in only or "series" in only
    inputs = build_all(args.work / "inputs", s2_bands, args.size, s1_size if needs_s1 else 0)
    build_s = round(time.perf_counter() - t0, 1)

    bench = Bench(args.work, args.max_rss_gib or round(0.8 * machine["mem_available_gib"], 1))
    skipped: dict[str, str] = {}
    plan: dict[str, Any] = {}
    if "otb" in only:
        if shutil.which(OTB_MAD):
            plan["otb"] = lambda: otb_run(inputs, bench, args.otb_ram)
        else:
            skipped["otb"] = (
                f"{OTB_MAD} not found (install the Debian package otb-bin: scripts/setup_bench.sh)"
            )
    if "s2" in only:
        for name in s2_presets:
            run_name, preset_name = ("s2" if name == "s2-imad" else name), name  # s2: the MAD chain, as OTB
            plan[run_name] = lambda r=run_name, p=preset_name: detect_run(
                r, inputs.s2_before, inputs.s2_after, p, bench
            )
    if "s1" in only:
        for name in s1_presets:
            plan[name] = lambda name=name: detect_run(name, inputs.s1_before, inputs.s1_after, name, bench)
    if "series" in only:
        dates = [inputs.s1_before, inputs.s1_after, inputs.s1_later]
        plan["s1-omnibus-series"] = lambda: series_run("s1-omnibus-series", dates, bench)
    if "dask" in only:
        if why := dask_support():
            skipped["dask"] = why
        else:
            plan["dask-1"] = lambda: dask_run(1, inputs, bench)
            plan["dask-2"] = lambda: dask_run(2, inputs, bench)

    report: dict[str, Any] = {
        "size_px": args.size,
        "s1_size_px": s1_size,
        "repeat": args.repeat,
        "input_build_s": build_s,
        "inputs": {k: str(v) for k, v in vars(inputs).items()},
        "otb_ram_mb": args.otb_ram,
        "max_rss_gib": bench.max_rss_gib,
        "machine": machine,
        "runs": {},
        "failed": {},
        "skipped": skipped,
        "targets": {
            "ratio_s2_chain_to_otb_mad_max": TARGET_RATIO,
            "s2_peak_rss_gib_max": round(TARGET_RSS_GIB, 3),
            "peak_rss_gib_max": round(TARGET_RSS_GIB, 3),
        },
    }
    for name, run in plan.items():  # one at a time: a full-size run needs the machine to itself
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            report["runs"][name] = median_of([run() for _ in range(args.repeat)])
        except RunFailed as exc:
            report["failed"][name] = str(exc)
            print(f"{name} failed: {exc}", file=sys.stderr, flush=True)
        report["summary"] = summarise(report["runs"])
        if args.json:  # after every run, so a long benchmark that is stopped keeps what it measured
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
    report["summary"] = summarise(report["runs"])
    print_table(report)
    return report


def _presets(names: str, sensor: str, list_presets: Any) -> list[str]:
    """``names`` (comma-separated, or "all": every preset of ``sensor``)."""
    if names.strip() == "all":
        return [p.name for p in list_presets(sensor)]
    return [n.strip() for n in names.split(",") if n.strip()]


if __name__ == "__main__":
    main()
