"""Fingerprints of product folders, to show that a refactoring leaves products unchanged.

``runs(tmp)`` runs every preset on the bundled pairs (the Paris S2 pair of ``make demo``,
the Sentinel-1 demo pair and a three-date S1 series built from it) and
``fingerprint(folder)`` reduces each product folder to plain data: pixels of every
raster and PNG as digests, polygons and the STAC Item as canonical JSON (timings, the
processing time and the software version left out). Floats are compared to 20 bits of
mantissa (about 6 significant digits), class maps and geometries exactly.

``tests/golden_products.json`` holds the fingerprints recorded before the change;
``python -m tests.golden`` records them again (only when a difference is intended and
explained in the commit).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import rasterio
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PARIS = REPO / "data" / "oscd-paris"
GOLDEN = Path(__file__).with_name("golden_products.json")

S2_PRESETS = ("s2-imad", "s2-cva", "s2-burn", "s2-water")
S1_PRESETS = ("s1-logratio", "s1-omnibus", "s1-flood", "s1-bright-targets")
#: Item properties that change from run to run (clock, machine, software version).
_VOLATILE = {"processing:datetime", "processing:software", "eowatch:timings_s"}
_VOLATILE_BLOCKWISE = {"stages_s", "read_thread_s", "apply_thread_s", "max_resident_windows"}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _rounded(values: np.ndarray) -> np.ndarray:
    """Floats to 20 bits of mantissa (NaN kept, -0 as 0)."""
    x = values.astype(np.float64)
    mantissa, exponent = np.frexp(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))
    out = np.ldexp(np.round(mantissa * 2.0**20) / 2.0**20, exponent) + 0.0
    out[np.isnan(x)] = np.nan
    out[np.isposinf(x)] = np.inf
    out[np.isneginf(x)] = -np.inf
    return out


def _array_digest(values: np.ndarray) -> str:
    if values.dtype.kind == "f":
        values = _rounded(values)
    return _digest(np.ascontiguousarray(values).tobytes())


def _raster(path: Path) -> dict[str, Any]:
    with rasterio.open(path) as ds:
        data = ds.read()
        colormap = None
        if ds.dtypes[0] == "uint8" and ds.count == 1:
            try:
                colormap = _digest(json.dumps(sorted(ds.colormap(1).items())).encode())
            except ValueError:
                colormap = None
        return {
            "dtype": ds.dtypes[0],
            "shape": list(data.shape),
            "crs": ds.crs.to_string() if ds.crs else None,
            "transform": [round(v, 9) for v in list(ds.transform)[:6]],
            "nodata": None if ds.nodata is None or np.isnan(ds.nodata) else ds.nodata,
            "descriptions": list(ds.descriptions),
            "tags": dict(sorted(ds.tags().items())),
            "colormap": colormap,
            "pixels": _array_digest(data),
        }


def _plain(value: Any) -> Any:
    """JSON values with floats rounded like the rasters."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(_rounded(np.array([value]))[0])
    return value


def _polygons(path: Path) -> dict[str, Any]:
    collection = json.loads(path.read_text())
    features = collection["features"]
    return {"count": len(features), "features": _digest(json.dumps(_plain(features)).encode())}


def _flatgeobuf(path: Path) -> dict[str, Any]:
    meta, _, geometry, fields = pyogrio.raw.read(path)
    ids = np.asarray(fields[list(meta["fields"]).index("id")])
    order = np.argsort(ids)
    columns = {
        name: [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in
               np.asarray(column, dtype=object)[order].tolist()]
        for name, column in zip(meta["fields"], fields, strict=True)
    }  # fmt: skip
    geoms = [bytes(g) for g in np.asarray(geometry, dtype=object)[order]]
    return {
        "count": len(ids),
        "fields": list(meta["fields"]),
        "columns": _digest(json.dumps(_plain(columns), default=str).encode()),
        "geometries": _digest(b"".join(geoms)),
    }


