"""``s1-omnibus``: the omnibus likelihood-ratio test on pairs and time series."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from ...errors import InputError
from ...kernels import omnibus as omni
from ...model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeClass, Scene
from ..base import FitSummary, LayerSpec, Preset, WindowOutput
from ..registry import register
from .common import (
    DEFAULT_ENL,
    MIXED,
    S1_CLASSES,
    S1_SAMPLE,
    Pol,
    PositiveFloat,
    S1Fit,
    S1Params,
    common_polarisations,
    enl_of,
    masked,
)

__all__ = ["OmnibusPreset", "OMNIBUS_CLASSES"]

OMNIBUS_CLASSES = (
    *S1_CLASSES,
    ChangeClass(MIXED, "mixed", (255, 200, 0), "polarisations changed in opposite directions"),
)
_NO_INTERVAL = -1


class OmnibusParams(S1Params):
    polarisations: tuple[Pol, ...] | Literal["auto"] = Field(
        "auto", description="Polarisations tested together: 'auto' = every one common to all dates."
    )
    alpha: float = Field(0.01, gt=0, lt=1, description="Significance level (false-alarm rate per test).")
    enl: PositiveFloat | Literal["auto"] = Field(
        "auto",
        description="Equivalent number of looks of the (unfiltered) intensities: a number, or 'auto' = "
        f"median estimate over dates and bands (else sar:looks_equivalent_number, else {DEFAULT_ENL}).",
    )
    statistic: Literal["p-value", "-log10p"] = Field(
        "p-value", description="Statistic layer: the p-value of the omnibus test, or -log10 of it."
    )

    @field_validator("polarisations", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        if isinstance(v, str) and v != "auto":
            return tuple(s.strip().lower() for s in re.split(r"[,+ ]+", v) if s.strip())
        if isinstance(v, list | tuple):
            return tuple(str(s).lower() for s in v)
        return v

    def wanted_polarisations(self) -> list[str]:
        return [] if self.polarisations == "auto" else list(self.polarisations)


def _one_minus(p: NDArray[np.floating]) -> NDArray[np.float32]:
    """Omnibus confidence 1 - p from the p-value statistic."""
    return (1.0 - np.asarray(p, dtype=np.float64)).astype(np.float32)


def _one_minus_power(neg_log10_p: NDArray[np.floating]) -> NDArray[np.float32]:
    """Omnibus confidence 1 - p from the -log10 p statistic."""
    return (1.0 - 10.0 ** -np.asarray(neg_log10_p, dtype=np.float64)).astype(np.float32)


@register
class OmnibusPreset(Preset[OmnibusParams, S1Fit]):
    """The omnibus likelihood-ratio test (Conradsen et al. 2016, sequential form after
    Canty) on the unfiltered intensities of every common polarisation (dual- or single-pol).

    A pair gives classes increase / decrease / mixed at level ``alpha``. A series of k > 2
    dates gives, per pixel, the direction of its last change as class, and the layers
    first change, last change, frequency and per-interval direction. The statistic is
    the p-value of the test over all dates (or -log10 p). The ENL is fitted once for
    the series (median estimate over dates and bands of the sample).
    """

    name = "s1-omnibus"
    sensor = "sentinel-1"
    summary = (
        "Omnibus likelihood-ratio test (Conradsen 2016, sequential form): p-values at significance alpha, "
        "pairs or series; classes increase / decrease / mixed."
    )
    Params = OmnibusParams
    max_dates = None
    sample_design = S1_SAMPLE

    def bands(self, params: OmnibusParams, available: Sequence[str]) -> tuple[str, ...]:
        pols = params.wanted_polarisations() or common_polarisations(available)
        if not pols:
            raise InputError(
                "no polarisation is common to every date; give dates with the same polarisations"
            )
        return tuple(pols)

    def layers(self, params: OmnibusParams, dates: int) -> tuple[LayerSpec, ...]:
        if dates <= 2:
            return ()
        intervals = tuple(f"interval {i}: date {i} -> date {i + 1}" for i in range(1, dates))
        return (
            LayerSpec(
                "first_change",
                "first_change.tif",
                "Interval of the first change (0 = none, -1 = no data)",
                "int16",
                ("first_change",),
                _NO_INTERVAL,
            ),
            LayerSpec(
                "last_change",
                "last_change.tif",
                "Interval of the last change (0 = none, -1 = no data)",
                "int16",
                ("last_change",),
                _NO_INTERVAL,
            ),
            LayerSpec(
                "frequency",
                "change_frequency.tif",
                "Number of changes (-1 = no data)",
                "int16",
                ("frequency",),
                _NO_INTERVAL,
            ),
            LayerSpec(
                "direction",
                "change_direction.tif",
                "Direction per interval (0 none, 1 increase, 2 decrease, 3 mixed, 255 no data)",
                "uint8",
                intervals,
                NO_DATA_CLASS,
            ),
        )

    @staticmethod
    def _series(dates: Sequence[Scene], pols: Sequence[str]) -> NDArray[np.float64]:
        return np.stack([np.stack([masked(s, p) for p in pols]) for s in dates])

    def fit(self, sample: Sequence[Scene], params: OmnibusParams) -> S1Fit:
        if len(sample) < 2:
            raise InputError(f"the omnibus test needs at least 2 dates; got {len(sample)}")
        common = [b for b in sample[0].bands if all(b in s.bands for s in sample)]
        pols = list(self.bands(params, common))
        images = [masked(s, p) for s in sample for p in pols]
        return S1Fit(
            pols, {"series": enl_of(images, sample[0], params.enl)}, {}, {"scenes": [s.id for s in sample]}
        )

    def apply(self, window: Sequence[Scene], params: OmnibusParams, model: S1Fit) -> WindowOutput:
        res = omni.omnibus_change(self._series(window, model.pols), model.enl["series"][0], params.alpha)
        k = len(window)
        if k == 2:
            classes = res.direction[0].copy()
        else:
            idx = np.clip(res.last_change.astype(np.int64) - 1, 0, k - 2)
            last = np.take_along_axis(res.direction, idx[np.newaxis], axis=0)[0]
            classes = np.where(res.last_change > 0, last, NO_CHANGE_CLASS).astype(np.uint8)
        classes[~res.valid] = NO_DATA_CLASS
        p = res.p_overall.astype(np.float64)
        with np.errstate(divide="ignore"):
            stat = p if params.statistic == "p-value" else -np.log10(np.maximum(p, 1e-300))
        statistic = np.where(res.valid, stat, np.nan).astype(np.float32)
        layers: dict[str, NDArray[Any]] = {}
        if k > 2:
            layers = {
                "first_change": res.first_change[np.newaxis],
                "last_change": res.last_change[np.newaxis],
                "frequency": res.frequency[np.newaxis],
                "direction": res.direction,
            }
        return WindowOutput(classes.astype(np.uint8), statistic, layers)

    def describe_fit(self, model: S1Fit, params: OmnibusParams) -> FitSummary:
        enl, source = model.enl["series"]
        scenes = model.metadata["scenes"]
        metadata = {
            "polarisation": model.pols[0],
            "polarisations": model.pols,
            "enl": round(enl, 3),
            "enl_source": source,
            "alpha": params.alpha,
            "dates": len(scenes),
            "higher_is_change": params.statistic != "p-value",
            "scenes": scenes,
        }
        if params.statistic == "p-value":
            return FitSummary("omnibus_p_value", OMNIBUS_CLASSES, metadata, _one_minus)
        return FitSummary("omnibus_neg_log10_p", OMNIBUS_CLASSES, metadata, _one_minus_power)
