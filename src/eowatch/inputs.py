"""What each sensor requires of its inputs before detection: one rule set per sensor.

* Sentinel-1: the units of every polarisation band (``eowatch.io.sar_units``: dB and
  GRD amplitude DN are read as linear power) and the pairing rules across every date
  (``eowatch.catalog.pairing.check_s1_inputs``: same relative orbit and pass unless
  waived, common polarisations, no calibrated/uncalibrated mix).
* Sentinel-2: one processing level across the dates as their metadata state it (L1C
  with L2A only when ``allow_mixed_levels`` says so, and recorded), and every declared radiometric offset
  consistent with the pixels (``eowatch.io.s2_metadata.check_offset_not_applied``, on
  a 256 x 256 overview of one band). Cloud masking is planned per date.

The rules return values (prepared acquisitions, the bands every input has, the STAC
Item properties recording what was checked); presets receive those values and keep
no state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .catalog.pairing import S1View, check_s1_inputs
from .detect.base import PresetParams
from .detect.s1.common import S1Params
from .detect.s2.common import S2Params
from .errors import InputError, PairingError
from .io.load import read_decimated, reference_grid
from .io.s1_ard import is_radar_geometry
from .io.s2_metadata import check_offset_not_applied
from .io.sar_units import SAR_POLARISATIONS, calibration_properties, is_uncalibrated, with_units
from .io.sources import Acquisition

__all__ = ["SensorRules", "rules_for"]


class SensorRules(Protocol):
    def prepare(self, acq: Acquisition, params: PresetParams) -> Acquisition:
        """``acq`` ready to read (e.g. its units found)."""
        ...

    def check(self, acqs: Sequence[Acquisition], params: PresetParams) -> dict[str, Any]:
        """Refuse inputs that cannot be compared; the Item properties recording the check."""
        ...

    def available_bands(self, acqs: Sequence[Acquisition]) -> tuple[str, ...]:
        """The bands every input has."""
        ...


class Sentinel2Rules:
    #: The band whose overview checks a declared offset (red: dark on water, never on TOA).
    OFFSET_CHECK_BANDS = ("B04", "B03", "B08")
    OFFSET_CHECK_SHAPE = (256, 256)

    def prepare(self, acq: Acquisition, params: PresetParams) -> Acquisition:
        return acq

    def check(self, acqs: Sequence[Acquisition], params: PresetParams) -> dict[str, Any]:
        levels = [str(a.properties.get("processing:level", "unknown")) for a in acqs]
        # Only levels the metadata state can contradict each other (band folders' are guesses).
        stated = {
            a.properties.get("processing:level")
            for a in acqs
            if not a.properties.get("eowatch:level_guessed")
        }
        mixed = len(stated - {None}) > 1
        allowed = isinstance(params, S2Params) and params.allow_mixed_levels
        if mixed and not allowed:
            listing = ", ".join(f"{a.id}: {level}" for a, level in zip(acqs, levels, strict=True))
            raise InputError(
                f"the dates mix processing levels ({listing}): top-of-atmosphere (L1C) and surface (L2A) "
                "reflectance differ by the atmosphere, which would show up as change. Give the same level "
                "for every date, or pass allow_mixed_levels=true to compare them anyway"
            )
        for acq in acqs:
            self._check_offset(acq)
        return {"eowatch:processing_levels": levels, "eowatch:mixed_levels": mixed}

    def _check_offset(self, acq: Acquisition) -> None:
        band = next((b for b in self.OFFSET_CHECK_BANDS if b in acq.assets), None)
        if band is None or acq.assets[band].offset >= 0:
            return
        values = read_decimated(acq, reference_grid(acq), (band,), self.OFFSET_CHECK_SHAPE)[0]
        check_offset_not_applied(acq.id, band, values, acq.assets[band].offset)

    def available_bands(self, acqs: Sequence[Acquisition]) -> tuple[str, ...]:
        return tuple(b for b in acqs[0].assets if all(b in a.assets for a in acqs))


class Sentinel1Rules:
    def prepare(self, acq: Acquisition, params: PresetParams) -> Acquisition:
        if is_radar_geometry(acq):  # calibrated when geocoded (eowatch.io.s1_ard), then prepared
            return acq
        return with_units(acq, _s1(params).units)

    def check(self, acqs: Sequence[Acquisition], params: PresetParams) -> dict[str, Any]:
        s1 = _s1(params)
        radar = [a.id for a in acqs if is_radar_geometry(a)]
        if radar and len(radar) < len(acqs):
            raise PairingError(
                f"{', '.join(radar)}: GRD in radar geometry cannot be compared with backscatter already "
                "geocoded by another processor (its calibration and terrain correction differ); give GRD "
                "products for every date, or geocode them first with `eowatch ard` the same way"
            )
        views = [S1View(a.id, a.properties, self._pols(a), calibrated=not is_uncalibrated(a)) for a in acqs]
        pairing = check_s1_inputs(views, s1.wanted_polarisations(), s1.allow_mismatched_orbits)
        return {**calibration_properties(acqs[0], acqs[-1]), "eowatch:pairing": pairing}

    def available_bands(self, acqs: Sequence[Acquisition]) -> tuple[str, ...]:
        return tuple(p for p in SAR_POLARISATIONS if all(p in a.assets for a in acqs))

    @staticmethod
    def _pols(acq: Acquisition) -> tuple[str, ...]:
        return tuple(p for p in SAR_POLARISATIONS if p in acq.assets)


def _s1(params: PresetParams) -> S1Params:
    if not isinstance(params, S1Params):
        raise TypeError(f"Sentinel-1 inputs need Sentinel-1 preset parameters, not {type(params).__name__}")
    return params


_RULES: dict[str, SensorRules] = {"sentinel-1": Sentinel1Rules(), "sentinel-2": Sentinel2Rules()}


def rules_for(sensor: str) -> SensorRules:
    return _RULES[sensor]
