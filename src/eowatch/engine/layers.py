"""Where the engine stitches a preset's extra layers (``LayerSpec``): in memory by
default, or in any ``LayerSink`` the caller provides (``eowatch.io.cog.CogSpool``
streams them to disk, so a full tile's series maps never sit in memory)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ..detect.base import LayerSpec
from ..model import Block, Grid, Layer

__all__ = ["LayerSink", "SinkFactory", "ArrayLayer", "in_memory"]


class LayerSink(Protocol):
    """Receives one layer window by window (every pixel once), then hands it over."""

    def write(self, block: Block, values: NDArray[Any]) -> None: ...

    def done(self) -> Layer: ...


#: Makes the sink of one layer of a run on a grid.
SinkFactory = Callable[[LayerSpec, Grid], LayerSink]


class ArrayLayer:
    """A layer held in memory (bands, rows, cols)."""

    def __init__(self, spec: LayerSpec, grid: Grid) -> None:
        self.dtype, self.bands = spec.dtype, len(spec.bands)
        self.values: NDArray[Any] = np.empty((self.bands, *grid.shape), dtype=spec.dtype)

    def write(self, block: Block, values: NDArray[Any]) -> None:
        rows, cols = block.slices
        self.values[:, rows, cols] = values

    def done(self) -> ArrayLayer:
        return self

    def read(self) -> NDArray[Any]:
        return self.values


def in_memory(spec: LayerSpec, grid: Grid) -> ArrayLayer:
    return ArrayLayer(spec, grid)
