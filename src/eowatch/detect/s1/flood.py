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
    direction_classes,
    filtered,
    fit_speckle,
    speckle_halo,
    speckle_metadata,
)
from .flood_rules import (
    MAX_DECREASE_DB,
    Decision,
    NormaliseMode,
    ThresholdRule,
    decrease_decision,
    is_uncalibrated,
    normalisation,
    water_decision,
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
    threshold: ThresholdRule = Field(
        "mixture",
        description="How the water level is found: 'mixture' = only where a two-Gaussian mixture of bimodal "
        "sub-tiles supports a split (else water_fallback_db on calibrated input, else no flood); "
        "'otsu' / 'kittler-illingworth' = histogram splits that always split (a scene without flood "
        "gets one), which then also split the log-ratio for the decrease (clamped to <= -1 dB).",
    )
    min_ashman_d: float = Field(
        2.0, ge=1.0, le=6.0, description="Water split test: least Ashman's D of the two fitted components."
    )
    water_contrast_db: float = Field(
        5.0,
        ge=0,
        le=20,
        description="Water split: least dB between the dark (water) and bright component means.",
    )
    water_fallback_db: float = Field(
        -18.0,
        ge=-40,
        le=-5,
        description="Water level (after-date sigma0 VV, dB) when no split is supported, on calibrated "
        "input only (uncalibrated input then maps no flood).",
    )
    decrease_db: float = Field(
        -3.0,
        ge=-20,
        le=MAX_DECREASE_DB,
        description="Decrease threshold of the (normalised) log-ratio: a candidate darkened by more than "
        f"this (dB; at most {MAX_DECREASE_DB:g}, so a pixel that brightened is never a decrease).",
    )
    normalise: NormaliseMode = Field(
        "auto",
        description="Relative normalisation: subtract the median log-ratio of stable pixels (not water "
        "after). 'auto' = on uncalibrated input (GRD DN, 8-bit exports), 'on', 'off'.",
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


#: Confidence of a flood pixel from the least to the most decreased (see ``_decrease_confidence``).
#: Measured, not assumed: on OMBRIA (development set) the flagged pixels' precision rises
#: linearly with the ramp from 0.33 to 0.82; fitted on alternate tiles and scored on the
#: others, the expected calibration error is 0.084 and 0.085 (0.17 for the bare ramp).
CONFIDENCE_RANGE = (0.33, 0.82)


def _decrease_confidence(lr: NDArray[np.floating], threshold: float | None) -> NDArray[np.float32]:
    """A ramp of the log-ratio, 0 at one scale above the decrease threshold (pixels the
    density filter filled in), 1/2 at it, 1 one scale below it (scale: the threshold's
    magnitude, at least 1 dB), mapped onto ``CONFIDENCE_RANGE``."""
    if threshold is None:
        return np.full(np.shape(lr), np.nan, dtype=np.float32)
    scale = max(abs(threshold), 1.0)
    ramp = np.clip(0.5 + (threshold - np.asarray(lr, dtype=np.float64)) / (2.0 * scale), 0.0, 1.0)
    lo, hi = CONFIDENCE_RANGE
    return (lo + (hi - lo) * ramp).astype(np.float32)


@register
class FloodPreset(SinglePolPreset[FloodParams]):
    """Flood mapping by a backscatter decrease to the open-water level, decided only where
    the data support it.

    Per date: speckle filter (refined Lee 7x7, ENL estimated per date) and dB. The fit
    (``eowatch.detect.s1.flood_rules``) decides, on the sample:

    1. the water level of the after date: a split between two Gaussian components of
       bimodal sub-tiles (Ashman's D >= ``min_ashman_d``, means >= ``water_contrast_db``
       apart); else ``water_fallback_db`` on calibrated input, else no flood at all;
    2. on uncalibrated input (``normalise='auto'``) the dB offset between the dates: the
       median log-ratio of the pixels not water on the after date, subtracted from the
       log-ratio (the statistic is this normalised log-ratio);
    3. the decrease threshold of the (normalised) log-ratio: ``decrease_db`` (-3 dB),
       never above -1 dB, so a pixel that brightened is never a decrease. (A tiled
       mixture split of the log-ratio was tried as the decrease threshold: it lowered
       OMBRIA's pooled F1 from 0.592 to 0.585, raised the 90th percentile of the flagged
       share of dry OMBRIA quadrants from 6 % to 11 %, and found "bimodal" log-ratios
       at -1.2 and -1.4 dB on 2 of 9 unchanged re-speckled scenes.)

    A pixel is a flood candidate where the after date is below the water level *and*
    the log-ratio below the decrease threshold; flood is where more than
    ``density_fraction`` of the valid pixels of the ``density_window`` neighbourhood are
    candidates (removes speckle noise, fills ragged edges). With
    ``exclude_permanent_water`` pixels dark in both dates (the before date compared with
    the water level moved by the normalisation offset) are never flood; it is off by
    default because the OMBRIA reference masks include such pixels. Confidence is a ramp
    of the log-ratio below the decrease threshold, from 0.33 to 0.82 (the precision the
    ramp's ends have on OMBRIA: ``CONFIDENCE_RANGE``). The item records each decision
    (value, source: split / fixed / forced / none, and the test statistics) and the
    normalisation. Scored on OMBRIA and on dry (no-flood) cases:
    ``eowatch evaluate --dataset ombria`` and ``--dataset s1-dry``.
    """

    name = "s1-flood"
    summary = (
        "Flood: after-date open water AND a log-ratio decrease, on refined-Lee filtered dB. Water level: a "
        "split only where a bimodality test supports one (two-Gaussian mixture of bimodal 32 px sub-tiles, "
        "Ashman's D >= 2, means >= 5 dB apart), else -18 dB on calibrated input, else no flood. Decrease: "
        "-3 dB (never above -1 dB) of the log-ratio, normalised on uncalibrated input (GRD DN, 8-bit "
        "exports) by the median log-ratio of pixels not water after. Neighbourhood density filter; each "
        "decision and its test statistics are recorded in the item."
    )
    Params = FloodParams

    def halo(self, params: FloodParams) -> int:
        # The density filter counts candidates up to density_window // 2 away, and each
        # of those needs its own speckle-filter neighbourhood.
        return speckle_halo(params) + (params.density_window // 2 if params.density_window > 1 else 0)

    @staticmethod
    def _decibels(
        dates: Sequence[Scene], params: FloodParams, model: S1Fit, offset: float = 0.0
    ) -> _Decibels:
        b, a = filtered(dates, params, model.pols[0], model.enl)
        bdb, adb = to_db(b).astype(np.float64), to_db(a).astype(np.float64)
        lr = adb - bdb - offset
        return _Decibels(bdb, adb, lr, dates[0].valid & dates[1].valid & np.isfinite(lr))

    @staticmethod
    def _map(db: _Decibels, t: dict[str, float | None], params: FloodParams
             ) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:  # fmt: skip
        """Flood and permanent water, given the thresholds (water, decrease, offset)."""
        ok = db.ok
        t_water, t_lr = t["water"], t["decrease"]
        if t_water is None or t_lr is None:
            candidate = np.zeros(ok.shape, dtype=bool)
            permanent = candidate
        else:
            # The before date on the after date's scale: before + offset.
            before_level = t_water - (t.get("offset") or 0.0)
            with np.errstate(invalid="ignore"):
                candidate = ok & (db.after < t_water) & (db.log_ratio < t_lr)
                permanent = ok & (db.before < before_level) & (db.after < t_water)
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
        after = np.where(db.ok, db.after, np.nan)
        uncalibrated = is_uncalibrated(sample)
        water = water_decision(
            after,
            params.threshold,
            params.min_ashman_d,
            params.water_contrast_db,
            params.water_fallback_db,
            calibrated=not uncalibrated,
        )
        lr = np.where(db.ok, db.log_ratio, np.nan)
        norm = normalisation(lr, after, water.value, params.normalise, uncalibrated)
        decrease = decrease_decision(lr - norm.offset_db, params.threshold, params.decrease_db)
        if norm.failed:
            decrease = Decision(None, "none", note="no stable pixels to normalise on")
        thresholds = {"water": water.value, "decrease": decrease.value, "offset": norm.offset_db}
        shifted = _Decibels(db.before, db.after, db.log_ratio - norm.offset_db, db.ok)
        _, permanent = self._map(shifted, thresholds, params)
        # The permanent-water fraction is the sample's (the whole scene's when it is its own sample).
        fraction = float(permanent[db.ok].mean()) if db.ok.any() else 0.0
        metadata = {
            "speckle": speckle_metadata(params, enl),
            "permanent": fraction,
            "calibrated": not uncalibrated,
            "water": water.describe(),
            "decrease": decrease.describe(),
            "normalisation": norm.describe(),
        }
        return S1Fit([pol], enl, thresholds, metadata)

    def apply(self, window: Sequence[Scene], params: FloodParams, model: S1Fit) -> WindowOutput:
        t = model.thresholds
        db = self._decibels(window, params, model, t.get("offset") or 0.0)
        flood, _ = self._map(db, t, params)
        classes = direction_classes(np.zeros_like(flood), flood, db.ok)
        return WindowOutput(classes, np.where(db.ok, db.log_ratio, np.nan).astype(np.float32))

    def describe_fit(self, model: S1Fit, params: FloodParams) -> FitSummary:
        t, m = model.thresholds, model.metadata
        metadata = {
            "polarisation": model.pols[0],
            "speckle": m["speckle"],
            "threshold": params.threshold,
            "water_threshold_db": t["water"],
            "decrease_threshold_db": t["decrease"],
            "decisions": {"water": m["water"], "decrease": m["decrease"]},
            "normalisation": m["normalisation"],
            "calibrated_input": m["calibrated"],
            "permanent_water_fraction": round(m["permanent"], 6),
            "signed_statistic": True,
        }
        return FitSummary(
            "log_ratio_db", FLOOD_CLASSES, metadata, partial(_decrease_confidence, threshold=t["decrease"])
        )
