"""What the engine reads: one date of a run, window by window.

``eowatch.io.windows.SceneSpec`` reads files (local or remote COGs, Dask workers open
the same ones); ``ArraySource`` serves a scene already in memory (evaluation, tests),
so both go through the same engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..model import Block, Grid, Scene

__all__ = ["DateSource", "DateReader", "ArraySource"]


class DateReader(Protocol):
    """Open files of one date; not thread-safe (one reader per thread)."""

    def read(self, block: Block) -> tuple[Scene, NDArray[np.bool_]]:
        """The block as a Scene (``valid`` with clouds removed) and its cloud mask."""
        ...

    def close(self) -> None: ...


class DateSource(Protocol):
    """One date of a run on the run's grid; pickles cheaply (sent to Dask workers)."""

    @property
    def grid(self) -> Grid: ...

    def open(self) -> DateReader: ...


@dataclass
class ArraySource:
    """A scene in memory, read window by window."""

    scene: Scene

    @property
    def grid(self) -> Grid:
        return self.scene.grid

    def open(self) -> ArraySource:
        return self

    def close(self) -> None:
        return None

    def read(self, block: Block) -> tuple[Scene, NDArray[np.bool_]]:
        s = self.scene
        rows, cols = block.slices
        sub = Scene(
            data=s.data[:, rows, cols],
            valid=s.valid[rows, cols],
            bands=s.bands,
            grid=block.grid_of(s.grid),
            id=s.id,
            datetime=s.datetime,
            sensor=s.sensor,
            properties=s.properties,
        )
        return sub, np.zeros((block.height, block.width), dtype=bool)
