"""Change detection over a time series of k >= 2 acquisitions (the omnibus test).

``detect_series`` is the series counterpart of ``eowatch.pipeline.detect_pair``:
resolve and check every input (units, pairing rules across all dates), read all
dates onto one grid, run the preset's ``run_series``, apply the minimum mapping
unit and write the usual product folder, with the series change maps (first
change, last change, frequency, per-interval direction) as extra COGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.warp import transform_bounds
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from .aoi import check_aoi, parse_aoi
from .detect import Preset, get_preset, parse_params
from .errors import InputError, NoOverlapError
from .io.load import pair_grid, read_scene, reference_grid
from .io.masks import cloud_mask
from .io.sources import Acquisition, resolve_input
from .model import ChangeResult, Grid, Scene
from .pipeline import Progress, RunOutput, finalize, no_valid_data, run_id_for, stage, write_run
from .settings import Settings

__all__ = ["detect_series", "detect_series_scenes", "MIN_SERIES"]

#: The fewest acquisitions a series may have.
MIN_SERIES = 2


def detect_series_scenes(preset: Preset, params: Any, scenes: Sequence[Scene]) -> ChangeResult:
    """Run ``preset.run_series`` on loaded scenes (time order) and apply the
    minimum mapping unit. Pixels invalid in any date are ``NO_DATA_CLASS``."""
    valid = np.logical_and.reduce([s.valid for s in scenes])
    if not valid.any():
        return no_valid_data(scenes[0])
    result = preset.run_series(scenes, params)  # type: ignore[attr-defined]
    return finalize(result, valid, params)


def detect_series(
    inputs: Sequence[str | Path | Acquisition],
    preset: str = "s1-omnibus",
    params: dict[str, Any] | None = None,
    aoi: str | BaseGeometry | None = None,
    out_dir: Path | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> RunOutput:
    """Detect changes across ``inputs`` (k >= 2 acquisitions of the same
    geometry) and write one product folder under ``out_dir``.

    Inputs are put in time order when every one has a date (else kept in the
    given order). The products describe the whole series: the change map holds
    the direction of each pixel's last change, the statistic the p-value over
    all dates; ``change_map`` polygons, quicklook and ACD composite compare the
    first and the last date.
    """
    settings = settings or Settings()
    if len(inputs) < MIN_SERIES:
        raise InputError(
            f"a time series needs at least {MIN_SERIES} acquisitions; got {len(inputs)}. "
            "Give two or more dates of the same orbit (for two, `eowatch detect` does the same)."
        )
    timings: dict[str, float] = {}
    with stage("resolve", timings, progress):
        p = get_preset(preset)
        if not hasattr(p, "run_series"):
            raise InputError(
                f"preset {preset!r} compares pairs only; use a series preset (s1-omnibus) for "
                f"{len(inputs)} acquisitions, or `eowatch detect` for a pair"
            )
        values = parse_params(p, params)
        acqs = [
            p.prepare(a if isinstance(a, Acquisition) else resolve_input(a, p.sensor), values) for a in inputs
        ]
        for acq in acqs:
            if acq.sensor != p.sensor:
                raise InputError(
                    f"{acq.id} is {acq.sensor} data but preset {p.name!r} is for {p.sensor}; "
                    "give acquisitions of one sensor"
                )
        if all(a.datetime is not None for a in acqs):
            acqs.sort(key=lambda a: a.datetime or datetime.min)
        ids = [a.id for a in acqs]
        if len(set(ids)) < len(ids):
            raise InputError(f"the same acquisition is given twice in {ids}; give distinct dates")
        check = getattr(p, "check_series", None)
        if check is not None:
            check(acqs, values)
        else:
            for acq in acqs[1:]:
                p.check_pair(acqs[0], acq, values)
        region = check_aoi(parse_aoi(aoi), settings.max_aoi_area_km2) if aoi is not None else None
    with stage("read", timings, progress):
        grid = pair_grid(acqs[0], acqs[-1], region)
        bands = p.bands(values)
        scenes = []
        for acq in acqs:
            scene = read_scene(acq, grid, bands, region)
            scene.valid &= _footprint(acq, grid)
            clouds, _ = cloud_mask(acq, grid, values.cloud_mask, settings.mask_snow)
            scene.valid &= ~clouds
            scenes.append(scene)
    with stage("detect", timings, progress):
        result = detect_series_scenes(p, values, scenes)
    key = {"params": values.model_dump(), "aoi": getattr(region, "wkt", None), "series": ids}
    run_id = run_id_for(p.name, acqs[0], acqs[-1], key) + f"_k{len(acqs)}"
    series_record = [
        {"id": a.id, "datetime": a.datetime.isoformat() if a.datetime else None, "href": a.href} for a in acqs
    ]
    return write_run(
        Path(out_dir or settings.output_dir) / run_id,
        p,
        values,
        (scenes[0], scenes[-1]),
        (acqs[0], acqs[-1]),
        result,
        timings,
        settings,
        progress,
        extra_properties={"eowatch:series": series_record},
    )


def _footprint(acq: Acquisition, grid: Grid) -> np.ndarray:
    """True on the pixels of ``grid`` whose centre lies inside ``acq``'s raster
    bounds (dates between the first and the last may cover less)."""
    ref = reference_grid(acq)
    area = box(*transform_bounds(ref.crs, grid.crs, *ref.bounds))
    if area.is_empty or not area.intersects(box(*grid.bounds)):
        raise NoOverlapError(
            f"{acq.id} does not overlap the series grid; give acquisitions over the same area"
        )
    left, bottom, right, top = area.bounds
    t = grid.transform
    xs = t.c + t.a * (np.arange(grid.width) + 0.5)
    ys = t.f + t.e * (np.arange(grid.height) + 0.5)
    return ((ys >= bottom) & (ys <= top))[:, None] & ((xs >= left) & (xs <= right))[None, :]
