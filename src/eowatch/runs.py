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
from .io.masks import CloudMasking
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
    #: How each date's clouds are masked (method "scl", "s2cloudless" or "none", and what
    #: the coarse s2cloudless pass found).
    masking: tuple[CloudMasking, ...]
    #: Extra STAC Item properties: what the input rules checked, discovery's pairing, the task.
    properties: dict[str, Any] = field(default_factory=dict)
    #: Pixels of the grid inside the AOI (all of them without one).
    aoi_px: int = 0
    #: Below this share of the AOI valid on both dates the status is "insufficient-valid-data".
    min_valid_fraction: float = 0.0

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
    def valid_fraction_of_aoi(self) -> float:
        """Share of the AOI observed clear on both dates."""
        pixels = self.plan.aoi_px or self.result.classes.size
        return min(1.0, int(self.result.valid.sum()) / pixels) if pixels else 0.0

    @property
    def status(self) -> str:
        """ "ok", or why the result cannot say "no change" where it found none."""
        if not self.result.valid.any():
            return "no-valid-data"
        if self.valid_fraction_of_aoi < self.plan.min_valid_fraction:
            return "insufficient-valid-data"
        return "ok"

    def masking(self) -> dict[str, Any]:
        """Cloud-mask method and masked fraction of the first and last date."""
        pixels = self.plan.grid.width * self.plan.grid.height
        ends = (0, len(self.plan.masking) - 1)
        return {role: self._masking_of(i, pixels) for role, i in zip(ROLES, ends, strict=True)}

    def _masking_of(self, i: int, pixels: int) -> dict[str, Any]:
        masked = self.plan.masking[i]
        out: dict[str, Any] = {
            "method": masked.method,
            "masked_fraction": round(self.engine.cloud_px[i] / pixels, 6) if self.engine.cloud_px else 0.0,
        }
        if masked.cloud_fraction is not None:
            out["cloud_fraction"] = round(masked.cloud_fraction, 6)
            out["shadow_fraction"] = round(masked.shadow_fraction or 0.0, 6)
        if masked.sun_source is not None:
            out["sun_angles"] = {
                "source": masked.sun_source,
                "azimuth": None if masked.sun_azimuth is None else round(masked.sun_azimuth, 3),
                "zenith": None if masked.sun_zenith is None else round(masked.sun_zenith, 3),
            }
        return out

    def metadata(self) -> dict[str, Any]:
        """The result's metadata with the masking and the engine's figures."""
        return {
            **self.result.metadata,
            "masking": self.masking(),
            "blockwise": {**self.engine.as_dict(), "stages_s": self.details},
        }
