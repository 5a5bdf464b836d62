"""What a detection preset is: a pure, stateless algorithm run by the block engine.

A preset declares what it reads and returns (``bands``, ``halo``, ``layers``) and
computes in four steps, each on arrays only (no files, no settings):

1. ``fit(sample, params) -> model``: global statistics (transforms, thresholds, ENL)
   from a sample of every date (the whole scene when it is small);
2. ``apply(window, params, model) -> WindowOutput``: classes, statistic and any extra
   layers of one window of every date (with ``halo`` pixels of context);
3. ``calibrate(statistic, params, model, exact) -> model``: an optional whole-map
   calibration of the stitched statistic, in place (final afterwards);
4. ``finish(classes, statistic, params, model, exact) -> classes``: an optional
   whole-map step on the stitched classes (e.g. one class per region).

``describe_fit(model, params)`` names the statistic, the class table, the provenance
metadata and the confidence function. ``eowatch.engine`` runs these steps on scenes
of any size (a small scene is one window) and on pairs or time series alike (a
window holds every date, oldest first). The model is plain data: it travels to Dask
workers with the windows. See titiler's ``BaseAlgorithm``: algorithms as small
registered objects.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ..model import Block, ChangeClass, Scene

__all__ = [
    "Preset",
    "PresetParams",
    "WindowOutput",
    "PixelValues",
    "FitSummary",
    "LayerSpec",
    "SampleDesign",
    "Confidence",
]

#: Statistic values -> 0..1 confidence, evaluated on the changed pixels only.
Confidence = Callable[[NDArray[np.floating[Any]]], NDArray[np.float32]]


@dataclass(frozen=True)
class LayerSpec:
    """An extra per-pixel output of a preset (e.g. the omnibus series maps): stitched
    from the windows like the classes, written as a COG asset ``key``."""

    key: str
    file: str
    title: str
    dtype: str
    bands: tuple[str, ...]
    nodata: float


@dataclass
class WindowOutput:
    """What a preset computes for one window: per-pixel change codes (``NO_CHANGE_CLASS``
    where not changed), the float32 statistic and its declared layers (bands first)."""

    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    layers: dict[str, NDArray[Any]] = field(default_factory=dict)
    #: Values the whole-map step needs at a few pixels (e.g. the terms of the class rules at
    #: the changed ones): their flat indices in the window and a (k, n) float16 array.
    pixels: tuple[NDArray[np.int32], NDArray[np.float16]] | None = None


@dataclass(frozen=True)
class PixelValues:
    """The windows' ``pixels`` on the whole grid (``width`` pixels wide), kept per window
    (one copy, never concatenated): its block, flat indices in it, (k, n) values. Read
    once, with ``drain``."""

    width: int
    windows: list[tuple[Block, NDArray[np.int32], NDArray[np.float16]]]

    def drain(self) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float16]]]:
        """(flat indices on the grid, values) of each window, taken out as they are given
        (a window's values are freed once the caller moves on)."""
        while self.windows:
            block, local, values = self.windows.pop()
            rows, cols = np.divmod(local.astype(np.int64), block.width)
            yield (rows + block.row) * self.width + cols + block.col, values


@dataclass(frozen=True)
class FitSummary:
    """What a fitted model says about the whole result: the statistic's name, the class
    table, provenance metadata, and how to turn statistic values into a 0..1 confidence
    (``None``: the preset rates no confidence)."""

    statistic_name: str
    class_table: tuple[ChangeClass, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    confidence_of: Confidence | None = None


@dataclass(frozen=True)
class SampleDesign:
    """How the fit sample is drawn from a scene larger than the sample
    (``eowatch.engine.blocks``): ``lattice`` x ``lattice`` windows spread over the scene,
    or, for fits that treat pixels independently (``pixelwise``), every few pixels of
    whole file tiles. Spatial filters (speckle) need contiguous windows."""

    lattice: int = 8
    pixelwise: bool = False


class PresetParams(BaseModel):
    """Parameters every preset shares. Subclasses add their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_area_m2: float = Field(
        1000.0, ge=0, description="Minimum mapping unit: change regions smaller than this (m²) are removed."
    )
    cleanup_radius: int = Field(
        0, ge=0, le=10, description="Morphological opening then closing of the change mask (disk radius, px)."
    )
    cloud_mask: Literal["auto", "scl", "s2cloudless", "none"] = Field(
        "auto",
        description="Cloud/shadow masking: SCL if the input has it, else s2cloudless when installed (auto).",
    )


P = TypeVar("P", bound=PresetParams)
M = TypeVar("M")


class Preset(ABC, Generic[P, M]):
    """A named change-detection algorithm over parameters ``P`` with a fitted model ``M``."""

    name: ClassVar[str]
    sensor: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[PresetParams]] = PresetParams
    #: The most dates compared at once (2: pairs only; None: any time series).
    max_dates: ClassVar[int | None] = 2
    sample_design: ClassVar[SampleDesign] = SampleDesign()

    @abstractmethod
    def bands(self, params: P, available: Sequence[str]) -> tuple[str, ...]:
        """Bands read from every date, given those every input has (``available``)."""

    def halo(self, params: P) -> int:
        """Pixels of context each window needs on every side (spatial filters); 0 = pixelwise."""
        return 0

    def layers(self, params: P, dates: int) -> tuple[LayerSpec, ...]:
        """Extra per-pixel outputs of a run over ``dates`` dates. None by default."""
        return ()

    @abstractmethod
    def fit(self, sample: Sequence[Scene], params: P) -> M:
        """The model (global statistics) from a sample of every date, oldest first."""

    @abstractmethod
    def apply(self, window: Sequence[Scene], params: P, model: M) -> WindowOutput:
        """Classes, statistic and layers of one window of every date."""

    def calibrate(self, statistic: NDArray[np.float32], params: P, model: M, exact: bool) -> M:
        """A whole-map calibration of the stitched statistic, in place (it is final after
        this); returns the model it implies. ``exact``: the fit saw the whole scene."""
        return model

    def finish(
        self,
        classes: NDArray[np.uint8],
        statistic: NDArray[np.float32],
        params: P,
        model: M,
        exact: bool,
        pixels: PixelValues | None = None,
    ) -> NDArray[np.uint8]:
        """A whole-map step on the stitched classes, the final statistic and the windows'
        ``pixels`` (None when the preset's windows give none). None by default."""
        return classes

    @abstractmethod
    def describe_fit(self, model: M, params: P) -> FitSummary:
        """Statistic name, class table, metadata and confidence function of a fitted model."""

    def describe(self) -> dict[str, Any]:
        """Name, sensor, summary and parameters (with defaults) as plain data."""
        fields = {
            name: {
                "default": f.default,
                "type": getattr(f.annotation, "__name__", str(f.annotation)),
                "description": f.description or "",
            }
            for name, f in self.Params.model_fields.items()
        }
        return {"name": self.name, "sensor": self.sensor, "summary": self.summary, "parameters": fields}
