"""What each sensor requires of its inputs before detection: one rule set per sensor.

* Sentinel-1: the units of every polarisation band (``eowatch.io.sar_units``: dB and
  GRD amplitude DN are read as linear power) and the pairing rules across every date
  (``eowatch.catalog.pairing.check_s1_inputs``: same relative orbit and pass unless
  waived, common polarisations, no calibrated/uncalibrated mix).
* Sentinel-2: nothing beyond having the bands (cloud masking is planned per date).

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
    def prepare(self, acq: Acquisition, params: PresetParams) -> Acquisition:
        return acq

    def check(self, acqs: Sequence[Acquisition], params: PresetParams) -> dict[str, Any]:
        return {}

    def available_bands(self, acqs: Sequence[Acquisition]) -> tuple[str, ...]:
        return tuple(b for b in acqs[0].assets if all(b in a.assets for a in acqs))


class Sentinel1Rules:
    def prepare(self, acq: Acquisition, params: PresetParams) -> Acquisition:
        return with_units(acq, _s1(params).units)

    def check(self, acqs: Sequence[Acquisition], params: PresetParams) -> dict[str, Any]:
        s1 = _s1(params)
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
