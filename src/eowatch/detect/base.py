"""What every detection preset is: a small object with a name, a typed
parameter model, the bands it needs and a ``run`` over two scenes.

Presets compose kernels; they never open files (titiler's ``BaseAlgorithm``
lesson: algorithms as small registered objects).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from ..model import ChangeClass, ChangeResult, Scene

__all__ = ["Preset", "PresetParams", "WindowOutput", "FitSummary"]


@dataclass
class WindowOutput:
    """What a windowed preset computes for one window: per-pixel change codes
    (``NO_CHANGE_CLASS`` where not changed) and the float32 statistic."""

    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]


@dataclass
class FitSummary:
    """What a fitted model says about the whole result: the statistic's name,
    the class table, provenance metadata, and how to turn statistic values into
    a 0..1 confidence (computed only where polygons need it, so a full tile
    never holds a confidence array)."""

    statistic_name: str
    class_table: tuple[ChangeClass, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    confidence_of: Callable[[NDArray[np.floating]], NDArray[np.float32]] | None = None


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


class Preset(ABC):
    """A named change-detection recipe."""

    name: ClassVar[str]
    sensor: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[PresetParams]] = PresetParams

    @abstractmethod
    def bands(self, params: Any) -> tuple[str, ...]:
        """Bands the preset reads from each date."""

    @abstractmethod
    def run(self, before: Scene, after: Scene, params: Any) -> ChangeResult:
        """Detect changes between two co-registered scenes on one grid."""

    #: True when the preset runs window by window (``fit`` on a sample, ``apply_window``
    #: per window, ``finish`` on the stitched class map); see ``eowatch.blockwise``.
    windowed: ClassVar[bool] = False
    #: Side of the lattice of sample windows the fit reads on large scenes (see
    #: ``eowatch.io.windows.sample_blocks``): pixelwise fits gain from more, smaller
    #: windows; spatial filters (speckle) want larger ones.
    sample_lattice: ClassVar[int] = 8
    #: True when ``fit`` treats pixels independently (no spatial filter): the sample is then
    #: every few pixels of whole file tiles (``eowatch.io.windows.sample_cells``).
    pixelwise_fit: ClassVar[bool] = False

    def halo(self, params: Any) -> int:
        """Pixels of context each window needs on every side (speckle filters); 0 = pixelwise."""
        return 0

    def fit(self, before: Scene, after: Scene, params: Any) -> Any:
        """Global statistics (transforms, calibrations, thresholds) from a sample of the pair."""
        raise NotImplementedError(f"preset {self.name} does not run window by window")

    def apply_window(self, before: Scene, after: Scene, params: Any, model: Any) -> WindowOutput:
        """Classes and statistic of one window with a fitted ``model``."""
        raise NotImplementedError(f"preset {self.name} does not run window by window")

    def calibrate(self, statistic: NDArray[np.float32], params: Any, model: Any, exact: bool) -> None:
        """A whole-map calibration of the stitched statistic, in place (it is final after
        this: products may be written from it while ``finish`` runs); may update ``model``.
        ``exact`` is true when the fit saw the whole scene. None by default."""
        return None

    def finish(
        self, classes: NDArray[np.uint8], statistic: NDArray[np.float32], params: Any, model: Any, exact: bool
    ) -> NDArray[np.uint8]:
        """A whole-map step on the stitched classes and calibrated statistic (e.g. one class
        per region). None by default."""
        return classes

    def summary_of(self, model: Any, params: Any) -> FitSummary:
        """Statistic name, class table, metadata and confidence function of a fitted model."""
        raise NotImplementedError(f"preset {self.name} does not run window by window")

    def prepare(self, acq: Any, params: Any) -> Any:
        """Adjust an input before reading (e.g. declare or detect SAR units); identity by default."""
        return acq

    def check_pair(self, before: Any, after: Any, params: Any) -> None:
        """Refuse pairs that cannot be compared (e.g. Sentinel-1 orbits); none by default."""
        return None

    def extra_products(
        self, before: Scene, after: Scene, result: ChangeResult
    ) -> tuple[dict[str, Any], dict[str, tuple[str, str, str]]]:
        """Sensor-specific products: writers ``fn(folder)`` and their STAC assets
        ``key -> (file name, title, media type)``. None by default."""
        return {}, {}

    def item_properties(self, before: Any, after: Any) -> dict[str, Any]:
        """Extra STAC Item properties (e.g. calibration notes). None by default."""
        return {}

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
