"""``s1-bright-targets``: bright targets appearing or leaving (the satellite-centre rule)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...kernels.sar import bright_target_change, to_db
from ...model import NO_DATA_CLASS, Scene
from ..base import FitSummary, WindowOutput
from ..registry import register
from .common import (
    DECREASE,
    INCREASE,
    S1_CLASSES,
    S1Fit,
    SinglePolParams,
    SinglePolPreset,
    SpeckleFilter,
    direction_classes,
    filtered,
    fit_speckle,
    speckle_metadata,
)

__all__ = ["BrightTargetPreset"]


class BrightTargetParams(SinglePolParams):
    speckle_filter: SpeckleFilter = Field(
        "lee", description="Speckle filter applied before the rule (small window keeps point targets)."
    )
    window: int = Field(3, ge=3, le=31, description="Speckle filter window (odd, pixels).")
    min_change_db: float = Field(10.0, gt=0, description="Smallest |after - before| change, dB.")
    bright_db: float = Field(-13.0, description="The brighter date must exceed this, dB.")
    floor_db: float = Field(-40.0, description="Both dates must exceed this (noise floor, shadow), dB.")
    min_area_m2: float = Field(
        200.0, ge=0, description="Minimum mapping unit, m² (targets are small: a few 10 m pixels)."
    )


def _change_confidence(diff: NDArray[np.floating], min_change_db: float) -> NDArray[np.float32]:
    """|change| over twice the smallest change reported (NaN stays NaN)."""
    d = np.abs(np.asarray(diff, dtype=np.float64))
    return np.clip(d / (2.0 * min_change_db), 0.0, 1.0).astype(np.float32)


@register
class BrightTargetPreset(SinglePolPreset[BrightTargetParams]):
    """The bright-target rule of satellite centres: change of more than
    ``min_change_db`` where the brighter date is above ``bright_db`` and both
    are above ``floor_db``. Increase = a target appeared, decrease = it left.
    Only the filter's ENL is fitted."""

    name = "s1-bright-targets"
    summary = (
        "Bright targets appearing/disappearing: |change| > 10 dB where one date is brighter than -13 dB, "
        "both above -40 dB."
    )
    Params = BrightTargetParams

    def fit(self, sample: Sequence[Scene], params: BrightTargetParams) -> S1Fit:
        pol, enl = fit_speckle(sample, params)
        return S1Fit([pol], enl, {}, {"speckle": speckle_metadata(params, enl)})

    def apply(self, window: Sequence[Scene], params: BrightTargetParams, model: S1Fit) -> WindowOutput:
        b, a = filtered(window, params, model.pols[0], model.enl)
        bdb, adb = to_db(b), to_db(a)
        codes = bright_target_change(bdb, adb, params.min_change_db, params.bright_db, params.floor_db)
        ok = window[0].valid & window[1].valid & (codes != NO_DATA_CLASS)
        diff = (adb.astype(np.float64) - bdb).astype(np.float64)
        classes = direction_classes(codes == INCREASE, codes == DECREASE, ok)
        return WindowOutput(classes, np.where(ok, diff, np.nan).astype(np.float32))

    def describe_fit(self, model: S1Fit, params: BrightTargetParams) -> FitSummary:
        rule = {
            "min_change_db": params.min_change_db,
            "bright_db": params.bright_db,
            "floor_db": params.floor_db,
        }
        metadata = {"polarisation": model.pols[0], "speckle": model.metadata["speckle"],
                    "signed_statistic": True, "rule": rule}  # fmt: skip
        return FitSummary(
            "db_difference",
            S1_CLASSES,
            metadata,
            partial(_change_confidence, min_change_db=params.min_change_db),
        )
