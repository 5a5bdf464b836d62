"""``s1-flood``: flooding as a backscatter decrease to the open-water level."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import NDArray
from pydantic import Field
from scipy import ndimage

from ...kernels.sar import to_db
from ...model import ChangeClass, Scene
from ..base import FitSummary, WindowOutput
from ..registry import register
from .common import (
    DECREASE,
    S1Fit,
    SinglePolParams,
    SinglePolPreset,
    ThresholdMethod,
    automatic_threshold,
    direction_classes,
    filtered,
    fit_speckle,
    speckle_halo,
    speckle_metadata,
)

__all__ = ["FloodPreset", "FLOOD_CLASSES"]

FLOOD_CLASSES = (
    ChangeClass(
        DECREASE,
        "decrease",
        (30, 90, 255),
        "flood: backscatter decreased to the open-water level (dark after, darker than before)",
    ),
)


class FloodParams(SinglePolParams):
    threshold: ThresholdMethod = Field(
        "otsu", description="Automatic threshold for both the water level and the decrease."
    )
    density_window: int = Field(15, ge=1, le=101, description="Neighbourhood of the density filter (pixels).")
    density_fraction: float = Field(
        0.2, ge=0, lt=1, description="Flood where more than this fraction of the neighbourhood is candidate."
    )
    exclude_permanent_water: bool = Field(
        False, description="Pixels dark (below the water threshold) in both dates are not flood."
    )


@dataclass(frozen=True)
class _Decibels:
    """Filtered before / after dB of a window, their log-ratio and where it is valid."""

    before: NDArray[np.float64]
    after: NDArray[np.float64]
    log_ratio: NDArray[np.float64]
    ok: NDArray[np.bool_]


def _density(mask: NDArray[np.bool_], valid: NDArray[np.bool_], window: int) -> NDArray[np.float32]:
    """Fraction of the valid pixels of each ``window`` x ``window`` neighbourhood
    where ``mask`` is set (NaN-aware mean; NaN where no pixel is valid)."""
    num = ndimage.uniform_filter((mask & valid).astype(np.float32), window, mode="reflect")
    den = ndimage.uniform_filter(valid.astype(np.float32), window, mode="reflect")
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = num / den
    return np.where(den > 1e-6, frac, np.nan).astype(np.float32)


def _decrease_confidence(lr: NDArray[np.floating], threshold: float | None) -> NDArray[np.float32]:
    """0.5 at the decrease threshold, 1 at twice as far below it (scale: the threshold's
    magnitude, at least 1 dB)."""
    if threshold is None:
        return np.full(np.shape(lr), np.nan, dtype=np.float32)
    scale = max(abs(threshold), 1.0)
    ramp = 0.5 + (threshold - np.asarray(lr, dtype=np.float64)) / (2.0 * scale)
    return np.clip(ramp, 0.0, 1.0).astype(np.float32)


@register
class FloodPreset(SinglePolPreset[FloodParams]):
    """Flood mapping by a backscatter decrease to the open-water level.

    Per date: speckle filter (refined Lee 7x7, ENL estimated per date) and dB.
    A pixel is a flood candidate where the after date is dark (below an
    automatic threshold of the after dB values: water) *and* the log-ratio is
    below an automatic threshold of the log-ratios (relatively darker than
    the rest of the scene; the threshold is not forced below 0 dB, as that
    loses 0.05 F1 on OMBRIA where the two dates' stretches differ). Flood is
    where more than ``density_fraction`` of the valid pixels of the
    ``density_window`` neighbourhood are candidates (removes speckle noise,
    fills ragged edges). With ``exclude_permanent_water`` pixels dark in both
    dates (below the same water threshold) are never flood; it is off by
    default because it drops OMBRIA's pooled F1 from 0.61 to 0.39 (the
    reference masks include such pixels). Confidence is a ramp of the log-ratio
    below the decrease threshold. Scored on OMBRIA (``eowatch.evaluation.ombria``).
    """

    name = "s1-flood"
    summary = (
        "Flood: after-date open water (automatic threshold) with a log-ratio decrease, on refined-Lee "
        "filtered dB; neighbourhood density filter; optional permanent-water exclusion."
    )
    Params = FloodParams

    def halo(self, params: FloodParams) -> int:
        # The density filter counts candidates up to density_window // 2 away, and each
        # of those needs its own speckle-filter neighbourhood.
        return speckle_halo(params) + (params.density_window // 2 if params.density_window > 1 else 0)

    @staticmethod
    def _decibels(dates: Sequence[Scene], params: FloodParams, model: S1Fit) -> _Decibels:
        b, a = filtered(dates, params, model.pols[0], model.enl)
        bdb, adb = to_db(b).astype(np.float64), to_db(a).astype(np.float64)
        lr = adb - bdb
        return _Decibels(bdb, adb, lr, dates[0].valid & dates[1].valid & np.isfinite(lr))

    @staticmethod
    def _map(db: _Decibels, t_water: float | None, t_lr: float | None, params: FloodParams
             ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:  # fmt: skip
        """Flood and permanent water, given both thresholds."""
        ok = db.ok
        if t_water is None or t_lr is None:
            candidate = np.zeros(ok.shape, dtype=bool)
            permanent = candidate
        else:
            with np.errstate(invalid="ignore"):
                candidate = ok & (db.after < t_water) & (db.log_ratio < t_lr)
                permanent = ok & (db.before < t_water) & (db.after < t_water)
        if params.exclude_permanent_water:
            candidate &= ~permanent
        if params.density_window > 1:
            frac = _density(candidate, ok, params.density_window)
        else:
            frac = candidate.astype(np.float32)
        with np.errstate(invalid="ignore"):
            flood = ok & (frac > params.density_fraction)
        if params.exclude_permanent_water:
            flood &= ~permanent
        return flood, permanent

    def fit(self, sample: Sequence[Scene], params: FloodParams) -> S1Fit:
        pol, enl = fit_speckle(sample, params)
        db = self._decibels(sample, params, S1Fit([pol], enl))
        t_water = automatic_threshold(db.after[db.ok], params.threshold)
        t_lr = automatic_threshold(db.log_ratio[db.ok], params.threshold)
        _, permanent = self._map(db, t_water, t_lr, params)
        # The permanent-water fraction is the sample's (the whole scene's when it is its own sample).
        fraction = float(permanent[db.ok].mean()) if db.ok.any() else 0.0
        metadata = {"speckle": speckle_metadata(params, enl), "permanent": fraction}
        return S1Fit([pol], enl, {"water": t_water, "decrease": t_lr}, metadata)

    def apply(self, window: Sequence[Scene], params: FloodParams, model: S1Fit) -> WindowOutput:
        db = self._decibels(window, params, model)
        t = model.thresholds
        flood, _ = self._map(db, t["water"], t["decrease"], params)
        classes = direction_classes(np.zeros_like(flood), flood, db.ok)
        return WindowOutput(classes, np.where(db.ok, db.log_ratio, np.nan).astype(np.float32))

    def describe_fit(self, model: S1Fit, params: FloodParams) -> FitSummary:
        t = model.thresholds
        metadata = {
            "polarisation": model.pols[0],
            "speckle": model.metadata["speckle"],
            "threshold": params.threshold,
            "water_threshold_db": t["water"],
            "decrease_threshold_db": t["decrease"],
            "permanent_water_fraction": round(model.metadata["permanent"], 6),
            "signed_statistic": True,
        }
        return FitSummary(
            "log_ratio_db", FLOOD_CLASSES, metadata, partial(_decrease_confidence, threshold=t["decrease"])
        )
