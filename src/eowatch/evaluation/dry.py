"""Dry cases: how much a flood preset flags where nothing flooded.

A flood evaluation on pairs that are all flooded (OMBRIA: the least has 3.2 %) rewards
flagging too much: flagging every pixel already scores F1 about 0.5 there. This module
measures the false-alarm side on three groups of pairs without flood, and reports the
share of valid pixels flagged per pair, its median and 90th percentile per group:

* ``scenes``: real calibrated scenes, each against a re-speckled copy of itself: the
  Sen1Floods11 ``S1Hand`` chip (VV and VH, dB, 27 % permanent water) and the pyroSAR GRD
  scene (VV, dB), ``SEEDS`` speckle draws each;
* ``ombria-before``: every OMBRIA before image against a re-speckled copy of itself,
  written back to 8 bits like the exports (values clipped to 0..254: 255 is the fill);
* ``ombria-dry-quadrants``: the 128 x 128 quadrants of the OMBRIA pairs whose reference
  flooded share is under 1 % (real before / after dates of a flood event, no flood).

Re-speckling multiplies the linear intensity by unit-mean Gamma(L, 1/L) noise, where L
is the ENL measured on the image's homogeneous areas (``eowatch.kernels.sar.estimate_enl``);
the generator is seeded per pair, so every run draws the same noise. Labels are read in
place (only to choose the dry quadrants) and never copied.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detect import Preset, PresetParams, get_preset, parse_params
from ..errors import InputError
from ..io.rasters import read_float_raster
from ..kernels.sar import estimate_enl, from_db, to_db
from ..model import Grid, Scene
from ..settings import Settings
from .ombria import OMBRIA_DB_RANGE, ombria_ids, ombria_pair, png_scene, predict_flood

__all__ = ["evaluate_dry", "respeckle", "DRY_GROUPS", "SEEDS", "QUADRANT", "DRY_QUADRANT_SHARE"]

#: Speckle draws per real scene band.
SEEDS = (1, 2, 3)
#: Side of the OMBRIA quadrants (pixels) and the reference flooded share under which one is dry.
QUADRANT = 128
DRY_QUADRANT_SHARE = 0.01
DRY_GROUPS = ("scenes", "ombria-before", "ombria-dry-quadrants")
#: Real scenes under the data root: path, bands (description -> polarisation).
_SCENES = {
    "sen1floods11": ("scenes/sen1floods11/Spain_7370579_S1Hand.tif", {"VV": "vv", "VH": "vh"}),
    "pyrosar": (
        "scenes/pyrosar/S1A__IW___A_20150309T173017_VV_grd_mli_geo_norm_db.tif",
        {"": "vv", "VV": "vv"},
    ),
}
_OMBRIA = "s1_pairs/ombria_s1_trainsubset"
_FALLBACK_ENL = 4.4

Case = tuple[str, Scene, Scene]


def respeckle(intensity: NDArray[np.floating], enl: float, rng: np.random.Generator) -> NDArray[np.float32]:
    """``intensity`` times unit-mean Gamma(``enl``, 1 / ``enl``) speckle (NaN stays NaN)."""
    x = np.asarray(intensity, dtype=np.float64)
    return (x * rng.gamma(enl, 1.0 / enl, x.shape)).astype(np.float32)


def _measured_enl(intensity: NDArray[np.floating]) -> float:
    enl = estimate_enl(intensity)
    return float(enl) if math.isfinite(enl) and enl > 0 else _FALLBACK_ENL


def _scene(intensity: NDArray[np.float32], pol: str, grid: Grid, name: str, props: dict[str, Any]) -> Scene:
    valid = np.isfinite(intensity)
    return Scene(intensity[np.newaxis], valid, (pol,), grid, name, sensor="sentinel-1", properties=props)


def _scene_cases(root: Path) -> Iterator[Case]:
    for key, (rel, names) in _SCENES.items():
        path = root / rel
        data, profile, descriptions = read_float_raster(path, "the dry-case scene")
        nodata = profile.get("nodata")
        grid = Grid(profile["crs"], profile["transform"], profile["width"], profile["height"])
        for i, desc in enumerate(descriptions):
            pol = names.get(desc.upper()) or names.get(desc)
            if pol is None:
                continue
            db = data[i].astype(np.float64)
            if nodata is not None and not np.isnan(nodata):
                db[db == nodata] = np.nan
            linear = from_db(db)
            enl = _measured_enl(linear)
            for seed in SEEDS:
                rng = np.random.default_rng(seed)
                name = f"{key}-{pol}-seed{seed}"
                props = {"eowatch:dry_enl": round(enl, 3)}
                yield (
                    name,
                    _scene(linear, pol, grid, f"{name}-before", props),
                    _scene(respeckle(linear, enl, rng), pol, grid, f"{name}-after", props),
                )


def _to_png(db: NDArray[np.floating]) -> NDArray[np.uint8]:
    """dB back to OMBRIA's 8 bits (the inverse of ``png_to_db``), 255 kept for the fill."""
    lo, hi = OMBRIA_DB_RANGE
    png = np.round((np.asarray(db, dtype=np.float64) - lo) * 255.0 / (hi - lo))
    return np.clip(np.nan_to_num(png, nan=0.0), 0, 254).astype(np.uint8)


