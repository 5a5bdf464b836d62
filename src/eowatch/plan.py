"""Plan a run: resolve the inputs, apply the sensor's input rules, choose the grid and
what each date reads, and derive the run id. Nothing is read but metadata (and the
coarse s2cloudless mask, when L1C inputs need one)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shapely.geometry.base import BaseGeometry

from .aoi import check_aoi, parse_aoi
from .detect import Preset, PresetParams, get_preset, parse_params
from .errors import InputError
from .inputs import rules_for
from .io.load import aoi_fraction, pair_grid, user_crs, utm_epsg
from .io.masks import cloud_masking
from .io.remote import RemoteLimits, apply_limits
from .io.s1_ard import ard_grid, geocode_acquisitions, is_radar_geometry
from .io.sar_units import GRD_PROCESSING
from .io.sources import Acquisition, resolve_input
from .io.windows import SceneSpec
from .model import Grid
from .runs import RunPlan
from .settings import Settings
from .stages import Stages

__all__ = ["DetectRequest", "SeriesRequest", "plan_pair", "plan_series", "run_id_for", "MIN_SERIES"]

#: The fewest acquisitions a series may have.
MIN_SERIES = 2


@dataclass
class DetectRequest:
    """What the user asks for: two inputs, a preset and where to look."""

    before: str | Path | Acquisition
    after: str | Path | Acquisition
    preset: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    aoi: str | BaseGeometry | None = None
    crs: str | None = None
    resolution: float | None = None
    #: Extra STAC Item properties, e.g. ``eowatch:pairing`` when discovery chose the pair.
    provenance: dict[str, Any] = field(default_factory=dict)
    #: Sentinel-1 GRD inputs: the DEM for terrain correction (default: settings.s1_dem; none:
    #: ellipsoid geocoding) and the backscatter they are calibrated to (default: settings).
    dem: str | None = None
    calibration: str | None = None


@dataclass
class SeriesRequest:
    """A time series of k >= 2 acquisitions of the same geometry and a series preset."""

    inputs: Sequence[str | Path | Acquisition]
    preset: str = "s1-omnibus"
    params: dict[str, Any] = field(default_factory=dict)
    aoi: str | BaseGeometry | None = None
    dem: str | None = None
    calibration: str | None = None


def run_id_for(preset: str, before: Acquisition, after: Acquisition, key: dict[str, Any]) -> str:
    """A stable run id: the same inputs, preset and parameters give the same id,
    so a re-run replaces its earlier products instead of adding a copy."""
    digest = hashlib.sha256(
        json.dumps({"b": before.id, "a": after.id, "p": preset, **key}, sort_keys=True, default=str).encode()
    ).hexdigest()[:10]
    dates = "_".join(f"{d:%Y%m%d}" if d else "nodate" for d in (before.datetime, after.datetime))
    return f"{preset}_{dates}_{digest}"


def plan_pair(request: DetectRequest, settings: Settings, stages: Stages | None = None) -> RunPlan:
    """The plan of a pair (stages ``resolve``, ``read``: the grid, ``mask``: the cloud masks)."""
    stages = stages or Stages()
    apply_limits(RemoteLimits.from_settings(settings))
    _check_target(request.crs, request.resolution)
    with stages("resolve"):
        first = request.before
        if request.preset is None:  # peek at the data to pick the default preset
            first = _resolve(first, "")
        preset = get_preset(request.preset or _default_preset(_sensor(first), settings))
        params = parse_params(preset, request.params)
        acqs = _prepared(preset, params, [first, request.after])
        _check_distinct(acqs)
        properties = {**rules_for(preset.sensor).check(acqs, params), **request.provenance}
        if warnings := _date_warnings(acqs[0], acqs[1]):
            properties["eowatch:warnings"] = warnings
        aoi = _aoi(request.aoi, settings)
    if any(is_radar_geometry(a) for a in acqs):
        with stages("geocode"):
            acqs = _geocoded(preset, params, acqs, aoi, request.crs, request.resolution, request, settings)
            properties.update(rules_for(preset.sensor).check(acqs, params))
    with stages("read"):
        grid = pair_grid(acqs[0], acqs[1], aoi, request.crs, request.resolution)
        if request.resolution is not None:  # against the area on the inputs' own resolution
            _check_resolution(request.resolution, grid, pair_grid(acqs[0], acqs[1], aoi, request.crs))
        _check_size(grid, settings)
    key = {
        "params": params.model_dump(),
        "aoi": getattr(aoi, "wkt", None),
        "crs": request.crs,
        "res": request.resolution,
    }
    if GRD_PROCESSING in acqs[0].properties:  # how GRD inputs were calibrated and geocoded
        key["grd"] = acqs[0].properties[GRD_PROCESSING]
    run_id = run_id_for(preset.name, acqs[0], acqs[1], key)
    with stages("mask"):
        return _plan(run_id, preset, params, acqs, grid, aoi, properties, settings, footprint=False)


def plan_series(request: SeriesRequest, settings: Settings, stages: Stages | None = None) -> RunPlan:
    """The plan of a time series of k >= 2 acquisitions of the same geometry, put in time
    order when every one has a date; dates between the first and the last may cover less
    of the grid than those two (their pixels outside are no data)."""
    stages = stages or Stages()
    apply_limits(RemoteLimits.from_settings(settings))
    inputs, preset_name = request.inputs, request.preset
    if len(inputs) < MIN_SERIES:
        raise InputError(
            f"a time series needs at least {MIN_SERIES} acquisitions; got {len(inputs)}. "
            "Give two or more dates of the same orbit (for two, `eowatch detect` does the same)."
        )
    with stages("resolve"):
        preset = get_preset(preset_name)
        if preset.max_dates is not None and len(inputs) > preset.max_dates:
            raise InputError(
                f"preset {preset_name!r} compares pairs only; use a series preset (s1-omnibus) for "
                f"{len(inputs)} acquisitions, or `eowatch detect` for a pair"
            )
        values = parse_params(preset, request.params)
        acqs = _prepared(preset, values, list(inputs))
        if all(a.datetime is not None for a in acqs):
            acqs.sort(key=lambda a: a.datetime or datetime.min)
        _check_distinct(acqs)
        ids = [a.id for a in acqs]
        series = [{"id": a.id, "datetime": a.datetime.isoformat() if a.datetime else None, "href": a.href}
                  for a in acqs]  # fmt: skip
        properties = {**rules_for(preset.sensor).check(acqs, values), "eowatch:series": series}
        region = _aoi(request.aoi, settings)
    if any(is_radar_geometry(a) for a in acqs):
        with stages("geocode"):
            acqs = _geocoded(preset, values, acqs, region, None, None, request, settings)
            properties.update(rules_for(preset.sensor).check(acqs, values))
    with stages("read"):
        grid = _check_size(pair_grid(acqs[0], acqs[-1], region), settings)
    key = {"params": values.model_dump(), "aoi": getattr(region, "wkt", None), "series": ids}
    if GRD_PROCESSING in acqs[0].properties:
        key["grd"] = acqs[0].properties[GRD_PROCESSING]
    run_id = run_id_for(preset.name, acqs[0], acqs[-1], key) + f"_k{len(acqs)}"
    with stages("mask"):
        return _plan(run_id, preset, values, acqs, grid, region, properties, settings, footprint=True)


def _plan(
    run_id: str,
    preset: Preset[Any, Any],
    params: PresetParams,
    acqs: list[Acquisition],
    grid: Grid,
    aoi: BaseGeometry | None,
    properties: dict[str, Any],
    settings: Settings,
    footprint: bool,
) -> RunPlan:
    """What every date reads: the preset's bands on the grid, the AOI, the cloud mask."""
    bands = preset.bands(params, rules_for(preset.sensor).available_bands(acqs))
    sources, masking = [], []
    for acq in acqs:
        masked = cloud_masking(acq, grid, params.cloud_mask)
        sources.append(
            SceneSpec(
                acq,
                grid,
                bands,
                aoi,
                masked.mask,
                settings.mask_snow,
                footprint,
                settings.scene_gdal_cache_mb,
                masked.extra,
            )
        )
        masking.append(masked)
    return RunPlan(
        run_id, preset, params, tuple(acqs), grid, aoi, tuple(sources), tuple(masking), properties,
        aoi_px=round(grid.width * grid.height * aoi_fraction(grid, aoi)),
        min_valid_fraction=settings.min_valid_fraction,
    )  # fmt: skip


