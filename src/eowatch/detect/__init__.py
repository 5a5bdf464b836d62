"""Detection presets: named recipes composed from ``eowatch.kernels``."""

from __future__ import annotations

from .base import Preset, PresetParams
from .registry import get_preset, list_presets, parse_params, register

__all__ = ["Preset", "PresetParams", "get_preset", "list_presets", "parse_params", "register"]
