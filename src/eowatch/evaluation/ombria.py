"""OMBRIA Sentinel-1 layout (Drakonakis et al., IEEE JSTARS 2022):
``<root>/BEFORE/S1_before_<id>.png``, ``AFTER/S1_after_<id>.png`` and
``MASK/S1_mask_<id>.png`` (flood = 255, else 0); ids are any text (``0001``, ``ABC001``).

The tiles are 256 x 256 8-bit PNG exports of Sentinel-1 GRD VV (Earth Engine)
without georeference. Each is read as a one-band (``vv``) ``Scene``:

* values: ``dB = -25 + 25 * png / 255`` (0 -> -25 dB, 255 -> 0 dB), then linear
  power ``10 ** (dB / 10)``. The exact stretch of the export is unknown and
  differs per tile, which is why the presets' thresholds are automatic; the
  flood recipe scores within 0.01 F1 over [-30, 0], [-25, 5] and [-20, 0] dB.
  The scenes say so (``eowatch:calibration`` = "uncalibrated ..."), so presets that
  normalise uncalibrated input (``s1-flood``'s ``normalise='auto'``) do.
* no data: PNG 255 is the exports' fill value (strips of 255 along tile edges, in both
  dates at once on 12 of the 104 tiles, never flooded in the masks), so a pixel at 255 is
  not valid on that date; it is scored as "not flooded", like any unflagged pixel.
* grid: a dummy UTM zone 31N (EPSG:32631) grid with 10 m pixels, the pixel
  spacing of Sentinel-1 IW GRDH, so that ``min_area_m2`` means what it means on
  real data (100 m² per pixel). Tiles carry no orbit metadata (nothing to pair).

Detection goes through the block engine (``eowatch.engine.detect_arrays``), so the scored code
is the preset with its minimum mapping unit. A pixel is predicted flooded
where its class is ``decrease`` (a flood is a backscatter decrease) - or, for a
preset without a ``decrease`` class, where it changed. Labels are read in
place and never copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from PIL import Image

from ..detect import Preset, PresetParams, get_preset, parse_params
from ..engine import detect_arrays
from ..errors import InputError, InputReadError
from ..io.load import crs_from
from ..kernels.sar import from_db
from ..model import Grid, Scene
from ..settings import Settings
from .calibration import reliability
from .metrics import Scores, binary_scores, report

__all__ = [
    "evaluate_ombria",
    "png_to_db",
    "ombria_scene",
    "ombria_ids",
    "ombria_pair",
    "png_scene",
    "predict_flood",
    "Prediction",
    "OMBRIA_DB_RANGE",
    "OMBRIA_CALIBRATION",
]

#: dB values that PNG 0 and 255 are mapped to.
OMBRIA_DB_RANGE = (-25.0, 0.0)
#: What the scenes declare about their radiometry (``eowatch:calibration``).
OMBRIA_CALIBRATION = "uncalibrated 8-bit export (per-tile stretch unknown)"
_FILL = 255
_PIXEL_M = 10.0
_ID = re.compile(r"^S1_before_(.+)\.png$")


def png_to_db(
    values: NDArray[np.integer], db_range: tuple[float, float] = OMBRIA_DB_RANGE
) -> NDArray[np.float32]:
    """8-bit OMBRIA values to dB: linear from ``db_range[0]`` (0) to ``db_range[1]`` (255)."""
    lo, hi = db_range
    return (lo + (hi - lo) * np.asarray(values, dtype=np.float64) / 255.0).astype(np.float32)


def _read_png(path: Path) -> NDArray[np.uint8]:
    try:
        with Image.open(path) as im:
            arr = np.asarray(im)
    except OSError as exc:
        raise InputReadError(f"cannot read {path}: {exc}") from exc
    return arr if arr.ndim == 2 else arr[..., 0]


def _dummy_grid(shape: tuple[int, int]) -> Grid:
    transform = Affine(_PIXEL_M, 0.0, 500_000.0, 0.0, -_PIXEL_M, 5_000_000.0)
    return Grid(crs_from("EPSG:32631"), transform, shape[1], shape[0])


def ombria_scene(path: Path, role: str) -> Scene:
    """One OMBRIA PNG as a one-band (``vv``) linear-power ``Scene`` on a dummy 10 m grid
    (PNG 255, the fill value, is not valid)."""
    return png_scene(_read_png(path), path.stem, role)


def png_scene(png: NDArray[np.integer], name: str, role: str) -> Scene:
    """8-bit OMBRIA values as a ``Scene`` (see ``ombria_scene``)."""
    valid = np.asarray(png) != _FILL
    intensity = np.where(valid, from_db(png_to_db(png)), np.nan).astype(np.float32)
    return Scene(
        data=intensity[np.newaxis],
        valid=valid,
        bands=("vv",),
        grid=_dummy_grid(valid.shape),
        id=name,
        sensor="sentinel-1",
        properties={"eowatch:role": role, "eowatch:calibration": OMBRIA_CALIBRATION},
    )


def ombria_pair(root: Path, tile: str) -> tuple[NDArray[np.uint8], NDArray[np.uint8], NDArray[np.bool_]]:
    """The before and after PNG values and the flood mask of one tile."""
    root = Path(root)
    before = _read_png(root / "BEFORE" / f"S1_before_{tile}.png")
    after = _read_png(root / "AFTER" / f"S1_after_{tile}.png")
    truth = _read_png(root / "MASK" / f"S1_mask_{tile}.png") > 127
    if truth.shape != before.shape or after.shape != before.shape:
        raise InputError(f"OMBRIA tile {tile}: before, after and mask sizes differ")
    return before, after, truth


def ombria_ids(root: Path) -> list[str]:
    """Tile ids with a before, an after and a mask PNG, in sorted order."""
    root = Path(root)
    ids = sorted(m.group(1) for p in (root / "BEFORE").glob("S1_before_*.png") if (m := _ID.match(p.name)))
    ids = [
        i
        for i in ids
        if (root / "AFTER" / f"S1_after_{i}.png").exists() and (root / "MASK" / f"S1_mask_{i}.png").exists()
    ]
    if not ids:
        raise InputError(
            f"no OMBRIA Sentinel-1 triplets under {root}; expected BEFORE/S1_before_<id>.png, "
            "AFTER/S1_after_<id>.png and MASK/S1_mask_<id>.png"
        )
    return ids


@dataclass(frozen=True)
class Prediction:
    """What a preset flags as flooded on one pair: the mask, the score oriented so that
    higher means more likely flooded, the confidence of each flagged pixel (NaN: the
    preset rates none) and the fit's thresholds."""

    flooded: NDArray[np.bool_]
    score: NDArray[np.float32]
    confidence: NDArray[np.float32]
    thresholds: dict[str, Any]


