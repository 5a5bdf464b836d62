"""A run as data: the plan that goes into the engine and the record that comes out.

``RunPlan`` (made by ``eowatch.plan``): the acquisitions (oldest first), the grid, the
AOI, the preset and its parameters, what each date reads, the checks of the inputs
and the run id. ``RunRecord`` (made by ``eowatch.pipeline``): the plan, the result,
how the engine ran and how long each stage took. Product writers
(``eowatch.products``) write a run's folder from its record alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

from .detect.base import Preset, PresetParams
from .engine.stats import EngineStats
from .io.sources import Acquisition
from .io.windows import SceneSpec
from .model import ChangeResult, Grid

__all__ = ["RunPlan", "RunRecord", "ROLES"]

#: Names of the first and last date in provenance.
ROLES = ("before", "after")


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    preset: Preset[Any, Any]
    params: PresetParams
    acquisitions: tuple[Acquisition, ...]
    grid: Grid
    aoi: BaseGeometry | None
    sources: tuple[SceneSpec, ...]
    #: Cloud-mask method of each date ("scl", "s2cloudless", "none").
    masking: tuple[str, ...]
    #: Extra STAC Item properties: what the input rules checked, discovery's pairing, the task.
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def before(self) -> Acquisition:
        return self.acquisitions[0]

    @property
    def after(self) -> Acquisition:
        return self.acquisitions[-1]

    @property
    def bands(self) -> tuple[str, ...]:
        return self.sources[0].bands


@dataclass
class RunRecord:
    plan: RunPlan
    result: ChangeResult
    engine: EngineStats
    #: Seconds of the stages (resolve, read, mask, detect, write).
    timings: dict[str, float]
    #: Seconds of the sub-stages (fit, windows, regions, each product).
    details: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return "ok" if self.result.valid.any() else "no-valid-data"

    def masking(self) -> dict[str, Any]:
        """Cloud-mask method and masked fraction of the first and last date."""
        pixels = self.plan.grid.width * self.plan.grid.height
        ends = (0, len(self.plan.masking) - 1)
        return {
            role: {
                "method": self.plan.masking[i],
                "masked_fraction": round(self.engine.cloud_px[i] / pixels, 6)
                if self.engine.cloud_px
                else 0.0,
            }
            for role, i in zip(ROLES, ends, strict=True)
        }

    def metadata(self) -> dict[str, Any]:
        """The result's metadata with the masking and the engine's figures."""
        return {
            **self.result.metadata,
            "masking": self.masking(),
            "blockwise": {**self.engine.as_dict(), "stages_s": self.details},
        }
