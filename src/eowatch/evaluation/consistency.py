"""Do the change classes agree with the spectra? Every change region (the pixels of one
polygon) is checked against its own mean index values: a "water gain" region must have
a mean NDWI above the water threshold after and below it before, and so on for every
class with a spectral rule (``eowatch.kernels.classify``); "other change" always holds.

The rules are those the presets class with, at the thresholds the run recorded (the
water preset's NDWI threshold), on the bands as the run compared them (the after date
radiometrically normalised onto the before date when the preset did so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detect.s2.common import normalised
from ..kernels import classify
from ..kernels.regions import class_regions, nanmean_by_label
from ..model import NO_CHANGE_CLASS, NO_DATA_CLASS, Block, ChangeResult, Scene
from ..runs import RunPlan

__all__ = ["Contradiction", "class_contradictions", "plan_scenes"]


@dataclass(frozen=True)
class Contradiction:
    """A region whose class its mean index values do not support."""

    class_name: str
    pixels: int
    mean_indices: dict[str, dict[str, float]]  # "before"/"after" -> index -> mean


def plan_scenes(plan: RunPlan) -> tuple[Scene, Scene]:
    """The first and last date of ``plan`` read whole, masked as the run masked them."""
    grid = plan.grid
    scenes = []
    for source in (plan.sources[0], plan.sources[-1]):
        with source.open() as reader:
            scene, _ = reader.read(Block(0, 0, grid.height, grid.width))
        scenes.append(scene)
    return scenes[0], scenes[1]


def class_contradictions(result: ChangeResult, before: Scene, after: Scene) -> list[Contradiction]:
    """Every region of ``result`` whose class its own mean index values contradict."""
    changed = (result.classes != NO_CHANGE_CLASS) & (result.classes != NO_DATA_CLASS)
    regions = class_regions(result.classes, changed)
    if regions.count == 0:
        return []
    b_px, a_px = _pixels(before, after, regions.inside, result.metadata)
    idx_b, idx_a = classify.indices_of(b_px, a_px)
    label = regions.pixel_labels - 1
    means_b = {
        k: nanmean_by_label(label, np.asarray(v, dtype=np.float64), regions.count) for k, v in idx_b.items()
    }
    means_a = {
        k: nanmean_by_label(label, np.asarray(v, dtype=np.float64), regions.count) for k, v in idx_a.items()
    }
    support = classify.rule_support(means_b, means_a, _rules(result.metadata))
    region_class = regions.label_class[1:].astype(np.uint8)
    held = classify.supports(support, region_class)
    counts = np.bincount(label, minlength=regions.count)
    return [
        Contradiction(
            classify.class_name(int(region_class[i])),
            int(counts[i]),
            {
                "before": {k: round(float(v[i]), 4) for k, v in means_b.items()},
                "after": {k: round(float(v[i]), 4) for k, v in means_a.items()},
            },
        )
        for i in np.flatnonzero(~held)
    ]


def _pixels(
    before: Scene, after: Scene, at: NDArray[np.int64], metadata: dict[str, Any]
) -> tuple[dict[str, NDArray[np.float32]], dict[str, NDArray[np.float32]]]:
    """The bands of both dates at the flat pixel indices ``at``, the after date normalised
    as the run normalised it."""
    b_px = {band: before.band(band).take(at) for band in before.bands}
    a_px = {band: after.band(band).take(at) for band in after.bands}
    norm = metadata.get("normalisation") or {}
    gains = zip(norm.get("gain", []), norm.get("offset", []), strict=True)
    return b_px, normalised(a_px, dict(zip(norm.get("bands", []), gains, strict=True)))


def _mean(label: NDArray[np.int64], values: Any, n: int) -> NDArray[np.float64]:
    return nanmean_by_label(label, np.asarray(values, dtype=np.float64), n)


def _rules(metadata: dict[str, Any]) -> classify.ClassifyRules:
    if "ndwi_threshold" in metadata:  # s2-water: its own water threshold
        return classify.ClassifyRules(water_ndwi=float(metadata["ndwi_threshold"]))
    return classify.ClassifyRules()
