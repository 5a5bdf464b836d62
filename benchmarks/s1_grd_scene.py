"""Full-scene Sentinel-1 GRD benchmark: one IW GRDH pair, both polarisations, GRD ->
gamma0 RTC at 20 m -> ``s1-flood`` products, beside Orfeo ToolBox's calibration +
orthorectification of the same four images, in the same run.

Inputs (made once under ``--work``, then reused): the real S1A IW GRDH 1SDV product of
``../shared/data/scenes/s1_safe_metadata`` (25931 x 16854 px per polarisation, real
annotation / calibration / noise, VV and VH) with measurements written like real ones
(``tests/io/s1_safe_copy.measured_safe``: uint16, GCPs, TIFF tags) whose DN are made up:
a textured sigma0 (about -12 dB VV, -19 dB VH) with Gamma(4.4) speckle, and on the second
date dark (flooded) discs; a synthetic DEM (smooth random relief 0-1200 m, 3 arc-seconds,
heights above EGM96) over the scene, since no real DEM of the scene is in the shared data.

Usage::

    python benchmarks/s1_grd_scene.py [--work out/bench/s1_grd] [--skip-otb] [--crop ROWS COLS]
        [--json out/bench/s1_grd.json]

``--crop`` limits every run to the central ROWS x COLS radar pixels (a quick check of the
harness); the figures of the issue are without it. Prints wall, CPU and peak memory of
each run and the ratio of eowatch's whole chain to OTB's calibration + orthorectification.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from full_scene import measure  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
PRODUCT = "S1A_IW_GRDH_1SDV_20210119T031653_20210119T031718_036201_043ED0_8255"
AFTER = PRODUCT.replace("20210119T03", "20210131T03")
RESOLUTION = 20.0
MAX_RSS_GIB = 3.0  # the bar


def _dn_source(safe: Path, pol: str, flooded: bool, seed: int):  # type: ignore[no-untyped-def]
    """DN(rows, cols) of one polarisation: sigma0 texture x speckle through the product's LUTs."""
    from eowatch.io.s1_safe import open_grd
    from eowatch.kernels.sar_calibration import interpolate_lut
    from tests.io.s1_grd_synth import noise_power

    band = open_grd(str(safe)).bands[pol]
    cal = band.calibration["sigma0"]
    base = 0.063 if pol in ("vv", "hh") else 0.0126  # -12 dB / -19 dB
    rng = np.random.default_rng(seed)
    discs = [(rng.uniform(0, band.annotation.height), rng.uniform(0, band.annotation.width), rng.uniform(200, 900))
             for _ in range(40)]  # fmt: skip

    def dn(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        r = np.broadcast_to(rows, np.broadcast_shapes(rows.shape, cols.shape))
        c = np.broadcast_to(cols, r.shape)
        rr, cc = r[:, 0].astype(np.float64), c[0].astype(np.float64)
        texture = 1 + 0.4 * np.sin(rr[:, None] / 300.0) * np.cos(cc[None, :] / 410.0)
        sigma0 = base * texture
        if flooded:
            for y, x, radius in discs:
                if abs(rr[0] - y) < radius + r.shape[0] and abs(cc[0] - x) < radius + r.shape[1]:
                    inside = (rr[:, None] - y) ** 2 + (cc[None, :] - x) ** 2 < radius**2
                    sigma0 = np.where(inside, 0.002, sigma0)
        block_rng = np.random.default_rng([seed, int(rr[0]), int(cc[0])])
        sigma0 = sigma0 * block_rng.gamma(4.4, 1 / 4.4, sigma0.shape)
        amp = interpolate_lut(cal.lines, cal.pixels, cal.values, rr, cc)
        value = np.sqrt(sigma0 * amp * amp + noise_power(band, rr, cc))
        return np.clip(np.round(value), 1, 65535).astype(np.uint16)

    return dn


def _extract(work: Path) -> Path:
    src = work / "metadata"
    if not (src / f"{PRODUCT}.SAFE" / "manifest.safe").is_file():
        with zipfile.ZipFile(SHARED / "scenes" / "s1_safe_metadata" / f"{PRODUCT}.zip") as z:
            z.extractall(src)
    return src / f"{PRODUCT}.SAFE"


def _product(work: Path, name: str, flooded: bool, window: tuple[int, int, int, int] | None) -> Path:
    from tests.io.s1_safe_copy import measured_safe

    target = work / "inputs" / f"{name}.SAFE"
    if (target / "done").is_file():
        return target
    shutil.rmtree(target, ignore_errors=True)
    src = _extract(work)
    staging = work / "inputs" / f".{name}"
    shutil.rmtree(staging, ignore_errors=True)
    sources = {pol: _dn_source(src, pol, flooded, 7 + k + 100 * flooded) for k, pol in enumerate(("vv", "vh"))}
    written = measured_safe(src, staging, sources, window)
    written.rename(target)
    shutil.rmtree(staging, ignore_errors=True)
    if flooded:
        manifest = target / "manifest.safe"
        manifest.write_text(manifest.read_text().replace("2021-01-19", "2021-01-31"))
    (target / "done").write_text("")
    return target


def _dem(work: Path, safe: Path) -> Path:
    """Smooth random relief (0-1200 m above EGM96), 3 arc-seconds, over the scene + 0.1 deg."""
    import rasterio
    from affine import Affine
    from scipy.ndimage import gaussian_filter

    dest = work / "dem" / "synthetic_dem.tif"
    if dest.is_file():
        return dest
    from eowatch.io.s1_safe import open_grd

    lon0, lat0, lon1, lat1 = open_grd(str(safe)).bbox
    step = 3 / 3600
    lon0, lat0, lon1, lat1 = lon0 - 0.1, lat0 - 0.1, lon1 + 0.1, lat1 + 0.1
    width, height = math.ceil((lon1 - lon0) / step), math.ceil((lat1 - lat0) / step)
    noise = np.random.default_rng(3).standard_normal((height, width)).astype(np.float32)
    relief = gaussian_filter(noise, 40)
    relief = (relief - relief.min()) / (relief.max() - relief.min()) * 1200.0
    dest.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32", crs="EPSG:9707",
                   transform=Affine(step, 0, lon0, 0, -step, lat1), tiled=True, compress="deflate", nodata=-32768)  # fmt: skip
    with rasterio.open(dest, "w", **profile) as ds:
        ds.write(relief[None])
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "out" / "bench" / "s1_grd")
    parser.add_argument("--skip-otb", action="store_true")
    parser.add_argument("--crop", type=int, nargs=2, metavar=("ROWS", "COLS"), default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    work = args.work.resolve()
    t0 = time.perf_counter()
    window = None
    if args.crop:
        src = _extract(work)
        from eowatch.io.s1_safe import open_grd

        a = next(iter(open_grd(str(src)).bands.values())).annotation
        rows, cols = args.crop
        r0, c0 = (a.height - rows) // 2, (a.width - cols) // 2
        window = (r0, r0 + rows, c0, c0 + cols)
        work = work / f"crop_{rows}x{cols}"
    before = _product(work, PRODUCT, False, window)
    after = _product(work, AFTER, True, window)
    dem = _dem(work, before)
    print(f"inputs ready in {time.perf_counter() - t0:.0f} s under {work}", file=sys.stderr)
    runs: dict[str, Any] = {}
    out = work / "runs"
    shutil.rmtree(out, ignore_errors=True)
    aoi = _crop_aoi(before, window) if window else None
    cmd = [str(REPO / ".venv" / "bin" / "eowatch"), "detect", "--before", str(before), "--after", str(after),
           "--preset", "s1-flood", "--resolution", str(RESOLUTION), "--dem", str(dem), "--calibration",
           "gamma0-rtc", "--out", str(out / "eowatch"), "--quiet"] + (["--aoi", aoi] if aoi else [])  # fmt: skip
    env = {"EOWATCH_ARD_DIR": str(out / "ard"), "EOWATCH_OUTPUT_DIR": str(out)}
    runs["eowatch_s1_flood"] = measure(cmd, work / "logs" / "eowatch.log", env, MAX_RSS_GIB * 1.5)
    item = json.loads(next((out / "eowatch").glob("*/item.json")).read_text())
    runs["eowatch_s1_flood"]["stages_s"] = item["properties"]["eowatch:timings_s"]
    runs["eowatch_s1_flood"]["grid"] = item["properties"]["proj:shape"]
    if not args.skip_otb:
        props = item["properties"]
        t, (height, width) = props["proj:transform"], props["proj:shape"]
        grid = [props["proj:code"].split(":")[1], str(t[2]), str(t[5]), str(width), str(height), str(t[0])]
        runs["otb"] = _otb(before, after, dem, out / "otb", work, window, grid)
    summary: dict[str, Any] = {"runs": runs, "resolution_m": RESOLUTION, "crop": args.crop}
    ours = runs["eowatch_s1_flood"]
    if "otb" in runs:
        summary["ratio_eowatch_chain_to_otb_cal_ortho"] = round(ours["wall_s"] / runs["otb"]["wall_s"], 3)
    summary["peak_rss_bar_gib"] = MAX_RSS_GIB
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


def _crop_aoi(safe: Path, window: tuple[int, int, int, int]) -> str:
    """The lon/lat bbox inside the measured window (its geolocation grid points)."""
    from eowatch.io.s1_safe import open_grd

    g = next(iter(open_grd(str(safe)).bands.values())).annotation.grid
    r0, r1, c0, c1 = window
    from scipy.interpolate import LinearNDInterpolator

    lon = LinearNDInterpolator(g[:, :2], g[:, 3])
    lat = LinearNDInterpolator(g[:, :2], g[:, 2])
    corners = [(r0 + 0.1 * (r1 - r0), c0 + 0.1 * (c1 - c0)), (r1 - 0.1 * (r1 - r0), c1 - 0.1 * (c1 - c0)),
               (r0 + 0.1 * (r1 - r0), c1 - 0.1 * (c1 - c0)), (r1 - 0.1 * (r1 - r0), c0 + 0.1 * (c1 - c0))]  # fmt: skip
    xs = [float(lon(*p)) for p in corners]
    ys = [float(lat(*p)) for p in corners]
    xs.sort()
    ys.sort()
    return f"{xs[1]},{ys[1]},{xs[2]},{ys[2]}"  # the inner box of the (rotated) window


def _otb(before: Path, after: Path, dem: Path, out: Path, work: Path, window: tuple[int, int, int, int] | None,
         grid: list[str]) -> dict[str, Any]:  # fmt: skip
    """OTB's calibration (sigma0, noise removed) and orthorectification (DEM + EGM96, onto
    eowatch's grid ``grid`` = EPSG ULX ULY WIDTH HEIGHT SPACING) of each polarisation of both
    dates, one child each; wall and CPU summed, peak the max."""
    total: dict[str, Any] = {"wall_s": 0.0, "cpu_s": 0.0, "peak_rss_gib": 0.0, "runs": []}
    for safe in (before, after):
        for pol in ("vv", "vh"):
            cmd = [sys.executable, str(REPO / "benchmarks" / "otb_s1.py"), "--safe", str(safe), "--out",
                   str(out / f"{safe.stem}_{pol}"), "--pol", pol, "--dem", str(dem.parent), "--grid", *grid,
                   "--grid-spacing", str(RESOLUTION)]  # fmt: skip
            if window:
                r0, r1, c0, c1 = window
                cmd += ["--box", str(c0), str(r0), str(c1 - c0), str(r1 - r0)]
            figures = measure(cmd, work / "logs" / f"otb_{safe.stem}_{pol}.log")
            total["wall_s"] = round(total["wall_s"] + figures["wall_s"], 2)
            total["cpu_s"] = round(total["cpu_s"] + figures["cpu_s"], 2)
            total["peak_rss_gib"] = max(total["peak_rss_gib"], figures["peak_rss_gib"])
            total["runs"].append({"product": safe.stem, "pol": pol, **figures})
            shutil.rmtree(out / f"{safe.stem}_{pol}", ignore_errors=True)  # 2 GB of float32 each
    return total


if __name__ == "__main__":
    raise SystemExit(main())
