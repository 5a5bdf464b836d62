"""OMBRIA Sentinel-1 layout (Drakonakis et al., IEEE JSTARS 2022):
``<root>/BEFORE/S1_before_NNNN.png``, ``AFTER/S1_after_NNNN.png`` and
``MASK/S1_mask_NNNN.png`` (flood = 255, else 0).

The tiles are 256 x 256 8-bit PNG exports of Sentinel-1 GRD VV (Earth Engine)
without georeference. Each is read as a one-band (``vv``) ``Scene``:

* values: ``dB = -25 + 25 * png / 255`` (0 -> -25 dB, 255 -> 0 dB), then linear
  power ``10 ** (dB / 10)``. The exact stretch of the export is unknown and
  differs per tile, which is why the presets' thresholds are automatic; the
  flood recipe scores within 0.01 F1 over [-30, 0], [-25, 5] and [-20, 0] dB.
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
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from PIL import Image

from ..detect import get_preset, parse_params
from ..engine import detect_arrays
from ..errors import InputError, InputReadError
from ..io.load import crs_from
from ..kernels.sar import from_db
from ..model import Grid, Scene
from ..settings import Settings
from .metrics import Scores, binary_scores, report

__all__ = ["evaluate_ombria", "png_to_db", "ombria_scene", "ombria_ids", "OMBRIA_DB_RANGE"]

#: dB values that PNG 0 and 255 are mapped to.
OMBRIA_DB_RANGE = (-25.0, 0.0)
_PIXEL_M = 10.0
_ID = re.compile(r"S1_before_(\d+)\.png$")


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
    """One OMBRIA PNG as a one-band (``vv``) linear-power ``Scene`` on a dummy 10 m grid."""
    png = _read_png(path)
    intensity = from_db(png_to_db(png))
    return Scene(
        data=intensity[np.newaxis],
        valid=np.ones(png.shape, dtype=bool),
        bands=("vv",),
        grid=_dummy_grid(png.shape),
        id=f"{path.stem}",
        sensor="sentinel-1",
        properties={"eowatch:role": role},
    )


def ombria_ids(root: Path) -> list[str]:
    """Tile ids with a before, an after and a mask PNG, in sorted order."""
    root = Path(root)
    ids = sorted(m.group(1) for p in (root / "BEFORE").glob("S1_before_*.png") if (m := _ID.search(p.name)))
    ids = [
        i
        for i in ids
        if (root / "AFTER" / f"S1_after_{i}.png").exists() and (root / "MASK" / f"S1_mask_{i}.png").exists()
    ]
    if not ids:
        raise InputError(
            f"no OMBRIA Sentinel-1 triplets under {root}; expected BEFORE/S1_before_NNNN.png, "
            "AFTER/S1_after_NNNN.png and MASK/S1_mask_NNNN.png"
        )
    return ids


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
    little or no flood and per-tile F1 is unstable there. ``settings`` is
    accepted for the common evaluation signature (nothing here reads files
    through it). ``tiles`` restricts the run to some tile ids (e.g. ``["0001"]``).
    """
    root = Path(root)
    p = get_preset(preset)
    values = parse_params(p, params)
    rows: list[Scores] = []
    truths: list[NDArray[np.bool_]] = []
    preds: list[NDArray[np.bool_]] = []
    scores: list[NDArray[np.float32]] = []
    available = ombria_ids(root)
    missing = sorted(set(tiles or ()) - set(available))
    if missing:
        raise InputError(f"OMBRIA tiles {missing} are not under {root}")
    for tile in [t for t in available if tiles is None or t in set(tiles)]:
        if progress:
            progress(tile)
        before = ombria_scene(root / "BEFORE" / f"S1_before_{tile}.png", "before")
        after = ombria_scene(root / "AFTER" / f"S1_after_{tile}.png", "after")
        truth = _read_png(root / "MASK" / f"S1_mask_{tile}.png") > 127
        if truth.shape != before.grid.shape or after.grid.shape != before.grid.shape:
            raise InputError(f"OMBRIA tile {tile}: before, after and mask sizes differ")
        result = detect_arrays(p, values, [before, after])
        decrease = [c.value for c in result.class_table if c.name == "decrease"]
        pred = np.isin(result.classes, decrease) if decrease else result.changed
        score = _flood_score(result.statistic, result.metadata)
        rows.append(binary_scores(tile, truth, pred, score))
        truths.append(truth.ravel())
        preds.append(pred.ravel())
        scores.append(score.ravel())
    out = report("ombria-s1", preset, params, rows)
    pooled = binary_scores("pooled", np.concatenate(truths), np.concatenate(preds), np.concatenate(scores))
    out["pooled"] = asdict(pooled)
    out["value_mapping"] = (
        f"dB = {OMBRIA_DB_RANGE[0]:g} + {OMBRIA_DB_RANGE[1] - OMBRIA_DB_RANGE[0]:g} * png / 255"
    )
    return out


def _flood_score(statistic: NDArray[np.floating], metadata: dict[str, Any]) -> NDArray[np.float32]:
    """The preset's statistic oriented so that higher means more likely flooded:
    signed changes (dB, positive = increase) and p-values are negated."""
    s = np.asarray(statistic, dtype=np.float32)
    if metadata.get("signed_statistic") or metadata.get("higher_is_change") is False:
        return -s
    return s
