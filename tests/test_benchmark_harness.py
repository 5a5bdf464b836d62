"""The full-scene benchmark harness, on a small scene: it builds real inputs,
runs the real CLI (and OTB when installed) in child processes and reports
figures that make sense."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "benchmarks" / "full_scene.py"
SIZE = 1024


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    work = tmp_path_factory.mktemp("bench")
    only = "s2,s1,otb" if shutil.which("otbcli_MultivariateAlterationDetector") else "s2,s1"
    json_path = work / "report.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            "--work",
            str(work),
            "--size",
            str(SIZE),
            "--only",
            only,
            "--s1-presets",
            "s1-flood",
            "--otb-ram",
            "128",
            "--json",
            str(json_path),
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wall s" in proc.stdout  # the printed table
    return json.loads(json_path.read_text()), work


def test_inputs_are_tiled_cogs_at_native_resolutions(report: tuple[dict, Path]) -> None:
    data, work = report
    b02 = next((work / "inputs" / "imgs_1").glob("*_B02.tif"))
    b11 = next((work / "inputs" / "imgs_1").glob("*_B11.tif"))
    with rasterio.open(b02) as ds:
        assert (ds.width, ds.height, ds.res) == (SIZE, SIZE, (10.0, 10.0))
        assert ds.block_shapes[0] == (512, 512) and ds.overviews(1)
        assert ds.compression.name.lower() == "deflate"
        assert ds.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert ds.read(1).std() > 0  # real imagery, not a constant
    with rasterio.open(b11) as ds:
        assert (ds.width, ds.res) == (SIZE // 2, (20.0, 20.0))
    with rasterio.open(data["inputs"]["s1_before"]) as ds:
        assert ds.count == 2 and [d.upper() for d in ds.descriptions] == ["VV", "VH"]
        assert ds.tags()["units"] == "dB" and (ds.width, ds.height) == (SIZE, SIZE)
        vv = ds.read(1)
        # Mirrored tiling: the copy next to the 512 px chip is its reflection, so edges match.
        assert np.array_equal(vv[:, 511], vv[:, 512]) and -40 < float(np.nanmedian(vv)) < 0
    with rasterio.open(data["inputs"]["otb_before"]) as ds:
        assert ds.count == 4 and (ds.width, ds.height) == (SIZE, SIZE)


def test_report_has_sane_figures_per_run(report: tuple[dict, Path]) -> None:
    data, _ = report
    runs = data["runs"]
    assert {"s2", "s1-flood"} <= set(runs)
    for name, run in runs.items():
        assert 0 < run["wall_s"] < 300, name
        assert run["cpu_s"] > 0.1, name  # a child that did nothing would show ~0
        assert 0.05 < run["peak_rss_gib"] < 8, name
        assert len(run["load_before"]) == 3
    for name in ("s2", "s1-flood"):
        stages = runs[name]["stages_s"]
        # The in-memory chain times "read"; the windowed one reads inside "windows" (fit + apply per window).
        assert {"detect", "write"} <= set(stages)
        assert "read" in stages or {"fit", "windows"} <= set(stages)
        # fit/windows/regions are parts of detect, write_* parts of write
        top_level = [v for k, v in stages.items() if k not in ("fit", "windows", "regions") and "_" not in k]
        assert sum(top_level) <= runs[name]["wall_s"]  # stages happen inside the child's lifetime
        assert runs[name]["status"] == "ok"
    assert runs["s2"]["preset"] == "s2-imad" and runs["s1-flood"]["preset"] == "s1-flood"
    if "blockwise" in runs["s2"]:
        assert runs["s2"]["blockwise"]["windows"] >= 1 and runs["s2"]["blockwise"]["read_thread_s"] > 0
    machine = data["machine"]
    assert machine["cores_available"] >= 1 and machine["mem_total_gib"] > 0
    assert data["summary"]["s2_peak_rss_target_met"] in (True, False)


def test_otb_mad_runs_on_the_same_four_bands(report: tuple[dict, Path]) -> None:
    data, work = report
    if "otb" not in data["runs"]:
        pytest.skip("otbcli_MultivariateAlterationDetector is not installed (scripts/setup_bench.sh)")
    assert data["runs"]["otb"]["ram_mb"] == 128
    with rasterio.open(work / "runs" / "otb" / "mad.tif") as ds:
        assert ds.count == 4 and (ds.width, ds.height) == (SIZE, SIZE)
    ratio = data["summary"]["ratio_s2_chain_to_otb_mad"]
    assert ratio == pytest.approx(data["runs"]["s2"]["wall_s"] / data["runs"]["otb"]["wall_s"], rel=1e-2)


def test_dask_runs_are_measured_or_skipped_with_a_reason(tmp_path: Path) -> None:
    sys.path.insert(0, str(HARNESS.parent))
    try:
        from full_scene import dask_support
    finally:
        sys.path.remove(str(HARNESS.parent))
    from eowatch.settings import Settings

    why = dask_support()
    assert (why is None) == ("scene_executor" in Settings.model_fields)
    if why is not None:
        assert "scene_executor" in why


def test_memory_guard_stops_a_run_that_does_not_fit(tmp_path: Path) -> None:
    sys.path.insert(0, str(HARNESS.parent))
    try:
        from full_scene import RunFailed, measure
    finally:
        sys.path.remove(str(HARNESS.parent))
    hog = [sys.executable, "-c", "import numpy, time; a = numpy.ones(2**28); time.sleep(30)"]  # 2 GiB
    start = time.perf_counter()
    with pytest.raises(RunFailed, match="memory guard"):
        measure(hog, tmp_path / "hog.log", max_rss_gib=0.5)
    assert time.perf_counter() - start < 20  # killed, not waited for
    fine = measure([sys.executable, "-c", "pass"], tmp_path / "ok.log", max_rss_gib=0.5)
    assert fine["peak_rss_gib"] < 0.5 and fine["wall_s"] < 20
