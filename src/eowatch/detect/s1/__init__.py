"""Sentinel-1 presets: log-ratio, the omnibus test, floods and bright targets.

Inputs are made comparable before a preset sees them: units by
``eowatch.io.sar_units`` (dB and GRD amplitude DN read as linear power), pairing
(same relative orbit and pass, common polarisations) by ``eowatch.catalog.pairing``.
Change polygons of ``increase`` / ``decrease`` classes carry ``direction``; the
``s1-flood`` class is named ``decrease`` for that reason.
"""

from __future__ import annotations

from .bright_targets import BrightTargetPreset
from .common import DEFAULT_ENL, S1_CLASSES, S1Params
from .flood import FLOOD_CLASSES, FloodPreset
from .logratio import LogRatioPreset
from .omnibus import OMNIBUS_CLASSES, OmnibusPreset

__all__ = [
    "S1_CLASSES",
    "OMNIBUS_CLASSES",
    "FLOOD_CLASSES",
    "S1Params",
    "LogRatioPreset",
    "OmnibusPreset",
    "FloodPreset",
    "BrightTargetPreset",
    "DEFAULT_ENL",
]
