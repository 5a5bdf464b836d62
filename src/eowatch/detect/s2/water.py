"""``s2-water``: water gain and loss from the NDWI water maps of both dates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from ...kernels import classify
from ...kernels.indices import compute_index
from ...kernels.thresholds import otsu
from ...model import NO_CHANGE_CLASS, Scene
from ..base import FitSummary, Preset, SampleDesign, WindowOutput
from ..registry import register
from .common import S2_CLASSES, S2Params, bands_of, pair_of

__all__ = ["WaterPreset"]


#: The lowest NDWI called water (McFeeters 1996: open water has NDWI > 0). Otsu splits any
#: histogram in two, so over a scene with little water it would call dry land water.
MIN_WATER_NDWI = 0.0


class WaterParams(S2Params):
    threshold: float | Literal["otsu"] = Field(
        "otsu",
        description="NDWI water threshold, or 'otsu' for an automatic one from both dates "
        f"(never below {MIN_WATER_NDWI:g}, the open-water limit).",
    )


@register
class WaterPreset(Preset[WaterParams, float]):
    """The model is the NDWI water threshold (Otsu on both dates of the sample, or given)."""

    name = "s2-water"
    sensor = "sentinel-2"
    summary = (
        "Water gain/loss: water maps of each date (NDWI, McFeeters 1996, above an automatic threshold "
        "that is never below 0, and SWIR1 below 0.05, which dark urban surfaces and shadows exceed)."
    )
    Params = WaterParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: WaterParams, available: Sequence[str]) -> tuple[str, ...]:
        return ("B03", "B08", "B11")

    def fit(self, sample: Sequence[Scene], params: WaterParams) -> float:
        if params.threshold != "otsu":
            return float(params.threshold)
        before, after = pair_of(sample)
        valid = before.valid & after.valid
        nb, na = compute_index("ndwi", bands_of(before)), compute_index("ndwi", bands_of(after))
        return max(otsu(np.concatenate([nb[valid], na[valid]])), MIN_WATER_NDWI)

    def apply(self, window: Sequence[Scene], params: WaterParams, model: float) -> WindowOutput:
        before, after = pair_of(window)
        valid = before.valid & after.valid
        nb, na = compute_index("ndwi", bands_of(before)), compute_index("ndwi", bands_of(after))
        # The water rule of the change classes (NDWI and SWIR1), at this preset's NDWI threshold.
        support = classify.rule_support(
            {"ndwi": nb, "B11": before.band("B11")},
            {"ndwi": na, "B11": after.band("B11")},
            classify.ClassifyRules(water_ndwi=model),
        )
        classes = np.full(valid.shape, NO_CHANGE_CLASS, dtype=np.uint8)
        for code in (classify.WATER_GAIN, classify.WATER_LOSS):
            classes[valid & ((support & np.uint8(classify.support_bit(code))) != 0)] = code
        return WindowOutput(classes, np.where(valid, na - nb, np.nan).astype(np.float32))

    def describe_fit(self, model: float, params: WaterParams) -> FitSummary:
        return FitSummary("dndwi", S2_CLASSES, {"ndwi_threshold": model})
