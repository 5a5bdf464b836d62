"""The decisions of ``s1-flood``: a water level and a decrease threshold only where the
data support them, and the relative normalisation of uncalibrated inputs.

Each threshold is a ``Decision``: its value (None = no change can be mapped), where it
came from (``split``: a supported split of the sample's values; ``fixed``: a stated
physical level; ``forced``: an always-splitting histogram method; ``none``) and the
bimodality test behind it, for the product's provenance.

* Water (after-date dB): a split-based search for bimodal sub-tiles
  (``eowatch.kernels.mixture.tiled_split``, Martinis et al. 2009; Chini et al. 2017)
  whose two components are at least ``water_contrast_db`` apart: open water is 5-15 dB
  darker than land in C-band VV, while the bimodality a speckle filter leaves between
  two fields of one land cover is 1-3 dB wide. Not supported: a fixed level
  (``water_fallback_db``, sigma0 VV of calm open water) on calibrated inputs, none on
  uncalibrated ones (an absolute dB level means nothing there).
* Relative normalisation (uncalibrated inputs: GRD DN, 8-bit exports): the log-ratio
  of a scene whose two dates were stretched differently is offset by a constant in dB
  (OMBRIA: +0.2 to +7.9 dB over unflooded pixels). The offset is the median log-ratio
  of the stable pixels (valid, not water on the after date: flooding only darkens),
  subtracted from every log-ratio; it needs ``MIN_STABLE_FRACTION`` of the pixels.
* Decrease (normalised log-ratio): the fixed ``decrease_db`` (-3 dB), at most
  ``MAX_DECREASE_DB``; the always-splitting rules (``otsu``, ``kittler-illingworth``)
  split the log-ratio and are clamped to it. A decrease threshold is therefore always
  below 0 dB: a pixel that brightened relative to the scene's stable pixels is never a
  decrease. The water test is what decides whether a scene has flood at all.

The criteria, measured (``eowatch evaluate ../shared/data --dataset s1-dry``, which also
scores the 104 OMBRIA pairs; dry = the 53 OMBRIA quadrants under 1 % flood):

* one Gaussian (or the dB of ENL 4.4 speckle) fits as two overlapping components with
  Ashman's D about 1.5, but two filtered land fields 3 dB apart reach D about 6, so D >= 2
  alone would split land from land: hence the ``water_contrast_db`` gap as well;
* defaults (D >= 2, gap 5 dB, decrease -3 dB): dry p90 flagged 6.1 %, pooled F1 0.592;
  gap 3 dB: p90 11.1 %, F1 0.569; gap 7 dB: p90 0 %, F1 0.564; D >= 1.5: p90 6.1 %,
  F1 0.591; D >= 2.5: p90 5.3 %, F1 0.564; decrease -2 dB: p90 13.6 %, F1 0.605;
  decrease -4 dB: p90 2.4 %, F1 0.573;
* unchanged re-speckled real scenes (Sen1Floods11 VV/VH, pyroSAR VV, measured ENL 6.3,
  6.0, 8.8) put 10-13 % of their filtered log-ratios below -1 dB and 0.5-1.4 % below
  -3 dB: a decrease threshold above ``MAX_DECREASE_DB`` would be speckle, not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ...kernels.mixture import Split, tiled_split
from ...model import Scene
from .common import automatic_threshold

__all__ = [
    "ThresholdRule",
    "NormaliseMode",
    "Decision",
    "Normalisation",
    "MAX_DECREASE_DB",
    "MIN_STABLE_FRACTION",
    "SPLIT_TILE",
    "is_uncalibrated",
    "water_decision",
    "normalisation",
    "decrease_decision",
]

ThresholdRule = Literal["mixture", "otsu", "kittler-illingworth"]
NormaliseMode = Literal["auto", "on", "off"]

#: A decrease threshold is never above this (dB): a log-ratio closer to 0 is within the
#: spread of unchanged speckle-filtered pixels (10-13 % of them on re-speckled real scenes,
#: see the module's docstring and ``eowatch.evaluation.dry``).
MAX_DECREASE_DB = -1.0
#: The normalisation needs at least this share of the valid pixels to be stable.
MIN_STABLE_FRACTION = 0.1
#: Side of the sub-tiles of the split-based search (pixels).
SPLIT_TILE = 32
#: Sub-tiles pass the test when their smaller component holds at least this share.
TILE_MIN_WEIGHT = 0.1
#: The pooled bimodal sub-tiles pass when their smaller component holds at least this.
POOLED_MIN_WEIGHT = 0.02


@dataclass(frozen=True)
class Decision:
    """A threshold (None: nothing can be mapped), where it came from and its test."""

    value: float | None
    source: Literal["split", "fixed", "forced", "none"]
    test: Split | None = None
    note: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "value_db": None if self.value is None else round(self.value, 4),
            "source": self.source,
        }
        if self.note:
            out["note"] = self.note
        if self.test is not None:
            out["test"] = self.test.describe()
        return out


@dataclass(frozen=True)
class Normalisation:
    """The dB offset subtracted from the log-ratio (0 when not applied) and why."""

    mode: NormaliseMode
    applied: bool
    offset_db: float
    stable_fraction: float | None
    note: str

    @property
    def failed(self) -> bool:
        """Asked for (or needed) but impossible: too few stable pixels."""
        return self.note.startswith("too few stable")

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "applied": self.applied,
            "offset_db": round(self.offset_db, 4),
            "stable_fraction": None if self.stable_fraction is None else round(self.stable_fraction, 4),
            "note": self.note,
        }


def is_uncalibrated(scenes: Sequence[Scene]) -> bool:
    """True when any date is not calibrated backscatter: GRD amplitude DN (``eowatch:units``
    says ``dn``) or a declared ``eowatch:calibration`` starting with 'uncalibrated'."""
    for s in scenes:
        units = s.properties.get("eowatch:units") or {}
        if isinstance(units, dict) and any(
            isinstance(u, dict) and u.get("units") == "dn" for u in units.values()
        ):
            return True
        if str(s.properties.get("eowatch:calibration", "")).startswith("uncalibrated"):
            return True
    return False


def water_decision(
    after_db: NDArray[np.floating],
    rule: ThresholdRule,
    min_d: float,
    contrast_db: float,
    fallback_db: float,
    calibrated: bool,
) -> Decision:
    """The open-water level of the after date (``after_db``: NaN = not valid)."""
    if rule != "mixture":
        t = automatic_threshold(after_db, rule)
        return Decision(t, "forced" if t is not None else "none", note=f"{rule}: always splits")
    split = tiled_split(after_db, SPLIT_TILE, min_d, TILE_MIN_WEIGHT, POOLED_MIN_WEIGHT, min_gap=contrast_db)
    if split.supported:
        return Decision(split.threshold, "split", split)
    if calibrated:
        return Decision(fallback_db, "fixed", split, "no supported split: sigma0 level of open water")
    return Decision(None, "none", split, "no supported split, and no absolute level on uncalibrated input")


def normalisation(
    log_ratio: NDArray[np.floating],
    after_db: NDArray[np.floating],
    water: float | None,
    mode: NormaliseMode,
    uncalibrated: bool,
) -> Normalisation:
    """The offset of the log-ratio over stable pixels (valid and, given a water level,
    not water on the after date), applied when ``mode`` is 'on', or 'auto' on
    uncalibrated inputs."""
    apply = mode == "on" or (mode == "auto" and uncalibrated)
    if not apply:
        why = "off" if mode == "off" else "calibrated input: log-ratios are absolute"
        return Normalisation(mode, False, 0.0, None, why)
    lr = np.asarray(log_ratio, dtype=np.float64)
    ok = np.isfinite(lr)
    stable = ok.copy()
    if water is not None:
        with np.errstate(invalid="ignore"):
            stable &= np.asarray(after_db) >= water
    n_ok = int(ok.sum())
    fraction = float(stable.sum() / n_ok) if n_ok else 0.0
    if n_ok == 0 or fraction < MIN_STABLE_FRACTION:
        return Normalisation(
            mode, False, 0.0, fraction, f"too few stable pixels ({fraction:.1%} < {MIN_STABLE_FRACTION:.0%})"
        )
    offset = float(np.median(lr[stable]))
    return Normalisation(
        mode, True, offset, fraction, "median log-ratio of pixels not water on the after date"
    )


def decrease_decision(log_ratio: NDArray[np.floating], rule: ThresholdRule, fixed_db: float) -> Decision:
    """The decrease threshold of the (normalised) log-ratio: the fixed ``fixed_db`` with the
    mixture rule, the forced split clamped to at most ``MAX_DECREASE_DB`` otherwise."""
    if rule == "mixture":
        return Decision(min(fixed_db, MAX_DECREASE_DB), "fixed", note="relative to the stable pixels")
    t = automatic_threshold(log_ratio, rule)
    if t is None:
        return Decision(None, "none")
    clamped = min(t, MAX_DECREASE_DB)
    note = f"{rule}: always splits" + (f"; {t:.2f} dB clamped" if clamped != t else "")
    return Decision(clamped, "forced", note=note)
