"""The block engine: the one way a preset runs, on scenes of any size and on pairs or
time series (``run_windows``, ``detect_arrays``)."""

from __future__ import annotations

from .layers import ArrayLayer, LayerSink, SinkFactory, in_memory
from .options import EngineOptions
from .run import Stitched, apply_mmu, detect_arrays, no_valid_data_result, run_windows
from .sources import ArraySource, DateReader, DateSource
from .stats import EngineStats

__all__ = [
    "EngineOptions",
    "EngineStats",
    "Stitched",
    "run_windows",
    "detect_arrays",
    "apply_mmu",
    "no_valid_data_result",
    "ArraySource",
    "DateSource",
    "DateReader",
    "LayerSink",
    "SinkFactory",
    "ArrayLayer",
    "in_memory",
]
