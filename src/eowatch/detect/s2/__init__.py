"""Sentinel-2 presets: IR-MAD, change vector analysis, burn scars, water."""

from __future__ import annotations

from .burn import BurnPreset
from .common import S2_CLASSES
from .cva import CVAPreset
from .imad import IMADPreset
from .learned import LearnedPreset
from .water import WaterPreset

__all__ = ["IMADPreset", "CVAPreset", "BurnPreset", "WaterPreset", "LearnedPreset", "S2_CLASSES"]
