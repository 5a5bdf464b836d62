"""The georeferenced Sentinel-1 demo: a real scene as "before", an "after"
made from it with documented injected changes.

Source: the real Sen1Floods11 ``Spain_7370579_S1Hand`` chip (Sentinel-1 VV/VH
backscatter in dB, EPSG:4326, 512 x 512 pixels of ~10 m, acquired 2019-09-17,
relative orbit 110 descending), kept compressed in ``data/s1-demo/`` with its
attribution.

Construction (deterministic, ``seed``):

1. ``after`` = the source with three rectangles changed in linear power
   (:data:`INJECTED_CHANGES`): a flooded field set to open-water levels
   (VV -22 dB, VH -28 dB), a new bright target (+12 dB) and a cleared area
   (-6 dB).
2. Both dates are multiplied by an independent unit-mean Gamma(L, 1/L) speckle
   realisation (L = :data:`DEMO_ENL`, the ENL of IW GRDH). Re-speckling *both*
   dates (not only "after") keeps them statistically alike: otherwise "after"
   would be noisier than "before" and its dB values biased by
   ``10 log10`` of the speckle (-0.5 dB at L = 4.4), which thresholds would
   read as change. "before" is therefore the real scene with fresh speckle.
3. Both are written as two-band (VV, VH) float32 dB GeoTIFFs with a ``units=dB``
   tag; the rectangles are written as GeoJSON (``injected_changes.geojson``)
   with their pixel windows and the class each preset should find there.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputReadError
from .io.rasters import read_float_raster, write_float_raster

__all__ = [
    "DemoS1",
    "INJECTED_CHANGES",
    "DEMO_ENL",
    "DEMO_SEED",
    "SOURCE_NAME",
    "default_source",
    "build_s1_demo",
    "install_source",
]

SOURCE_NAME = "Spain_7370579_S1Hand.tif"
DEMO_ENL = 4.4
DEMO_SEED = 20190917
BEFORE_NAME = "s1demo_20190917_before.tif"
AFTER_NAME = "s1demo_20190929_after.tif"
CHANGES_NAME = "injected_changes.geojson"

#: name -> (row0, row1, col0, col1), what is done, and the class expected there.
#: ``set_db`` replaces the values (VV, VH); ``delta_db`` adds to both bands.
INJECTED_CHANGES: dict[str, dict[str, Any]] = {
    "flood": {
        "window": (384, 448, 64, 160),
        "set_db": (-22.0, -28.0),
        "expected": "decrease",
        "presets": ["s1-flood", "s1-logratio", "s1-omnibus"],
    },
    "bright_target": {
        "window": (420, 436, 400, 416),
        "delta_db": 12.0,
        "expected": "increase",
        "presets": ["s1-bright-targets", "s1-logratio", "s1-omnibus"],
    },
    "cleared": {
        "window": (320, 368, 256, 320),
        "delta_db": -6.0,
        "expected": "decrease",
        "presets": ["s1-logratio", "s1-omnibus"],
    },
}

_ATTRIBUTION = """# Sentinel-1 demo scene

`Spain_7370579_S1Hand.tif`: Sentinel-1 VV/VH backscatter (dB, float32, EPSG:4326,
512 x 512 pixels, acquired 2019-09-17, relative orbit 110 descending), copied
unchanged (recompressed) from the Sen1Floods11 dataset sample
(GitHub `cloudtostreet/Sen1Floods11`, commit `b9e460dabe70230111a3c3d36cd0c5ce03606ee9`,
`sample/S1/Spain_7370579_S1Hand.tif`).

* Bonafilia, D., Tellman, B., Anderson, T., Issenberg, E. (2020). Sen1Floods11: a
  georeferenced dataset to train and test deep learning flood algorithms for
  Sentinel-1. CVPR Workshops 2020.
* Contains modified Copernicus Sentinel data 2019.