def predict_flood(preset: Preset[Any, Any], params: PresetParams, before: Scene, after: Scene) -> Prediction:
    """Run ``preset`` through the block engine on one pair; flooded = the ``decrease``
    class (a flood is a backscatter decrease), or any change for a preset without one."""
    result = detect_arrays(preset, params, [before, after])
    decrease = [c.value for c in result.class_table if c.name == "decrease"]
    flooded = np.isin(result.classes, decrease) if decrease else result.changed
    if result.confidence_of is not None and flooded.any():
        confidence = np.asarray(result.confidence_of(result.statistic[flooded]), dtype=np.float32)
    else:
        confidence = np.full(int(flooded.sum()), np.nan, dtype=np.float32)
    meta = result.metadata
    decisions = meta.get("decisions", {})
    thresholds = {
        "water_threshold_db": meta.get("water_threshold_db"),
        "decrease_threshold_db": meta.get("decrease_threshold_db"),
        "water_source": decisions.get("water", {}).get("source"),
        "decrease_source": decisions.get("decrease", {}).get("source"),
        "normalisation_offset_db": meta.get("normalisation", {}).get("offset_db"),
    }
    return Prediction(flooded, _flood_score(result.statistic, meta), confidence, thresholds)


def evaluate_ombria(
    root: Path,
    preset: str,
    params: dict[str, Any] | None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    tiles: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-tile, mean and pooled scores of ``preset`` on an OMBRIA S1 folder.

    ``report["pooled"]`` holds precision, recall, F1, IoU (and kappa, ROC-AUC)
    over all pixels of all tiles: the headline figure, since many tiles have
    little or no flood and per-tile F1 is unstable there. ``report["thresholds"]``
    holds each tile's fitted thresholds and where they came from, and
    ``report["reliability"]`` the reliability table of the flagged pixels' confidence
    (``eowatch.evaluation.calibration``). ``settings`` is accepted for the common
    evaluation signature (nothing here reads files through it). ``tiles`` restricts the
    run to some tile ids (e.g. ``["0001"]``). ``progress`` is called with one line per
    tile (``"12/104 0123"``).
    """
    root = Path(root)
    p = get_preset(preset)
    values = parse_params(p, params)
    rows: list[Scores] = []
    truths: list[NDArray[np.bool_]] = []
    preds: list[NDArray[np.bool_]] = []
    scores: list[NDArray[np.float32]] = []
    confidences: list[NDArray[np.float32]] = []
    correct: list[NDArray[np.bool_]] = []
    thresholds: list[dict[str, Any]] = []
    available = ombria_ids(root)
    missing = sorted(set(tiles or ()) - set(available))
    if missing:
        raise InputError(f"OMBRIA tiles {missing} are not under {root}")
    chosen = [t for t in available if tiles is None or t in set(tiles)]
    for k, tile in enumerate(chosen, 1):
        if progress:
            progress(f"{k}/{len(chosen)} {tile}")
        before_png, after_png, truth = ombria_pair(root, tile)
        before = png_scene(before_png, f"S1_before_{tile}", "before")
        after = png_scene(after_png, f"S1_after_{tile}", "after")
        found = predict_flood(p, values, before, after)
        rows.append(binary_scores(tile, truth, found.flooded, found.score))
        truths.append(truth.ravel())
        preds.append(found.flooded.ravel())
        scores.append(found.score.ravel())
        confidences.append(found.confidence)
        correct.append(truth[found.flooded])
        thresholds.append({"name": tile, **found.thresholds})
    out = report("ombria-s1", preset, params, rows)
    pooled = binary_scores("pooled", np.concatenate(truths), np.concatenate(preds), np.concatenate(scores))
    out["pooled"] = asdict(pooled)
    out["thresholds"] = thresholds
    out["decrease_thresholds_at_or_above_0db"] = sum(
        1 for t in thresholds if t["decrease_threshold_db"] is not None and t["decrease_threshold_db"] >= 0
    )
    out["reliability"] = reliability(np.concatenate(confidences), np.concatenate(correct))
    out["value_mapping"] = (
        f"dB = {OMBRIA_DB_RANGE[0]:g} + {OMBRIA_DB_RANGE[1] - OMBRIA_DB_RANGE[0]:g} * png / 255; "
        f"png {_FILL} = no data"
    )
    return out


def _flood_score(statistic: NDArray[np.floating], metadata: dict[str, Any]) -> NDArray[np.float32]:
    """The preset's statistic oriented so that higher means more likely flooded:
    signed changes (dB, positive = increase) and p-values are negated."""
    s = np.asarray(statistic, dtype=np.float32)
    if metadata.get("signed_statistic") or metadata.get("higher_is_change") is False:
        return -s
    return s