def _check_target(crs: str | None, resolution: float | None) -> None:
    """The target CRS is known and the resolution a positive number (before anything is read)."""
    if crs is not None:
        user_crs(crs)
    if resolution is not None and not (math.isfinite(resolution) and resolution > 0):
        raise InputError(f"--resolution must be a positive number in the CRS's units; got {resolution}")


def _check_resolution(resolution: float, grid: Grid, native: Grid) -> None:
    """Refuse a resolution in degrees taken for metres, or coarser than the area (``native``:
    the same grid at the inputs' resolution) is wide or high."""
    left, bottom, right, top = native.bounds
    if grid.crs.is_geographic and resolution >= 1:
        lon, lat = (left + right) / 2, (bottom + top) / 2
        utm = utm_epsg(lon, lat)
        raise InputError(
            f"--resolution {resolution:g} is in degrees: the grid's CRS ({grid.crs}) is geographic; give a "
            f"projected CRS for metres (--crs EPSG:{utm}, the UTM zone of the data) or a resolution in "
            "degrees (10 m is about 0.0001)"
        )
    if resolution > min(right - left, top - bottom):
        raise InputError(
            f"--resolution {resolution:g} is coarser than the area ({right - left:.6g} x "
            f"{top - bottom:.6g} in the CRS's units): less than one pixel across; give a finer resolution"
        )


