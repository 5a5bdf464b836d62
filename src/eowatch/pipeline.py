"""Run a detection pass: plan -> engine -> record -> products.

``detect_pair`` and ``detect_series`` plan a run (``eowatch.plan``), run the preset
on the block engine (``eowatch.engine``), write the product folder from the run's
record (``eowatch.products``) and return what was written. Calls only go down: the
engine knows nothing of products, and products read only the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pystac

from .engine import EngineOptions, run_windows
from .io.vector import ChangePolygons
from .model import ChangeResult
from .plan import DetectRequest, SeriesRequest, plan_pair, plan_series, run_id_for
from .products import ProductFolder, ProductOptions
from .runs import RunPlan, RunRecord
from .settings import Settings
from .stages import Progress, Stages

__all__ = [
    "DetectRequest",
    "SeriesRequest",
    "RunOutput",
    "detect_pair",
    "detect_series",
    "detect_result",
    "detect_record",
    "plan_pair",
    "plan_series",
    "run_plan",
    "run_id_for",
]


@dataclass
class RunOutput:
    """What one pass produced."""

    folder: Path
    item: pystac.Item
    result: ChangeResult
    polygons: ChangePolygons

    @property
    def status(self) -> str:
        return str(self.item.properties["eowatch:status"])


def detect_pair(
    request: DetectRequest, settings: Settings, out_dir: Path | None = None, progress: Progress | None = None
) -> RunOutput:
    """Run one detection pass and write its product folder under ``out_dir``
    (default ``settings.output_dir``)."""
    stages = Stages(progress)
    return run_plan(plan_pair(request, settings, stages), settings, out_dir, stages)


def detect_series(
    request: SeriesRequest, settings: Settings, out_dir: Path | None = None, progress: Progress | None = None
) -> RunOutput:
    """Detect changes across a series (k >= 2 acquisitions of the same geometry) and
    write one product folder. The change map holds the direction of each pixel's last
    change, the statistic the p-value over all dates; quicklook and ACD composite
    compare the first and the last date; the series maps are extra COG layers."""
    stages = Stages(progress)
    return run_plan(plan_series(request, settings, stages), settings, out_dir, stages)


def run_plan(plan: RunPlan, settings: Settings, out_dir: Path | None = None, stages: Stages | None = None
             ) -> RunOutput:  # fmt: skip
    """Run ``plan`` on the engine and write its products (stages ``detect``, ``write``).
    The statistic COG is written while the regions and polygons are computed."""
    stages = stages or Stages()
    details: dict[str, float] = {}
    options = ProductOptions(settings.quicklook_max_size, settings.statistic_compression)
    with ProductFolder(Path(out_dir or settings.output_dir) / plan.run_id, options, details) as folder:
        with stages("detect"):
            stitched = run_windows(
                plan.preset, plan.params, plan.sources, EngineOptions.from_settings(settings),
                sinks=folder.spool, timings=details,
            )  # fmt: skip
            folder.start_early(stitched)
            result = stitched.finish(details)
        with stages("write"):
            record = RunRecord(plan, result, stitched.stats, stages.seconds, details)
            products = folder.publish(record)
    return RunOutput(products.folder, products.item, result, products.polygons)


def detect_result(plan: RunPlan, settings: Settings) -> ChangeResult:
    """Run ``plan`` on the engine and return its result, writing no products (evaluation)."""
    return detect_record(plan, settings).result


def detect_record(plan: RunPlan, settings: Settings) -> RunRecord:
    """Run ``plan`` on the engine and return its record (result, masking, engine figures),
    writing no products."""
    details: dict[str, float] = {}
    stitched = run_windows(plan.preset, plan.params, plan.sources, EngineOptions.from_settings(settings),
                           timings=details)  # fmt: skip
    return RunRecord(plan, stitched.finish(details), stitched.stats, {}, details)
