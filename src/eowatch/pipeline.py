"""One detection pass for one pair: resolve inputs, bring both dates onto one
grid, mask, detect, post-process and write the product folder."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import rasterio
from shapely.geometry.base import BaseGeometry

from .aoi import check_aoi, parse_aoi
from .blockwise import ArraySpec, apply_mmu, no_valid_data_result, run_blockwise
from .detect import Preset, PresetParams, get_preset, parse_params
from .errors import InputError
from .io.load import pair_grid, read_decimated, read_scene
from .io.masks import cloud_mask, window_cloud_mask
from .io.quicklook import reduce_classes, reduction_step
from .io.sources import Acquisition, resolve_input
from .io.windows import SceneSpec
from .model import NO_DATA_CLASS, ChangeResult, Scene
from .products import PRODUCT_FILES, build_item, write_products
from .products.folder import EarlyStatistic, preview_bands
from .settings import Settings

__all__ = [
    "DetectRequest",
    "LoadedPair",
    "RunOutput",
    "load_pair",
    "detect_pair",
    "detect_scenes",
    "run_id_for",
]

Progress = Callable[[str], None]


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


@dataclass
class RunOutput:
    """What one pass produced."""

    folder: Path
    item: pystac.Item
    result: ChangeResult
    features: Sequence[dict[str, Any]]  # a ChangePolygons from the writers

    @property
    def status(self) -> str:
        return str(self.item.properties["eowatch:status"])


@contextmanager
def stage(name: str, timings: dict[str, float], progress: Progress | None) -> Iterator[None]:
    if progress:
        progress(name)
    start = time.perf_counter()
    yield
    timings[name] = time.perf_counter() - start


def run_id_for(preset: str, before: Acquisition, after: Acquisition, key: dict[str, Any]) -> str:
    """A stable run id: the same inputs, preset and parameters give the same id,
    so a re-run replaces its earlier products instead of adding a copy."""
    digest = hashlib.sha256(
        json.dumps({"b": before.id, "a": after.id, "p": preset, **key}, sort_keys=True, default=str).encode()
    ).hexdigest()[:10]
    dates = "_".join(f"{d:%Y%m%d}" if d else "nodate" for d in (before.datetime, after.datetime))
    return f"{preset}_{dates}_{digest}"


def _resolve(value: str | Path | Acquisition, sensor: str) -> Acquisition:
    return value if isinstance(value, Acquisition) else resolve_input(value, sensor)


def detect_scenes(
    preset: Preset, params: Any, before: Scene, after: Scene, settings: Settings | None = None
) -> ChangeResult:
    """Run a preset on two loaded scenes and apply the minimum mapping unit.
    Pixels invalid in either date are ``NO_DATA_CLASS``, never change.
    Windowed presets go through the same block engine as files do
    (``eowatch.blockwise``; a small scene is one window)."""
    if preset.windowed:
        settings = settings or Settings(scene_executor="threads")
        return run_blockwise(preset, params, ArraySpec(before), ArraySpec(after), settings)[0]
    valid = before.valid & after.valid
    if not valid.any():
        return no_valid_data(before)
    return finalize(preset.run(before, after, params), valid, params)


def finalize(result: ChangeResult, valid: np.ndarray, params: PresetParams) -> ChangeResult:
    """Mark pixels invalid in any date as no data, clean the change mask
    morphologically (when asked) and drop change regions smaller than the
    minimum mapping unit (8-connected, whatever their class)."""
    result.classes[~valid] = NO_DATA_CLASS
    result.statistic[~valid] = np.nan
    return apply_mmu(result, params)


def no_valid_data(scene: Scene) -> ChangeResult:
    """An all no-data result on the scene's grid (no pixel valid in every date)."""
    return no_valid_data_result(scene.grid)


@dataclass
class LoadedPair:
    """Both dates read onto one grid and masked, ready for a preset."""

    preset: Preset
    params: Any
    before_acq: Acquisition
    after_acq: Acquisition
    before: Scene
    after: Scene
    aoi: BaseGeometry | None
    masking: dict[str, Any]
    timings: dict[str, float]


@dataclass
class _Resolved:
    preset: Preset
    params: Any
    before_acq: Acquisition
    after_acq: Acquisition
    aoi: BaseGeometry | None


