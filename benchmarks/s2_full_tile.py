"""Full Sentinel-2 tile benchmark: a 10980 x 10980 pair through the whole chain.

Inputs are built from the bundled real Paris pair (OSCD), tiled to the size of
an MGRS tile at each band's native resolution (10 m: 10980 px, 20 m: 5490,
60 m: 1830) on the UTM grid of tile T31UDQ, written as tiled DEFLATE GeoTIFFs
like the archive's COGs. Prints wall time, CPU time, peak resident memory and
the per-stage breakdown, and writes the same as JSON.

    .venv/bin/python benchmarks/s2_full_tile.py --work /tmp/eowatch-bench [--preset s2-imad]
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import Resampling

REPO = Path(__file__).resolve().parents[1]
PAIR = REPO / "data" / "oscd-paris"
TILE_PX_10M = 10980
RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
       "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}  # fmt: skip
ORIGIN = (399960.0, 5400000.0)  # T31UDQ upper-left corner


def build_inputs(work: Path, bands: list[str]) -> tuple[Path, Path]:
    dates = {}
    for date_dir in ("imgs_1", "imgs_2"):
        out = work / date_dir
        out.mkdir(parents=True, exist_ok=True)
        for band in bands:
            dest = out / f"T31UDQ_{'20161130' if date_dir == 'imgs_1' else '20171107'}_{band}.tif"
            if dest.exists():
                continue
            src = next((PAIR / date_dir).glob(f"*_{band}.tif"))
            size = TILE_PX_10M * 10 // RES[band]
            with rasterio.open(src) as ds:
                # Read at the band's own pixel count per 10 m tile of the Paris chip, then repeat.
                h, w = ds.height, ds.width
                chip = ds.read(1)
            reps = (-(-size // h), -(-size // w))
            # Mirror alternate copies so edges meet without seams that look like change.
            row = np.concatenate([chip if i % 2 == 0 else chip[:, ::-1] for i in range(reps[1])], axis=1)
            full = np.concatenate([row if j % 2 == 0 else row[::-1] for j in range(reps[0])], axis=0)
            full = full[:size, :size]
            res = RES[band]
            profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16", crs="EPSG:32631",
                           transform=Affine(res, 0, ORIGIN[0], 0, -res, ORIGIN[1]), nodata=0, tiled=True,
                           blockxsize=512, blockysize=512, compress="DEFLATE", predictor=2)  # fmt: skip
            with rasterio.open(dest, "w", **profile) as ds:
                ds.write(full, 1)
                ds.build_overviews([2, 4, 8, 16], Resampling.average)
        dates[date_dir] = out
    return dates["imgs_1"], dates["imgs_2"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/eowatch-bench"))
    parser.add_argument("--preset", default="s2-imad")
    parser.add_argument(
        "--cloud-mask", default="none", help="auto, s2cloudless or none"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from eowatch.detect import get_preset, parse_params
    from eowatch.io.masks import S2CLOUDLESS_BANDS
    from eowatch.pipeline import DetectRequest, detect_pair
    from eowatch.settings import Settings

    params = {"cloud_mask": args.cloud_mask}
    preset = get_preset(args.preset)
    bands = list(preset.bands(parse_params(preset, params)))
    if args.cloud_mask != "none":
        bands = sorted(set(bands) | set(S2CLOUDLESS_BANDS))
    t0 = time.perf_counter()
    before, after = build_inputs(args.work / "inputs", bands)
    build_s = time.perf_counter() - t0

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    run = detect_pair(
        DetectRequest(before, after, args.preset, params), Settings(output_dir=args.work / "out")
    )
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    figures = {
        "preset": args.preset,
        "pixels": run.result.grid.width * run.result.grid.height,
        "wall_s": round(wall, 2),
        "cpu_s": round((cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime), 2),
        "peak_rss_gib": round(cpu1.ru_maxrss / 1024**2, 2),
        "stages_s": run.item.properties["eowatch:timings_s"],
        "polygons": len(run.features),
        "changed_fraction": round(float(run.result.changed.mean()), 5),
        "input_build_s": round(build_s, 1),
        # Windowed runs: windows, sample, most windows in flight, summed thread-seconds
        # (EOWATCH_SCENE_WORKERS / EOWATCH_SCENE_EXECUTOR / EOWATCH_SCENE_WINDOWED choose the engine).
        "blockwise": run.result.metadata.get("blockwise"),
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