def _ombria_before_cases(root: Path) -> Iterator[Case]:
    for k, tile in enumerate(ombria_ids(root)):
        before_png, _, _ = ombria_pair(root, tile)
        before = png_scene(before_png, f"S1_before_{tile}", "before")
        linear = before.data[0]
        enl = _measured_enl(linear)
        copy = respeckle(linear, enl, np.random.default_rng(1000 + k))
        copy_png = np.where(before.valid, _to_png(to_db(copy)), 255).astype(np.uint8)
        yield tile, before, png_scene(copy_png, f"S1_before_{tile}_respeckled", "after")


def _quadrant_cases(root: Path) -> Iterator[Case]:
    q = QUADRANT
    for tile in ombria_ids(root):
        before_png, after_png, truth = ombria_pair(root, tile)
        for r in range(0, truth.shape[0] - q + 1, q):
            for c in range(0, truth.shape[1] - q + 1, q):
                window = (slice(r, r + q), slice(c, c + q))
                if truth[window].mean() >= DRY_QUADRANT_SHARE:
                    continue
                name = f"{tile}@{r},{c}"
                yield (
                    name,
                    png_scene(before_png[window], f"S1_before_{name}", "before"),
                    png_scene(after_png[window], f"S1_after_{name}", "after"),
                )


def _cases(root: Path, group: str) -> Iterator[Case]:
    if group == "scenes":
        return _scene_cases(root)
    if group == "ombria-before":
        return _ombria_before_cases(root / _OMBRIA)
    return _quadrant_cases(root / _OMBRIA)


def _check_layout(root: Path, groups: tuple[str, ...]) -> None:
    wanted = [root / rel for rel, _ in _SCENES.values()] if "scenes" in groups else []
    if set(groups) - {"scenes"}:
        wanted.append(root / _OMBRIA)
    missing = [str(p) for p in wanted if not p.exists()]
    if missing:
        raise InputError(
            f"dry cases need the shared data layout under {root}: missing {', '.join(missing)} "
            "(ROOT is the folder holding scenes/ and s1_pairs/)"
        )


def _flagged(preset: Preset[Any, Any], params: PresetParams, name: str, before: Scene, after: Scene
             ) -> dict[str, Any]:  # fmt: skip
    found = predict_flood(preset, params, before, after)
    valid = before.valid & after.valid
    share = float(found.flooded[valid].mean()) if valid.any() else 0.0
    return {"name": name, "flagged_share": share, **found.thresholds}


def evaluate_dry(
    root: Path,
    preset: str,
    params: dict[str, Any] | None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    groups: tuple[str, ...] = DRY_GROUPS,
) -> dict[str, Any]:
    """The flagged share of ``preset`` on each dry pair of ``groups`` under ``root`` (the
    shared data folder), with its median and 90th percentile per group.
    ``settings`` is accepted for the common evaluation signature."""
    root = Path(root)
    unknown = sorted(set(groups) - set(DRY_GROUPS))
    if unknown:
        raise InputError(f"unknown dry-case groups {unknown}; choose from {list(DRY_GROUPS)}")
    _check_layout(root, groups)
    p = get_preset(preset)
    values = parse_params(p, params)
    out: dict[str, Any] = {"dataset": "s1-dry", "preset": preset, "params": dict(params or {}), "groups": {}}
    for group in groups:
        rows = []
        for k, (name, before, after) in enumerate(_cases(root, group), 1):
            if progress:
                progress(f"{group} {k} {name}")
            rows.append(_flagged(p, values, name, before, after))
        shares = np.array([r["flagged_share"] for r in rows], dtype=np.float64)
        out["groups"][group] = {
            "pairs": rows,
            "count": len(rows),
            "median": float(np.median(shares)) if rows else None,
            "p90": float(np.percentile(shares, 90)) if rows else None,
            "max": float(shares.max()) if rows else None,
        }
    return out
