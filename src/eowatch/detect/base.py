"""What every detection preset is: a small object with a name, a typed
parameter model, the bands it needs and a ``run`` over two scenes.

Presets compose kernels; they never open files (titiler's ``BaseAlgorithm``
lesson: algorithms as small registered objects).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..model import ChangeResult, Scene

__all__ = ["Preset", "PresetParams"]


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
