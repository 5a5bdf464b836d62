"""Measure the ukis-csmask 6-band L1C ONNX cloud/shadow model on the OSCD cities.

The alternative to eowatch's own L1C masking (s2cloudless + geometric shadows, issue 15):
per city and date, the share of pixels that ukis-csmask classes cloud and shadow, its
runtime, and (with ``--eowatch-json``) eowatch's own cloud and shadow shares beside them.

ukis-csmask is NOT a project dependency: run this with a separate virtualenv, e.g.::

    python3 -m venv /tmp/csmask && /tmp/csmask/bin/pip install 'ukis-csmask[cpu]' rasterio numpy
    .venv/bin/eowatch evaluate /work/shared/data/s2_pairs/oscd --dataset oscd --json /tmp/eowatch_oscd.json
    OMP_NUM_THREADS=1 /tmp/csmask/bin/python benchmarks/measure_ukis_csmask.py \\
        /work/shared/data/s2_pairs/oscd --eowatch-json /tmp/eowatch_oscd.json --out /tmp/csmask_out \\
        --quicklook paris/imgs_2 --quicklook beirut/imgs_1

Input as the package expects it (``ukis_csmask.mask.CSmask``): float32 TOA reflectance
(DN / 10000), bands blue, green, red, nir, swir16, swir22 = B02 B03 B04 B08 B11 B12,
all on the 10 m B02 grid (20 m bands bilinear); the model tiles internally (256 px,
20 % overlap). The README recommends about 30 m, so each date is also run on a grid
3 times coarser (all bands averaged); below 256 px a side (every 30 m grid but beirut's)
the package pads the image symmetrically to one tile and warns (silenced here).
Classes: 0 clear, 1 cloud, 2 shadow. Single threaded (onnxruntime intra/inter-op
threads 1). Writes ``ukis_csmask_oscd.json`` and,
for ``--quicklook city/date``, a PNG (true colour | ukis 10 m mask over it | ukis 30 m
mask: cloud magenta, shadow cyan) and the two class maps (npz) in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.errors import NotGeoreferencedWarning
from rasterio.warp import Resampling, reproject

BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
BAND_ORDER = ["blue", "green", "red", "nir", "swir16", "swir22"]
DATES = ("imgs_1", "imgs_2")
ROLES = {"imgs_1": "before", "imgs_2": "after"}
CLOUD, SHADOW = 1, 2


def band_path(folder: Path, band: str) -> Path:
    (path,) = folder.glob(f"*_{band}.tif")
    return path


def read_stack(folder: Path, factor: int) -> np.ndarray:
    """The 6 bands as reflectance (rows, cols, 6) on the B02 grid made ``factor`` times coarser."""
    with rasterio.open(band_path(folder, "B02")) as ref:
        crs, t, height, width = ref.crs, ref.transform, ref.height, ref.width
    rows, cols = -(-height // factor), -(-width // factor)
    dst_t = t * Affine.scale(width / cols, height / rows)
    method = Resampling.bilinear if factor == 1 else Resampling.average
    stack = np.zeros((rows, cols, len(BANDS)), dtype=np.float32)
    for i, band in enumerate(BANDS):
        with rasterio.open(band_path(folder, band)) as src:
            out = np.zeros((rows, cols), dtype=np.float32)
            reproject(rasterio.band(src, 1), out, dst_transform=dst_t, dst_crs=crs, resampling=method)
        stack[:, :, i] = out / 10000.0
    return stack


def run_model(stack: np.ndarray) -> tuple[np.ndarray, float]:
    """ukis-csmask classes (rows, cols) and seconds (session load + inference)."""
    from ukis_csmask.mask import CSmask

    start = time.perf_counter()
    with warnings.catch_warnings():  # "smaller than the internal tiling size": it pads, see docstring
        warnings.filterwarnings("ignore", "Your input image is smaller", UserWarning)
        csm = CSmask(
            img=stack,
            band_order=BAND_ORDER,
            product_level="l1c",
            intra_op_num_threads=1,
            inter_op_num_threads=1,
            providers=["CPUExecutionProvider"],
        ).csm[:, :, 0]
    return csm, time.perf_counter() - start


def session_load_s() -> float:
    """Seconds to create the 6-band L1C onnxruntime session alone (included in each run)."""
    import onnxruntime
    import ukis_csmask

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    model = Path(ukis_csmask.__file__).parent / "model_6b_l1c.onnx"
    start = time.perf_counter()
    onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return time.perf_counter() - start


def eowatch_fractions(path: Path | None) -> dict[tuple[str, str], dict[str, float]]:
    """(city, date) -> eowatch cloud/shadow fractions from an ``eowatch evaluate --json`` file."""
    if path is None:
        return {}
    out = {}
    for row in json.loads(path.read_text())["masking"]:
        for date, role in ROLES.items():
            masked = row[role]
            out[row["name"], date] = {
                "cloud": masked.get("cloud_fraction", 0.0),
                "shadow": masked.get("shadow_fraction", 0.0),
            }
    return out


def upsample(csm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A coarse class map on a finer grid of the same bounds (nearest)."""
    r = np.minimum(np.arange(shape[0]) * csm.shape[0] // shape[0], csm.shape[0] - 1)
    c = np.minimum(np.arange(shape[1]) * csm.shape[1] // shape[1], csm.shape[1] - 1)
    return csm[np.ix_(r, c)]


def quicklook(stack: np.ndarray, masks: list[np.ndarray], path: Path) -> None:
    """PNG: true colour (B04 B03 B02, 2-98 % stretch) | the same under each class map
    (nearest to the 10 m grid): cloud magenta, shadow cyan."""
    rgb = stack[:, :, [2, 1, 0]]
    lo, hi = np.percentile(rgb, (2, 98))
    rgb = np.clip((rgb - lo) / max(hi - lo, 1e-6), 0, 1)
    gap = np.ones((rgb.shape[0], 4, 3))
    panels = [rgb]
    for csm in masks:
        csm = upsample(csm, rgb.shape[:2])
        over = rgb.copy()
        for cls, colour in ((CLOUD, (1.0, 0.0, 1.0)), (SHADOW, (0.0, 1.0, 1.0))):
            over[csm == cls] = 0.45 * over[csm == cls] + 0.55 * np.asarray(colour)
        panels += [gap, over]
    image = (np.concatenate(panels, axis=1) * 255).round().astype(np.uint8)
    with warnings.catch_warnings():  # a PNG quicklook has no georeference, by design
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(
            path, "w", driver="PNG", width=image.shape[1], height=image.shape[0], count=3, dtype="uint8"
        ) as dst:
            dst.write(np.moveaxis(image, -1, 0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="OSCD folder: <root>/<city>/imgs_1|imgs_2/*_B??.tif")
    parser.add_argument(
        "--eowatch-json", type=Path, help="output of `eowatch evaluate --dataset oscd --json`"
    )
    parser.add_argument("--out", type=Path, default=Path("/tmp/csmask_out"))
    parser.add_argument("--quicklook", action="append", default=[], help="city/date, e.g. paris/imgs_2")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    eowatch = eowatch_fractions(args.eowatch_json)
    load_s = session_load_s()
    rows: list[dict[str, Any]] = []
    header = f"{'city':12s} {'date':6s} {'ukis10 cl%':>10s} {'sh%':>6s} {'ukis30 cl%':>10s} {'sh%':>6s}"
    print(f"{header} {'eow cl%':>8s} {'sh%':>6s} {'10m s':>6s} {'30m s':>6s}")
    for city in sorted(p for p in args.root.iterdir() if (p / "imgs_1").is_dir()):
        for date in DATES:
            row: dict[str, Any] = {"city": city.name, "date": date}
            stacks, masks = [], []
            for factor, res in ((1, "10m"), (3, "30m")):
                stacks.append(read_stack(city / date, factor))
                csm, seconds = run_model(stacks[-1])
                masks.append(csm)
                row[res] = {
                    "shape": list(csm.shape),
                    "cloud": float((csm == CLOUD).mean()),
                    "shadow": float((csm == SHADOW).mean()),
                    "seconds": round(seconds, 3),
                }
            if f"{city.name}/{date}" in args.quicklook:
                quicklook(stacks[0], masks, args.out / f"ukis_{city.name}_{date}.png")
                np.savez_compressed(
                    args.out / f"ukis_{city.name}_{date}.npz", csm_10m=masks[0], csm_30m=masks[1]
                )
            if (city.name, date) in eowatch:
                row["eowatch"] = eowatch[city.name, date]
            rows.append(row)
            e = row.get("eowatch", {"cloud": float("nan"), "shadow": float("nan")})
            a, b = row["10m"], row["30m"]
            print(
                f"{city.name:12s} {date:6s} {100 * a['cloud']:10.2f} {100 * a['shadow']:6.2f} "
                f"{100 * b['cloud']:10.2f} {100 * b['shadow']:6.2f} {100 * e['cloud']:8.2f} "
                f"{100 * e['shadow']:6.2f} {a['seconds']:6.2f} {b['seconds']:6.2f}"
            )
    result = {"model": "ukis-csmask model_6b_l1c", "session_load_s": round(load_s, 3), "rows": rows}
    (args.out / "ukis_csmask_oscd.json").write_text(json.dumps(result, indent=1))
    print(f"session load {load_s:.2f} s (included in each run); written {args.out / 'ukis_csmask_oscd.json'}")


if __name__ == "__main__":
    main()
