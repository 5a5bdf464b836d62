"""``s1-logratio``: log-ratio of speckle-filtered intensities with automatic thresholds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...kernels.sar import log_ratio
from ...model import Scene
from ..base import FitSummary, WindowOutput
from ..registry import register
from .common import (
    S1_CLASSES,
    S1Fit,
    SinglePolParams,
    SinglePolPreset,
    ThresholdMethod,
    automatic_threshold,
    direction_classes,
    filtered,
    fit_speckle,
    speckle_metadata,
)

__all__ = ["LogRatioPreset"]


class LogRatioParams(SinglePolParams):
    threshold: ThresholdMethod = Field("kittler-illingworth", description="Automatic threshold method.")
    threshold_mode: Literal["split", "absolute"] = Field(
        "split",
        description="'split': separate thresholds for increases and decreases; "
        "'absolute': one threshold on |log-ratio|.",
    )
    min_change_db: float = Field(
        3.0, ge=0, description="Smallest change reported, in dB (a floor under the automatic thresholds)."
    )


def _confidence(lr: NDArray[np.floating], t_inc: float, t_dec: float) -> NDArray[np.float32]:
    """|log-ratio| over twice its side's threshold."""
    with np.errstate(invalid="ignore"):
        scale = np.where(lr > 0, t_inc, t_dec)
        return np.asarray(np.clip(np.abs(lr) / (2.0 * np.maximum(scale, 1e-6)), 0.0, 1.0), dtype=np.float32)


@register
class LogRatioPreset(SinglePolPreset[LogRatioParams]):
    """Log-ratio of speckle-filtered intensities with automatic thresholds.

    ``threshold_mode='split'`` (default) computes one threshold on the positive
    log-ratios (increases) and one on the magnitudes of the negative ones
    (decreases), so an asymmetric scene (a flood: many strong decreases, few
    increases) gets a threshold fitted to each tail; ``'absolute'`` computes
    one threshold on ``|log-ratio|`` and takes the direction from the sign.
    Thresholds never go below ``min_change_db``.
    """

    name = "s1-logratio"
    summary = (
        "Log-ratio (dB) of speckle-filtered intensities, Kittler-Illingworth or Otsu thresholds per side; "
        "classes increase / decrease."
    )
    Params = LogRatioParams

    @staticmethod
    def _log_ratio(
        dates: Sequence[Scene], params: LogRatioParams, model: S1Fit
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        b, a = filtered(dates, params, model.pols[0], model.enl)
        lr = log_ratio(b, a).astype(np.float64)
        return lr, dates[0].valid & dates[1].valid & np.isfinite(lr)

    def fit(self, sample: Sequence[Scene], params: LogRatioParams) -> S1Fit:
        pol, enl = fit_speckle(sample, params)
        lr, ok = self._log_ratio(sample, params, S1Fit([pol], enl))
        if params.threshold_mode == "split":
            t_inc = automatic_threshold(lr[ok & (lr > 0)], params.threshold)
            t_dec = automatic_threshold(-lr[ok & (lr < 0)], params.threshold)
        else:
            t_inc = t_dec = automatic_threshold(np.abs(lr[ok]), params.threshold)
        thresholds: dict[str, float | None] = {
            "increase": max(t_inc if t_inc is not None else 0.0, params.min_change_db),
            "decrease": max(t_dec if t_dec is not None else 0.0, params.min_change_db),
        }
        return S1Fit([pol], enl, thresholds, {"speckle": speckle_metadata(params, enl)})

    def apply(self, window: Sequence[Scene], params: LogRatioParams, model: S1Fit) -> WindowOutput:
        lr, ok = self._log_ratio(window, params, model)
        t_inc, t_dec = self._thresholds(model)
        with np.errstate(invalid="ignore"):
            classes = direction_classes(ok & (lr > t_inc), ok & (lr < -t_dec), ok)
        return WindowOutput(classes, np.where(ok, lr, np.nan).astype(np.float32))

    @staticmethod
    def _thresholds(model: S1Fit) -> tuple[float, float]:
        return float(model.thresholds["increase"] or 0.0), float(model.thresholds["decrease"] or 0.0)

    def describe_fit(self, model: S1Fit, params: LogRatioParams) -> FitSummary:
        t_inc, t_dec = self._thresholds(model)
        metadata: dict[str, Any] = {
            "polarisation": model.pols[0],
            "speckle": model.metadata["speckle"],
            "threshold": params.threshold,
            "threshold_mode": params.threshold_mode,
            "increase_threshold_db": t_inc,
            "decrease_threshold_db": -t_dec,
            "signed_statistic": True,
        }
        return FitSummary("log_ratio_db", S1_CLASSES, metadata, lambda lr: _confidence(lr, t_inc, t_dec))
