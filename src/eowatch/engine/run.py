"""Run a preset over a scene window by window, in bounded memory: the only way a
preset runs (a small scene is one window; a series is a time stack of dates).

Two passes (the design of tiled change-detection chains such as OTB's streaming
filters):

1. **fit**: read a sample of every date (the whole scene when it holds at most
   ``EngineOptions.sample_px`` pixels, else a stratified lattice of small
   full-resolution windows, see ``eowatch.engine.blocks.sample_blocks``; for pixelwise
   fits every 3rd pixel of 64 whole file tiles, ``sample_cells``) and fit the preset's
   global statistics on it (IR-MAD transform, chi-square median calibration,
   radiometric normalisation, thresholds, ENL).
2. **apply**: every window of the grid is read (with a halo when the preset filters
   spatially), the fitted model is applied, and the window's classes (uint8), statistic
   (float32) and layers are stitched into the full-size outputs. Windows run on
   ``eowatch.engine.executors`` (a thread pool or a Dask cluster), a few in flight.

``run_windows`` ends with the preset's whole-map calibration: the statistic is then
final (products may be written from it) and ``Stitched.finish`` runs the whole-map
step (one class per connected region), the morphological clean-up and the minimum
mapping unit on the stitched class map: connected regions cross window borders, so
they cannot be done per window.

Sample size. The default 2 M pixels is 64 windows of ~177 x 177 spread over the scene,
each inside one file tile (for s2-imad every 3rd row and column of 64 tiles of 512 x 512).
IR-MAD fits 4x4 covariance matrices on 1 M of them; the chi-square median on 2 M pixels
has a relative standard error of about 1.25 sqrt(p(1-p)) / (f(m) m sqrt(n)) ~ 0.1 %
(chi2_4), far below the spread between scenes that the calibration corrects (tens of %).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from affine import Affine
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from ..detect.base import FitSummary, PixelValues, Preset, PresetParams
from ..errors import InputError, NoValidDataError
from ..gil import short_gil_turns
from ..kernels.morphology import clean, sieve
from ..model import NO_CHANGE_CLASS, NO_DATA_CLASS, Block, ChangeClass, ChangeResult, Grid, Scene
from .blocks import plan_blocks, sample_blocks, sample_cells
from .executors import WindowJob, WindowOut, run_dask, run_threads
from .layers import LayerSink, SinkFactory, in_memory
from .options import EngineOptions
from .sources import ArraySource, DateSource
from .stats import EngineStats

__all__ = ["Stitched", "run_windows", "detect_arrays", "apply_mmu", "no_valid_data_result"]


@dataclass
class Stitched:
    """The windows of a run stitched together, the statistic calibrated (final);
    ``finish`` gives the result."""

    preset: Preset[Any, Any]
    params: PresetParams
    grid: Grid
    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    stats: EngineStats
    summary: FitSummary | None = None  # None: no pixel is valid in every date
    model: Any = None
    exact: bool = True
    layers: dict[str, LayerSink] = field(default_factory=dict)
    pixels: PixelValues | None = None

    @property
    def statistic_name(self) -> str:
        return self.summary.statistic_name if self.summary else "none"

    def finish(self, timings: dict[str, float] | None = None) -> ChangeResult:
        """The preset's whole-map step, then clean-up and minimum mapping unit."""
        t0 = time.perf_counter()
        if self.summary is None:
            return no_valid_data_result(self.grid, self.statistic)
        pixels, self.pixels = self.pixels, None  # needed by the whole-map step only: freed after it
        classes = self.preset.finish(
            self.classes, self.statistic, self.params, self.model, self.exact, pixels
        )
        del pixels
        result = ChangeResult(
            classes=classes,
            statistic=self.statistic,
            statistic_name=self.summary.statistic_name,
            class_table=self.summary.class_table,
            grid=self.grid,
            confidence_of=self.summary.confidence_of,
            layers={key: sink.done() for key, sink in self.layers.items()},
            metadata=dict(self.summary.metadata),
        )
        apply_mmu(result, self.params)
        if timings is not None:
            timings["regions"] = time.perf_counter() - t0
        return result


