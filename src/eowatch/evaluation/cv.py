"""Leave-one-pair-out cross-validation of the learned change model (``s2-learned``).

For each labelled pair (an OSCD city), a model is trained on every other pair
(``eowatch.learn.train``), saved as a versioned artifact in a scratch folder, and the
left-out pair is scored through the real preset run (plan, engine, whole-map step,
minimum mapping unit), as ``eowatch evaluate`` scores any preset. Beside per-pair and
mean precision/recall/F1, the reliability table and expected calibration error
(``calibration.reliability``) of the flagged pixels' confidence are pooled over the
left-out pairs, per pixel and per polygon (each flagged pixel rated with its region's
mean confidence, as the polygons are).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..kernels.labels import components
from ..learn.artifact import save_model
from ..learn.pairs import LabelledPair, oscd_pairs, read_labels
from ..learn.train import PairSamples, TrainConfig, fit_model, samples_of, training_card
from ..model import ChangeResult
from ..pipeline import DetectRequest, detect_record, plan_pair
from ..settings import Settings
from .calibration import reliability
from .metrics import Scores, binary_scores, report

__all__ = ["leave_one_out", "cross_validate_oscd", "region_mean_confidence"]

PRESET = "s2-learned"


def region_mean_confidence(result: ChangeResult) -> NDArray[np.float32]:
    """The confidence of every changed pixel's 4-connected region (the polygon's), in the
    order of ``result.changed``'s flagged pixels; NaN without a confidence function."""
    changed = result.changed
    if result.confidence_of is None or not changed.any():
        return np.full(int(changed.sum()), np.nan, dtype=np.float32)
    found = components(changed, 4)
    conf = np.asarray(result.confidence_of(result.statistic.ravel()[found.inside]), dtype=np.float64)
    total = np.bincount(found.pixel_labels, weights=conf, minlength=found.count + 1)
    count = np.bincount(found.pixel_labels, minlength=found.count + 1)
    mean = (total / np.maximum(count, 1)).astype(np.float32)
    return mean[found.pixel_labels]  # found.inside is ascending: the flat order of changed


def leave_one_out(
    pairs: Sequence[LabelledPair],
    settings: Settings,
    config: TrainConfig | None = None,
    params: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    samples: Sequence[PairSamples] | None = None,
) -> dict[str, Any]:
    """Cross-validated scores of ``s2-learned`` over ``pairs`` (at least 2); ``samples``:
    the pairs' training samples when already read."""
    config = config or TrainConfig()
    if len(pairs) < 2:
        raise InputError("leave-one-out cross-validation needs at least 2 labelled pairs")
    samples = samples or samples_of(pairs, config, settings, progress)
    rows: list[Scores] = []
    conf_px: list[NDArray[np.float32]] = []
    conf_poly: list[NDArray[np.float32]] = []
    correct: list[NDArray[np.bool_]] = []
    with tempfile.TemporaryDirectory(prefix="eowatch-cv-") as scratch:
        for i, pair in enumerate(pairs):
            if progress:
                progress(f"fold {pair.name}")
            train_pairs = [p for j, p in enumerate(pairs) if j != i]
            train_samples = [s for j, s in enumerate(samples) if j != i]
            booster, regions = fit_model(train_samples, config)
            card = training_card(train_pairs, train_samples, config)
            path = save_model(Path(scratch) / pair.name, f"cv-{pair.name}", booster, card, regions)
            run_params = {**(params or {}), "model": str(path)}
            plan = plan_pair(DetectRequest(pair.before, pair.after, PRESET, run_params), settings)
            result = detect_record(plan, settings).result
            labels = read_labels(pair, result.classes.shape)
            known, truth = labels.known, labels.change
            rows.append(
                binary_scores(pair.name, truth[known], result.changed[known], result.statistic[known])
            )
            changed = result.changed
            flagged_known = known[changed]
            rate = result.confidence_of
            px = rate(result.statistic[changed]) if rate is not None else np.full(changed.sum(), np.nan)
            conf_px.append(np.asarray(px, dtype=np.float32)[flagged_known])
            conf_poly.append(region_mean_confidence(result)[flagged_known])
            correct.append(truth[changed][flagged_known])
    out = report("oscd-loco", PRESET, params, rows)
    out["cv"] = "leave-one-city-out"
    hits = np.concatenate(correct) if correct else np.zeros(0, dtype=bool)
    out["reliability"] = reliability(np.concatenate(conf_px), hits)
    out["reliability_polygons"] = reliability(np.concatenate(conf_poly), hits)
    out["config"] = {
        "candidate_alpha": config.candidate_alpha,
        "decision_threshold": config.decision_threshold,
        "region_threshold": config.region_threshold,
        "trees": config.trees,
        "leaves": config.leaves,
    }
    return out


def cross_validate_oscd(
    root: Path,
    dataset: str,
    preset: str | None,
    params: dict[str, Any] | None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``eowatch evaluate --cv leave-one-city-out``: ``leave_one_out`` over the OSCD cities
    of ``root``, for the learned preset only."""
    if dataset != "oscd" or (preset or PRESET) != PRESET:
        raise InputError(f"--cv leave-one-city-out trains {PRESET} on OSCD cities: use --dataset oscd "
                         f"and --preset {PRESET} (or no --preset)")  # fmt: skip
    if params and "model" in params:
        raise InputError("--cv trains its own models: drop --param model=...")
    config = TrainConfig(cloud_mask=str((params or {}).get("cloud_mask", "auto")))
    return leave_one_out(oscd_pairs(root), settings, config, params=params, progress=progress)