def _item(path: Path, roots: list[Path]) -> dict[str, Any]:
    text = path.read_text()
    for root in roots:
        text = text.replace(str(root), "<root>")
    item = json.loads(text)
    props = {k: v for k, v in item["properties"].items() if k not in _VOLATILE}
    blockwise = props.get("eowatch:metadata", {}).get("blockwise")
    if isinstance(blockwise, dict):
        props["eowatch:metadata"]["blockwise"] = {
            k: v for k, v in blockwise.items() if k not in _VOLATILE_BLOCKWISE
        }
    item["properties"] = props
    return _plain({k: item[k] for k in ("id", "geometry", "bbox", "properties", "assets", "links")})


def fingerprint(folder: Path, roots: list[Path]) -> dict[str, Any]:
    """Plain data describing every file of a product folder (see the module docstring)."""
    out: dict[str, Any] = {"run_id": folder.name}
    for path in sorted(folder.iterdir()):
        if path.suffix == ".tif":
            out[path.name] = _raster(path)
        elif path.suffix == ".png":
            pixels = np.asarray(Image.open(path).convert("RGB"))
            out[path.name] = {"shape": list(pixels.shape), "pixels": _array_digest(pixels)}
        elif path.suffix == ".geojson":
            out[path.name] = _polygons(path)
        elif path.suffix == ".fgb":
            out[path.name] = _flatgeobuf(path)
        elif path.name == "item.json":
            out[path.name] = _item(path, roots)
        else:
            out[path.name] = _digest(path.read_bytes())
    return out


def _s1_series_inputs(tmp: Path) -> tuple[Path, Path, Path]:
    from eowatch.demo_s1 import build_s1_demo

    demo = build_s1_demo(tmp / "s1")
    third = build_s1_demo(tmp / "s1-third", seed=20191011)
    later = tmp / "s1" / "s1demo_20191011_later.tif"
    shutil.copyfile(third.after, later)
    return demo.before, demo.after, later


def runs(tmp: Path, detect: Callable[..., Path], detect_series: Callable[..., Path]) -> dict[str, Path]:
    """Every preset on the bundled pairs; ``detect(before, after, preset, aoi, out)`` and
    ``detect_series(inputs, preset, out)`` run one pass and return its product folder."""
    folders: dict[str, Path] = {}
    aoi = str(PARIS / "paris.geojson")
    for preset in S2_PRESETS:
        folders[preset] = detect(PARIS / "imgs_1", PARIS / "imgs_2", preset, aoi, tmp / "out")
    before, after, later = _s1_series_inputs(tmp)
    for preset in S1_PRESETS:
        folders[preset] = detect(before, after, preset, None, tmp / "out")
    folders["s1-omnibus-series"] = detect_series([before, after, later], "s1-omnibus", tmp / "out")
    return folders


def current_runs(tmp: Path) -> dict[str, Path]:
    """``runs`` through today's library API."""
    from eowatch.pipeline import DetectRequest, SeriesRequest, detect_pair, detect_series
    from eowatch.settings import Settings

    def detect(before: Path, after: Path, preset: str, aoi: str | None, out: Path) -> Path:
        return detect_pair(
            DetectRequest(before, after, preset=preset, aoi=aoi), Settings(output_dir=out)
        ).folder

    def series(inputs: list[Path], preset: str, out: Path) -> Path:
        return detect_series(SeriesRequest(inputs, preset), Settings(output_dir=out)).folder

    return runs(tmp, detect, series)


def fingerprints(tmp: Path) -> dict[str, Any]:
    folders = current_runs(tmp)
    roots = [tmp.resolve(), tmp, REPO]
    return {name: fingerprint(folder, roots) for name, folder in folders.items()}


if __name__ == "__main__":  # python -m tests.golden [tmp folder]
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        GOLDEN.write_text(json.dumps(fingerprints(base), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