`eowatch.demo_s1.build_s1_demo` makes the demo "before" and "after" dates from it
(documented injected changes and fresh speckle); no labels are stored here.
"""


@dataclass(frozen=True)
class DemoS1:
    """Paths of a built demo."""

    before: Path
    after: Path
    changes: Path


def default_source() -> Path:
    """``data/s1-demo/Spain_7370579_S1Hand.tif`` of a source checkout."""
    return Path(__file__).resolve().parents[2] / "data" / "s1-demo" / SOURCE_NAME


def install_source(original: Path, dest_dir: Path) -> Path:
    """Copy the Sen1Floods11 chip (recompressed, values unchanged) and its
    ATTRIBUTION.md into ``dest_dir`` (how ``data/s1-demo`` was made)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    data, profile, descriptions = _read(Path(original))
    write_float_raster(dest_dir / SOURCE_NAME, data, profile, descriptions)
    (dest_dir / "ATTRIBUTION.md").write_text(_ATTRIBUTION, encoding="utf-8")
    return dest_dir / SOURCE_NAME


def build_s1_demo(out_dir: Path, source: Path | None = None, seed: int = DEMO_SEED) -> DemoS1:
    """Write the demo pair and the injected-change GeoJSON into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    src = Path(source) if source is not None else default_source()
    db, profile, descriptions = _read(src)
    if db.shape[0] != 2:
        raise InputReadError(f"{src} must have two bands (VV, VH); it has {db.shape[0]}")
    linear = np.power(10.0, db.astype(np.float64) / 10.0)
    changed = linear.copy()
    for spec in INJECTED_CHANGES.values():
        r0, r1, c0, c1 = spec["window"]
        if "set_db" in spec:
            for band, value in enumerate(spec["set_db"]):
                changed[band, r0:r1, c0:c1] = 10.0 ** (value / 10.0)
        else:
            changed[:, r0:r1, c0:c1] *= 10.0 ** (spec["delta_db"] / 10.0)
    rng = np.random.default_rng(seed)
    before = linear * rng.gamma(DEMO_ENL, 1.0 / DEMO_ENL, linear.shape)
    after = changed * rng.gamma(DEMO_ENL, 1.0 / DEMO_ENL, linear.shape)
    tags = {"units": "dB", "eowatch_demo": f"seed={seed}, speckle ENL={DEMO_ENL}"}
    out = DemoS1(out_dir / BEFORE_NAME, out_dir / AFTER_NAME, out_dir / CHANGES_NAME)
    write_float_raster(out.before, _to_db(before), profile, descriptions, tags)
    write_float_raster(out.after, _to_db(after), profile, descriptions, tags)
    out.changes.write_text(json.dumps(_changes_geojson(profile["transform"]), indent=1), encoding="utf-8")
    attribution = src.parent / "ATTRIBUTION.md"
    if attribution.exists() and attribution.resolve() != (out_dir / "ATTRIBUTION.md").resolve():
        shutil.copyfile(attribution, out_dir / "ATTRIBUTION.md")
    return out


def _to_db(x: NDArray[np.float64]) -> NDArray[np.float32]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (10.0 * np.log10(np.maximum(x, 1e-5))).astype(np.float32)


def _read(path: Path) -> tuple[NDArray[np.float32], dict[str, Any], tuple[str, ...]]:
    return read_float_raster(path, "the S1 demo source (it ships in data/s1-demo of the source checkout)")


def _changes_geojson(transform: Any) -> dict[str, Any]:
    features = []
    for name, spec in INJECTED_CHANGES.items():
        r0, r1, c0, c1 = spec["window"]
        left, right = transform.c + c0 * transform.a, transform.c + c1 * transform.a
        top, bottom = transform.f + r0 * transform.e, transform.f + r1 * transform.e
        ring = [[left, bottom], [right, bottom], [right, top], [left, top], [left, bottom]]
        props = {
            "name": name,
            "window_rows_cols": [r0, r1, c0, c1],
            "expected_class": spec["expected"],
            "presets": spec["presets"],
        }
        props.update({k: spec[k] for k in ("set_db", "delta_db") if k in spec})
        features.append(
            {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}, "properties": props}
        )
    return {"type": "FeatureCollection", "features": features}