def _resolve_request(request: DetectRequest, settings: Settings) -> _Resolved:
    sensor_hint = _sensor_of(request)
    preset = get_preset(request.preset or _default_preset(sensor_hint, settings))
    params = parse_params(preset, request.params)
    before_acq = preset.prepare(_resolve(request.before, preset.sensor), params)
    after_acq = preset.prepare(_resolve(request.after, preset.sensor), params)
    for acq in (before_acq, after_acq):
        if acq.sensor != preset.sensor:
            raise InputError(
                f"{acq.id} is {acq.sensor} data but preset {preset.name!r} is for {preset.sensor}; "
                f"choose a {acq.sensor} preset (see `eowatch presets`)"
            )
    preset.check_pair(before_acq, after_acq, params)
    aoi = check_aoi(parse_aoi(request.aoi), settings.max_aoi_area_km2) if request.aoi is not None else None
    return _Resolved(preset, params, before_acq, after_acq, aoi)


def load_pair(request: DetectRequest, settings: Settings, progress: Progress | None = None) -> LoadedPair:
    """Resolve, check, read and mask both dates of ``request``."""
    timings: dict[str, float] = {}
    with stage("resolve", timings, progress):
        r = _resolve_request(request, settings)
    return _load_resolved(request, r, settings, timings, progress)


def _load_resolved(
    request: DetectRequest,
    r: _Resolved,
    settings: Settings,
    timings: dict[str, float],
    progress: Progress | None,
) -> LoadedPair:
    preset, params, before_acq, after_acq, aoi = r.preset, r.params, r.before_acq, r.after_acq, r.aoi
    with stage("read", timings, progress):
        grid = pair_grid(before_acq, after_acq, aoi, request.crs, request.resolution)
        before = read_scene(before_acq, grid, preset.bands(params), aoi)
        after = read_scene(after_acq, grid, preset.bands(params), aoi)
    with stage("mask", timings, progress):
        masking = {}
        for role, scene, acq in (("before", before, before_acq), ("after", after, after_acq)):
            clouds, method = cloud_mask(acq, grid, params.cloud_mask, settings.mask_snow)
            scene.valid &= ~clouds
            masking[role] = {"method": method, "masked_fraction": round(float(clouds.mean()), 6)}
    return LoadedPair(preset, params, before_acq, after_acq, before, after, aoi, masking, timings)


def detect_pair(
    request: DetectRequest, settings: Settings, out_dir: Path | None = None, progress: Progress | None = None
) -> RunOutput:
    """Run one detection pass and write its product folder under ``out_dir``
    (default ``settings.output_dir``). Presets that run window by window
    (``Preset.windowed``) never hold a whole band in memory (``eowatch.blockwise``)."""
    timings: dict[str, float] = {}
    with stage("resolve", timings, progress):
        r = _resolve_request(request, settings)
    if r.preset.windowed and settings.scene_windowed:
        return _detect_windowed(request, r, settings, timings, out_dir, progress)
    pair = _load_resolved(request, r, settings, timings, progress)
    preset, params = pair.preset, pair.params
    with stage("detect", timings, progress):
        result = detect_scenes(preset, params, pair.before, pair.after, settings)
        result.metadata["masking"] = pair.masking
    run_id = run_id_for(preset.name, pair.before_acq, pair.after_acq, _run_key(request, params, pair.aoi))
    return write_run(
        Path(out_dir or settings.output_dir) / run_id,
        preset,
        params,
        (pair.before, pair.after),
        (pair.before_acq, pair.after_acq),
        result,
        timings,
        settings,
        progress,
        extra_properties=request.provenance,
    )


def _run_key(request: DetectRequest, params: Any, aoi: BaseGeometry | None) -> dict[str, Any]:
    return {
        "params": params.model_dump(),
        "aoi": getattr(aoi, "wkt", None),
        "crs": request.crs,
        "res": request.resolution,
    }


def _detect_windowed(
    request: DetectRequest,
    r: _Resolved,
    settings: Settings,
    timings: dict[str, float],
    out_dir: Path | None,
    progress: Progress | None,
) -> RunOutput:
    """``detect_pair`` for windowed presets: grid, cloud-mask plan, two-pass block run, products."""
    preset, params = r.preset, r.params
    # Same stage names as the whole-scene path (progress displays key on them); here
    # "read" and "mask" only plan: pixels are read window by window inside "detect".
    with stage("read", timings, progress):
        grid = pair_grid(r.before_acq, r.after_acq, r.aoi, request.crs, request.resolution)
    with stage("mask", timings, progress):
        specs, methods = [], []
        for acq in (r.before_acq, r.after_acq):
            cloud, method = window_cloud_mask(acq, grid, params.cloud_mask)
            specs.append(SceneSpec(acq, grid, preset.bands(params), r.aoi, cloud, settings.mask_snow))
            methods.append(method)
    # Sub-stage seconds (fit, windows, regions, each product) go to the Item's
    # eowatch:metadata.blockwise.stages_s; eowatch:timings_s keeps the five stages.
    detail: dict[str, float] = {}
    run_id = run_id_for(preset.name, r.before_acq, r.after_acq, _run_key(request, params, r.aoi))
    folder = Path(out_dir or settings.output_dir) / run_id
    # The statistic COG is written while the regions and polygons are computed.
    with EarlyStatistic(
        folder.parent, grid, settings.statistic_compression, _write_cache_mb(settings), detail
    ) as early:
        with stage("detect", timings, progress):
            result, stats = run_blockwise(
                preset, params, specs[0], specs[1], settings, detail, on_statistic=early.start
            )
        pixels = grid.width * grid.height
        result.metadata["masking"] = {
            role: {"method": method, "masked_fraction": round(count / pixels, 6)}
            for role, method, count in zip(("before", "after"), methods, stats.cloud_px, strict=True)
        }
        result.metadata["blockwise"] = {**stats.as_dict(), "stages_s": detail}
        return write_run(
            folder,
            preset,
            params,
            (specs[0].header(), specs[1].header()),
            (r.before_acq, r.after_acq),
            result,
            timings,
            settings,
            progress,
            extra_properties=request.provenance,
            previews=lambda: _previews(specs, result, settings.quicklook_max_size),
            write_timings=detail,
            early_statistic=early if early.started else None,
        )


