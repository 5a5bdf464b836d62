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
from ..base import FitSummary, Preset, PresetParams, SampleDesign, WindowOutput
from ..registry import register
from .common import S2_CLASSES, bands_of, pair_of

__all__ = ["WaterPreset"]


class WaterParams(PresetParams):
    threshold: float | Literal["otsu"] = Field(
        "otsu", description="NDWI water threshold, or 'otsu' for an automatic one from both dates."
    )


@register
class WaterPreset(Preset[WaterParams, float]):
    """The model is the NDWI water threshold (Otsu on both dates of the sample, or given)."""

    name = "s2-water"
    sensor = "sentinel-2"
    summary = "Water gain/loss: NDWI (McFeeters) water maps of each date with an automatic threshold."
    Params = WaterParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: WaterParams, available: Sequence[str]) -> tuple[str, ...]:
        return ("B03", "B08")

    def fit(self, sample: Sequence[Scene], params: WaterParams) -> float:
        if params.threshold != "otsu":
            return float(params.threshold)
        before, after = pair_of(sample)
        valid = before.valid & after.valid
        nb, na = compute_index("ndwi", bands_of(before)), compute_index("ndwi", bands_of(after))
        return otsu(np.concatenate([nb[valid], na[valid]]))

    def apply(self, window: Sequence[Scene], params: WaterParams, model: float) -> WindowOutput:
        before, after = pair_of(window)
        valid = before.valid & after.valid
        nb, na = compute_index("ndwi", bands_of(before)), compute_index("ndwi", bands_of(after))
        wb, wa = nb > model, na > model
        classes = np.full(valid.shape, NO_CHANGE_CLASS, dtype=np.uint8)
        classes[valid & wa & ~wb] = classify.WATER_GAIN
        classes[valid & wb & ~wa] = classify.WATER_LOSS
        return WindowOutput(classes, np.where(valid, na - nb, np.nan).astype(np.float32))

    def describe_fit(self, model: float, params: WaterParams) -> FitSummary:
        return FitSummary("dndwi", S2_CLASSES, {"ndwi_threshold": model})