def run_windows(
    preset: Preset[Any, Any],
    params: PresetParams,
    sources: Sequence[DateSource],
    options: EngineOptions,
    *,
    sinks: SinkFactory = in_memory,
    timings: dict[str, float] | None = None,
) -> Stitched:
    """Fit ``preset`` on a sample of ``sources`` (every date of the run on one grid,
    oldest first), apply it window by window and calibrate the stitched statistic.
    ``sinks`` receive the preset's layers; ``timings`` the seconds of each pass."""
    timings = {} if timings is None else timings
    dates = len(sources)
    if dates < 2 or (preset.max_dates is not None and dates > preset.max_dates):
        most = "any number of" if preset.max_dates is None else f"at most {preset.max_dates}"
        raise InputError(f"preset {preset.name} compares at least 2 and {most} dates; got {dates}")
    grid = sources[0].grid
    stats = EngineStats(options.executor, options.workers, options.window_px, cloud_px=[0] * dates)

    t0 = time.perf_counter()
    design = preset.sample_design
    if design.pixelwise:
        sample_windows, step = sample_cells(grid, options.sample_px, design.lattice)
    else:
        sample_windows, step = sample_blocks(grid, options.sample_px, design.lattice), 1
    sample = _read_sample(sources, sample_windows, step)
    valid = np.logical_and.reduce([s.valid for s in sample])
    stats.sample_px, stats.sample_valid_px = int(valid.size), int(valid.sum())
    exact = len(sample_windows) == 1  # the sample is the whole scene
    if stats.sample_valid_px == 0:
        if exact:
            return _empty(preset, params, grid, stats)
        raise NoValidDataError(
            f"no valid pixel in the {stats.sample_px}-pixel fitting sample of {grid.width}x{grid.height}; "
            "the pair is (almost) all cloud or nodata: choose clearer dates or a smaller AOI"
        )
    _check_dates_differ(sample, valid)
    model = preset.fit(sample, params)
    del sample, valid
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    blocks = plan_blocks(grid, options.window_px)
    stats.windows = len(blocks)
    specs = preset.layers(params, dates)
    job = WindowJob(preset, params, tuple(sources), model, preset.halo(params), specs)
    # Not pre-filled: the windows tile the grid, every pixel is written once (0.6 GB on a tile).
    classes = np.empty(grid.shape, dtype=np.uint8)
    statistic = np.empty(grid.shape, dtype=np.float32)
    layers = {spec.key: sinks(spec, grid) for spec in specs}
    pixel_windows: list[tuple[Block, NDArray[np.int32], NDArray[np.float16]]] = []
    # Windows already run in parallel; BLAS threads on their small (p, p) @ (p, n) products
    # only spin (OpenBLAS busy-waits): 12-17 of 64-69 CPU s on a full tile at 1 window thread.
    with threadpool_limits(limits=1, user_api="blas"), short_gil_turns():
        for out in _windows(job, blocks, options, stats):
            rows, cols = out.block.slices
            classes[rows, cols] = out.classes
            statistic[rows, cols] = out.statistic
            for key, values in out.layers.items():
                layers[key].write(out.block, values)
            if out.pixels is not None:
                pixel_windows.append((out.block, *out.pixels))
            stats.read_s += out.read_s
            stats.apply_s += out.apply_s
            stats.cloud_px = [a + b for a, b in zip(stats.cloud_px, out.clouds, strict=True)]
    timings["windows"] = time.perf_counter() - t0

    if not (classes != NO_DATA_CLASS).any():
        return _empty(preset, params, grid, stats)
    t0 = time.perf_counter()
    model = preset.calibrate(statistic, params, model, exact)
    timings["calibrate"] = time.perf_counter() - t0
    summary = preset.describe_fit(model, params)
    pixels = PixelValues(grid.width, pixel_windows) if pixel_windows else None
    return Stitched(preset, params, grid, classes, statistic, stats, summary, model, exact, layers, pixels)