def _previews(specs: list[SceneSpec], result: ChangeResult, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Quicklook panels of both dates read directly at quicklook size (from
    overviews where the files have them), masked where the change map has no data."""
    grid = result.grid
    step = reduction_step(grid.shape, max_size)
    valid = reduce_classes(result.classes, step) != NO_DATA_CLASS
    out = []
    for spec in specs:
        rgb = ("B04", "B03", "B02")
        bands = rgb if all(b in spec.bands for b in rgb) else spec.bands[:1]
        scene = Scene(
            read_decimated(spec.acq, grid, bands, valid.shape), valid, bands, grid, sensor=spec.acq.sensor
        )
        out.append(preview_bands(scene))
    return out[0], out[1]


def write_run(
    folder: Path,
    preset: Preset,
    params: Any,
    scenes: tuple[Scene, Scene],
    acquisitions: tuple[Acquisition, Acquisition],
    result: ChangeResult,
    timings: dict[str, float],
    settings: Settings,
    progress: Progress | None = None,
    extra_properties: dict[str, Any] | None = None,
    previews: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None,
    write_timings: dict[str, float] | None = None,
    early_statistic: EarlyStatistic | None = None,
) -> RunOutput:
    """Write the product folder of a run comparing ``scenes`` (first, last).
    ``previews`` returns the quicklook's before/after panels when the scenes
    are not held in memory (windowed runs)."""
    (before, after), (before_acq, after_acq) = scenes, acquisitions
    status = "ok" if result.valid.any() else "no-valid-data"
    properties = {**preset.item_properties(before_acq, after_acq), **(extra_properties or {})}
    with stage("write", timings, progress):
        extra_writers, extra_assets = preset.extra_products(before, after, result)
        write_start = time.perf_counter()

        def item_builder(features: Sequence[dict[str, Any]]) -> pystac.Item:
            # The Item is written last, so the write time it records is all but complete.
            timings["write"] = time.perf_counter() - write_start
            return build_item(
                folder.name,
                before,
                after,
                before_acq.href,
                after_acq.href,
                result,
                features,
                preset.name,
                params.model_dump(),
                timings,
                PRODUCT_FILES,
                status=status,
                extra_properties=properties,
                extra_assets=extra_assets,
            )

        # A bounded GDAL block cache: the COG copies of a full tile would otherwise fill
        # GDAL's default (5 % of RAM) with blocks that are written once.
        with rasterio.Env(GDAL_CACHEMAX=_write_cache_mb(settings) * 1024 * 1024):
            folder, features, item = write_products(
                folder,
                before,
                after,
                result,
                item_builder,
                settings.quicklook_max_size,
                extra_writers,
                previews,
                write_timings,
                settings.statistic_compression,
                early_statistic,
            )
    return RunOutput(folder=folder, item=item, result=result, features=features)


def _write_cache_mb(settings: Settings) -> int:
    """GDAL block cache while writing products: COG copies read each block once or twice, so
    64 MB writes a full-tile statistic as fast as 256 MB (2.3 s), and the block cache is
    process-wide: it adds to the region stage's memory while the statistic is written."""
    return min(settings.scene_gdal_cache_mb, 64)


def _sensor_of(request: DetectRequest) -> str:
    if request.preset:
        return ""
    acq = _resolve(request.before, "")  # peek at the data to pick the default preset
    request.before = acq
    return acq.sensor


def _default_preset(sensor: str, settings: Settings) -> str:
    return settings.default_s1_preset if sensor == "sentinel-1" else settings.default_s2_preset