def _check_size(grid: Grid, settings: Settings) -> Grid:
    """``grid``, unless it has more pixels than ``settings.max_grid_pixels``."""
    if grid.width * grid.height > settings.max_grid_pixels:
        raise InputError(
            f"the grid would be {grid.width}x{grid.height} = {grid.width * grid.height:,} pixels, more than "
            f"max_grid_pixels ({settings.max_grid_pixels:,}, EOWATCH_MAX_GRID_PIXELS); give a coarser "
            "--resolution or a smaller --aoi"
        )
    return grid


def _check_distinct(acqs: Sequence[Acquisition]) -> None:
    """Refuse the same acquisition (id or path) as two dates: nothing can have changed
    between them, and the detectors' thresholds would be fitted on noise alone."""
    for i, acq in enumerate(acqs):
        for other in acqs[i + 1 :]:
            if acq.id == other.id or (acq.href and acq.href == other.href):
                raise InputError(
                    f"the same acquisition is given twice ({acq.id}) in {[a.id for a in acqs]}; "
                    "give acquisitions of different dates"
                )


def _date_warnings(before: Acquisition, after: Acquisition) -> list[str]:
    if before.datetime and after.datetime and before.datetime > after.datetime:
        return [
            f"the 'before' input ({before.id}, {before.datetime:%Y-%m-%d}) is later than the 'after' input "
            f"({after.id}, {after.datetime:%Y-%m-%d}): changes are reported from the first to the second "
            "as given (gains are losses in time order); swap them if that was not intended"
        ]
    return []


def _prepared(preset: Preset[Any, Any], params: PresetParams, inputs: Sequence[str | Path | Acquisition]
              ) -> list[Acquisition]:  # fmt: skip
    """The inputs resolved, of the preset's sensor, prepared by the sensor's rules."""
    rules = rules_for(preset.sensor)
    acqs = [rules.prepare(_resolve(value, preset.sensor), params) for value in inputs]
    for acq in acqs:
        if acq.sensor != preset.sensor:
            raise InputError(
                f"{acq.id} is {acq.sensor} data but preset {preset.name!r} is for {preset.sensor}; "
                f"choose a {acq.sensor} preset (see `eowatch presets`)"
            )
    return acqs


def _geocoded(
    preset: Preset[Any, Any],
    params: PresetParams,
    acqs: list[Acquisition],
    aoi: BaseGeometry | None,
    crs: str | None,
    resolution: float | None,
    request: DetectRequest | SeriesRequest,
    settings: Settings,
) -> list[Acquisition]:
    """GRD inputs in radar geometry as calibrated backscatter on their common map grid
    (``eowatch.io.s1_ard``), prepared by the sensor's rules; other inputs as they are."""
    grid = _check_size(ard_grid(acqs, aoi, crs, resolution), settings)
    dem = request.dem or (str(settings.s1_dem) if settings.s1_dem else None)
    calibration = request.calibration or settings.s1_calibration
    geocoded = geocode_acquisitions(
        acqs, grid, settings.ard_folder(), calibration, dem, settings.scene_workers
    )
    rules = rules_for(preset.sensor)
    return [
        rules.prepare(a, params) if is_radar_geometry(b) else a for a, b in zip(geocoded, acqs, strict=True)
    ]


def _resolve(value: str | Path | Acquisition, sensor: str) -> Acquisition:
    return value if isinstance(value, Acquisition) else resolve_input(value, sensor)


def _aoi(aoi: str | BaseGeometry | None, settings: Settings) -> BaseGeometry | None:
    return check_aoi(parse_aoi(aoi), settings.max_aoi_area_km2) if aoi is not None else None


def _sensor(value: str | Path | Acquisition) -> str:
    return value.sensor if isinstance(value, Acquisition) else ""


def _default_preset(sensor: str, settings: Settings) -> str:
    return settings.default_s1_preset if sensor == "sentinel-1" else settings.default_s2_preset