def _check_dates_differ(sample: Sequence[Scene], valid: NDArray[np.bool_]) -> None:
    """Refuse dates whose sampled pixels are all identical (the same image under two names):
    nothing can have changed, and every threshold would be fitted on nothing."""
    first = sample[0].data[:, valid]
    if all(np.array_equal(first, other.data[:, valid]) for other in sample[1:]):
        raise InputError(
            f"the {len(sample)} dates have identical pixels (the same image given twice under different "
            "names?); give acquisitions of different dates"
        )


def detect_arrays(
    preset: Preset[Any, Any],
    params: PresetParams,
    scenes: Sequence[Scene],
    options: EngineOptions | None = None,
) -> ChangeResult:
    """Detect changes between scenes already in memory (one grid, oldest first) through
    the same engine as files: windows, whole-map step, minimum mapping unit."""
    sources = [ArraySource(scene) for scene in scenes]
    return run_windows(preset, params, sources, options or EngineOptions()).finish()


def _windows(job: WindowJob, blocks: list[Block], options: EngineOptions, stats: EngineStats
             ) -> Iterator[WindowOut]:  # fmt: skip
    if options.executor == "dask":
        return run_dask(job, blocks, str(options.dask_address), stats)
    return run_threads(job, blocks, options.workers, stats)


def _empty(preset: Preset[Any, Any], params: PresetParams, grid: Grid, stats: EngineStats) -> Stitched:
    statistic = np.full(grid.shape, np.nan, dtype=np.float32)
    return Stitched(
        preset, params, grid, np.full(grid.shape, NO_DATA_CLASS, dtype=np.uint8), statistic, stats
    )


def _read_sample(sources: Sequence[DateSource], blocks: list[Block], step: int) -> list[Scene]:
    """The sample windows of every date (every ``step``-th row and column) stacked into one
    tall scene per date (rows after rows), the dates read on two threads."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="eowatch-sample") as pool:
        return list(pool.map(lambda source: _read_stacked(source, blocks, step), sources))


def _read_stacked(source: DateSource, blocks: list[Block], step: int) -> Scene:
    reader = source.open()
    try:
        parts = [_decimated(reader.read(block)[0], step) for block in blocks]
    finally:
        reader.close()
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    data = np.concatenate([p.data for p in parts], axis=1)
    valid = np.concatenate([p.valid for p in parts], axis=0)
    grid = Grid(first.grid.crs, first.grid.transform, data.shape[2], data.shape[1])
    return Scene(data, valid, first.bands, grid, first.id, first.datetime, first.sensor, first.properties)


def _decimated(scene: Scene, step: int) -> Scene:
    if step == 1:
        return scene
    data = np.ascontiguousarray(scene.data[:, ::step, ::step])
    valid = np.ascontiguousarray(scene.valid[::step, ::step])
    t = scene.grid.transform
    grid = Grid(scene.grid.crs, t * Affine.scale(step), data.shape[2], data.shape[1])
    return Scene(data, valid, scene.bands, grid, scene.id, scene.datetime, scene.sensor, scene.properties)


def apply_mmu(result: ChangeResult, params: PresetParams) -> ChangeResult:
    """Clean the change mask morphologically (when asked) and drop change regions
    smaller than the minimum mapping unit (8-connected, whatever their class)."""
    changed = result.changed
    kept = changed
    if params.cleanup_radius > 0 and changed.any():
        kept = clean(changed, params.cleanup_radius, "open") & changed
    if params.min_area_m2 > 0 and kept.any():
        kept = sieve(kept, result.grid.pixel_area_m2(), params.min_area_m2)
    result.classes[changed & ~kept] = NO_CHANGE_CLASS
    return result


def no_valid_data_result(grid: Grid, statistic: NDArray[np.float32] | None = None) -> ChangeResult:
    """An all no-data result on ``grid`` (no pixel valid in every date)."""
    return ChangeResult(
        classes=np.full(grid.shape, NO_DATA_CLASS, dtype=np.uint8),
        statistic=statistic if statistic is not None else np.full(grid.shape, np.nan, dtype=np.float32),
        statistic_name="none",
        class_table=(ChangeClass(NO_CHANGE_CLASS, "no_change", (0, 0, 0)),),
        grid=grid,
        metadata={"note": "no pixel is valid in both dates (cloud, shadow or nodata everywhere)"},
    )
