"""``s2-burn``: burn scars from dNBR with a vegetation loss."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...kernels import classify
from ...kernels.indices import compute_index
from ...model import NO_CHANGE_CLASS, Scene
from ..base import FitSummary, Preset, SampleDesign, WindowOutput
from ..registry import register
from .common import CLASSIFY_BANDS, S2_CLASSES, S2Params, bands_of, pair_of

__all__ = ["BurnPreset"]

#: dNBR of the USGS high-severity level, where the confidence reaches 1.
_HIGH_SEVERITY = 0.66


class BurnParams(S2Params):
    dnbr_threshold: float = Field(
        0.27, gt=0, description="dNBR = NBR_before - NBR_after above this is burnt."
    )
    min_ndvi_loss: float = Field(0.1, ge=0, description="Required NDVI decrease.")


def _confidence(dnbr: NDArray[np.floating], threshold: float) -> NDArray[np.float32]:
    """From 0 at the threshold to 1 at the USGS high-severity level."""
    d = np.asarray(dnbr, dtype=np.float32)
    return np.asarray(np.clip((d - threshold) / (_HIGH_SEVERITY - threshold), 0, 1), dtype=np.float32)


@register
class BurnPreset(Preset[BurnParams, None]):
    """Pixelwise rule with fixed thresholds: nothing to fit."""

    name = "s2-burn"
    sensor = "sentinel-2"
    summary = (
        "Burn scars: dNBR above the USGS moderate-severity level with a vegetation (NDVI) loss and no "
        "brightening in red (char is dark; new concrete and bare soil brighten)."
    )
    Params = BurnParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: BurnParams, available: Sequence[str]) -> tuple[str, ...]:
        return CLASSIFY_BANDS

    def fit(self, sample: Sequence[Scene], params: BurnParams) -> None:
        return None

    def apply(self, window: Sequence[Scene], params: BurnParams, model: None) -> WindowOutput:
        before, after = pair_of(window)
        valid = before.valid & after.valid
        b, a = bands_of(before), bands_of(after)
        dnbr = compute_index("nbr", b) - compute_index("nbr", a)
        dndvi = compute_index("ndvi", a) - compute_index("ndvi", b)
        rules = classify.ClassifyRules(burn_dnbr=params.dnbr_threshold, burn_ndvi_loss=params.min_ndvi_loss)
        terms = {"dnbr": dnbr, "dndvi": dndvi, "dred": a["B04"] - b["B04"]}
        burnt = valid & classify.burn_rule(terms, rules)
        classes = np.where(burnt, classify.BURN_SCAR, NO_CHANGE_CLASS).astype(np.uint8)
        return WindowOutput(classes, np.where(valid, dnbr, np.nan).astype(np.float32))

    def describe_fit(self, model: None, params: BurnParams) -> FitSummary:
        return FitSummary("dnbr", S2_CLASSES, {}, partial(_confidence, threshold=params.dnbr_threshold))
