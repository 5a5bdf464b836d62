"""Run a preset over a scene window by window, in bounded memory.

Two passes (the design of tiled change-detection chains such as OTB's
streaming filters):

1. **fit**: read a sample of the pair (the whole scene when it holds at most
   ``Settings.scene_sample_px`` pixels, else a stratified lattice of small
   full-resolution windows, see ``eowatch.io.windows.sample_blocks``; for pixelwise
   fits every 3rd pixel of 64 whole file tiles, ``sample_cells``) and fit
   the preset's global statistics on it (IR-MAD transform, chi-square median
   calibration, radiometric normalisation, thresholds).
2. **apply**: every window of the grid is read (with a halo when the preset
   filters spatially), the fitted model is applied, and the window's classes
   (uint8) and statistic (float32) are written into the full-size outputs.
   At most ``workers + 1`` windows are in flight (2 per worker on Dask), so band data in memory is a
   few windows, whatever the scene size. Windows run on a thread pool (numpy
   and GDAL release the GIL) or on a ``dask.distributed`` cluster whose workers
   open the same files (``Settings.scene_executor = "dask"``).

Then the preset's whole-map step (one class per connected region), the
morphological clean-up and the minimum mapping unit run on the stitched uint8
class map: connected regions cross window borders, so they cannot be done per
window.

Sample size. The default 2 M pixels is 64 windows of ~177 x 177 spread over the scene,
each inside one file tile (for s2-imad every 3rd row and column of 64 tiles of 512 x 512). IR-MAD fits 4x4
covariance matrices on 1 M of them; the chi-square median on 2 M pixels has a relative standard error of about
1.25 sqrt(p(1-p)) / (f(m) m sqrt(n)) ~ 0.1 % (chi2_4), far below the spread
between scenes that the calibration corrects (tens of %).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits

from .detect import Preset, get_preset
from .errors import InputError, NoValidDataError
from .gil import short_gil_turns
from .io.windows import Block, SceneSpec, plan_blocks, sample_blocks, sample_cells
from .kernels.morphology import clean, sieve
from .model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeClass, ChangeResult, Grid, Scene
from .settings import Settings

__all__ = [
    "ArraySpec",
    "BlockwiseResult",
    "BlockwiseStats",
    "apply_mmu",
    "run_blockwise",
]


@dataclass
class BlockwiseResult(ChangeResult):
    """A ``ChangeResult`` whose confidence is computed from the statistic on demand
    (by the polygons, on changed pixels only) instead of held as a full array."""

    confidence_of: Callable[[NDArray[np.floating]], NDArray[np.float32]] | None = None


class _Reader(Protocol):
    def read(self, block: Block) -> tuple[Scene, NDArray[np.bool_]]: ...

    def close(self) -> None: ...


@dataclass
class ArraySpec:
    """An in-memory scene read window by window (evaluation, tests, series)."""

    scene: Scene

    @property
    def grid(self) -> Grid:
        return self.scene.grid

    def open(self) -> ArraySpec:
        return self

    def close(self) -> None:
        return None

    def header(self) -> Scene:
        return self.scene

    def read(self, block: Block) -> tuple[Scene, NDArray[np.bool_]]:
        s = self.scene
        rows, cols = slice(block.row, block.row + block.height), slice(block.col, block.col + block.width)
        sub = Scene(
            data=s.data[:, rows, cols],
            valid=s.valid[rows, cols],
            bands=s.bands,
            grid=block.grid_of(s.grid),
            id=s.id,
            datetime=s.datetime,
            sensor=s.sensor,
        )
        return sub, np.zeros((block.height, block.width), dtype=bool)


Spec = SceneSpec | ArraySpec


@dataclass
class BlockwiseStats:
    """How a run went: windows, sample, the most windows held at once, summed thread-seconds."""

    executor: str
    workers: int
    window_px: int
    windows: int = 0
    sample_px: int = 0
    sample_valid_px: int = 0
    max_resident_windows: int = 0
    read_s: float = 0.0
    apply_s: float = 0.0
    cloud_px: list[int] = field(default_factory=lambda: [0, 0])

    def as_dict(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "workers": self.workers,
            "window_px": self.window_px,
            "windows": self.windows,
            "sample_px": self.sample_px,
            "sample_valid_px": self.sample_valid_px,
            "max_resident_windows": self.max_resident_windows,
            "read_thread_s": round(self.read_s, 3),
            "apply_thread_s": round(self.apply_s, 3),
        }


@dataclass
class _Job:
    """Everything a worker needs for any window of one run (pickled once per Dask worker)."""

    token: str
    preset_name: str
    params: Any
    before: Spec
    after: Spec
    model: Any
    halo: int
    gdal_cache_mb: int


@dataclass
class _WindowOut:
    block: Block
    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    clouds: tuple[int, int]
    read_s: float
    apply_s: float


_local = threading.local()


def _readers(job: _Job) -> tuple[_Reader, _Reader]:
    """This thread's open readers for ``job`` (files stay open across its windows)."""
    cached = getattr(_local, "readers", None)
    if cached is None or cached[0] != job.token:
        if cached is not None:
            for reader in cached[1:]:
                reader.close()
        _local.readers = None
        before = job.before.open()
        try:
            after = job.after.open()
        except BaseException:
            before.close()
            raise
        _local.readers = (job.token, before, after)
    return _local.readers[1], _local.readers[2]


def _release_readers(token: str) -> None:
    cached = getattr(_local, "readers", None)
    if cached is not None and cached[0] == token:
        for reader in cached[1:]:
            reader.close()
        _local.readers = None


def _apply_block(job: _Job, block: Block) -> _WindowOut:
    """Read one window (with the halo) of both dates, apply the model, crop the halo."""
    preset = get_preset(job.preset_name)
    grid = job.before.grid
    with rasterio.Env(GDAL_CACHEMAX=job.gdal_cache_mb * 1024 * 1024):
        t0 = time.perf_counter()
        before_r, after_r = _readers(job)
        outer = block.grown(job.halo, grid)
        before, clouds_b = before_r.read(outer)
        after, clouds_a = after_r.read(outer)
        t1 = time.perf_counter()
        out = preset.apply_window(before, after, job.params, job.model)
    inner = block.inside(outer)
    valid = (before.valid & after.valid)[inner]
    classes = np.array(out.classes[inner], dtype=np.uint8)
    statistic = np.array(out.statistic[inner], dtype=np.float32)
    classes[~valid] = NO_DATA_CLASS
    statistic[~valid] = np.nan
    clouds = (int(clouds_b[inner].sum()), int(clouds_a[inner].sum()))
    return _WindowOut(block, classes, statistic, clouds, t1 - t0, time.perf_counter() - t1)


def _run_threads(job: _Job, blocks: list[Block], workers: int, stats: BlockwiseStats) -> Iterator[_WindowOut]:
    """Windows on a thread pool, at most ``workers + 1`` submitted and not yet consumed
    (every thread busy, one finished window waiting to be stitched)."""
    limit = workers + 1
    pending: deque[Future[_WindowOut]] = deque()
    todo = iter(blocks)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eowatch-window") as pool:
        try:
            for block in todo:
                pending.append(pool.submit(_apply_block, job, block))
                stats.max_resident_windows = max(stats.max_resident_windows, len(pending))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
            # Close each worker thread's files (one cleanup task per thread).
            list(pool.map(_release_readers, [job.token] * workers))


def _run_dask(job: _Job, blocks: list[Block], address: str, stats: BlockwiseStats) -> Iterator[_WindowOut]:
    """Windows on a ``dask.distributed`` cluster; workers read their windows from the same files."""
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency
        raise InputError(
            "scene_executor='dask' needs the 'distributed' package: pip install distributed"
        ) from exc
    with Client(address, set_as_default=False) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        stats.workers = workers
        limit = 2 * workers
        [job_future] = client.scatter([job], broadcast=True)
        todo = iter(blocks)
        queue = as_completed(loop=client.loop)  # no default client: set_as_default=False above
        in_flight = 0
        for block in todo:
            queue.add(client.submit(_apply_block, job_future, block, pure=False))
            in_flight += 1
            if in_flight >= limit:
                break
        stats.max_resident_windows = in_flight
        for fut in queue:
            out = fut.result()
            fut.release()
            in_flight -= 1
            following = next(todo, None)
            if following is not None:
                queue.add(client.submit(_apply_block, job_future, following, pure=False))
                in_flight += 1
            yield out
        # Readers live in the workers' executor threads: close them there (one task per
        # worker thread, best effort when a worker has several), not in client.run's event loop.
        info = client.scheduler_info().get("workers", {})
        releases = [
            client.submit(
                _release_readers, job.token, workers=[address], pure=False, allow_other_workers=False
            )
            for address, worker in info.items()
            for _ in range(int(worker.get("nthreads", 1)))
        ]
        client.gather(releases)


def _read_sample(before: Spec, after: Spec, blocks: list[Block], step: int = 1) -> tuple[Scene, Scene]:
    """The sample windows of both dates (every ``step``-th row and column) stacked into two
    tall scenes (rows after rows), the two dates read on two threads."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="eowatch-sample") as pool:
        first, second = pool.map(lambda spec: _read_stacked(spec, blocks, step), (before, after))
    return first, second


def _read_stacked(spec: Spec, blocks: list[Block], step: int) -> Scene:
    reader = spec.open()
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
    return Scene(data, valid, first.bands, grid, first.id, first.datetime, first.sensor)


def _decimated(scene: Scene, step: int) -> Scene:
    if step == 1:
        return scene
    data = np.ascontiguousarray(scene.data[:, ::step, ::step])
    valid = np.ascontiguousarray(scene.valid[::step, ::step])
    t = scene.grid.transform
    grid = Grid(scene.grid.crs, t * Affine.scale(step), data.shape[2], data.shape[1])
    return Scene(data, valid, scene.bands, grid, scene.id, scene.datetime, scene.sensor)


def apply_mmu(result: ChangeResult, params: Any) -> ChangeResult:
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


def no_valid_data_result(grid: Grid) -> ChangeResult:
    """An all no-data result on ``grid`` (no pixel valid in every date)."""
    return ChangeResult(
        classes=np.full(grid.shape, NO_DATA_CLASS, dtype=np.uint8),
        statistic=np.full(grid.shape, np.nan, dtype=np.float32),
        statistic_name="none",
        class_table=(ChangeClass(NO_CHANGE_CLASS, "no_change", (0, 0, 0)),),
        grid=grid,
        metadata={"note": "no pixel is valid in both dates (cloud, shadow or nodata everywhere)"},
    )


def run_blockwise(
    preset: Preset,
    params: Any,
    before: Spec,
    after: Spec,
    settings: Settings,
    timings: dict[str, float] | None = None,
    on_statistic: Callable[[NDArray[np.float32], str], None] | None = None,
) -> tuple[ChangeResult, BlockwiseStats]:
    """Detect changes between ``before`` and ``after`` window by window (see the module docstring).

    ``on_statistic(statistic, name)`` is called once the statistic is final (calibrated), before
    the region steps, so its products can be written meanwhile.

    Returns the finished result (classes with no data, region classes and the
    minimum mapping unit applied) and how the run went.
    """
    if not preset.windowed:
        raise InputError(f"preset {preset.name} does not run window by window; use detect_scenes")
    timings = {} if timings is None else timings
    grid = before.grid
    size = settings.scene_window_px
    executor = settings.scene_executor
    if executor == "dask" and not settings.dask_scheduler_address:
        raise InputError(
            "scene_executor='dask' needs a scheduler: set EOWATCH_DASK_SCHEDULER_ADDRESS=tcp://host:8786"
        )
    stats = BlockwiseStats(executor, settings.scene_workers, size)
    t0 = time.perf_counter()
    if preset.pixelwise_fit:
        sample, step = sample_cells(grid, settings.scene_sample_px, preset.sample_lattice)
    else:
        sample, step = sample_blocks(grid, settings.scene_sample_px, preset.sample_lattice), 1
    with rasterio.Env(GDAL_CACHEMAX=settings.scene_gdal_cache_mb * 1024 * 1024):
        sample_before, sample_after = _read_sample(before, after, sample, step)
    valid = sample_before.valid & sample_after.valid
    stats.sample_px, stats.sample_valid_px = int(valid.size), int(valid.sum())
    if stats.sample_valid_px == 0:
        if len(sample) == 1:  # the sample was the whole scene
            return no_valid_data_result(grid), stats
        raise NoValidDataError(
            f"no valid pixel in the {stats.sample_px}-pixel fitting sample of {grid.width}x{grid.height}; "
            "the pair is (almost) all cloud or nodata: choose clearer dates or a smaller AOI"
        )
    model = preset.fit(sample_before, sample_after, params)
    del sample_before, sample_after, valid
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    blocks = plan_blocks(grid, size)
    stats.windows = len(blocks)
    job = _Job(
        uuid.uuid4().hex,
        preset.name,
        params,
        before,
        after,
        model,
        preset.halo(params),
        settings.scene_gdal_cache_mb,
    )
    # Not pre-filled: the windows tile the grid, every pixel is written once (0.6 GB on a tile).
    classes = np.empty(grid.shape, dtype=np.uint8)
    statistic = np.empty(grid.shape, dtype=np.float32)
    if executor == "dask":
        outputs = _run_dask(job, blocks, str(settings.dask_scheduler_address), stats)
    else:
        outputs = _run_threads(job, blocks, settings.scene_workers, stats)
    # Windows already run in parallel; BLAS threads on their small (p, p) @ (p, n) products
    # only spin (OpenBLAS busy-waits): 12-17 of 64-69 CPU s on a full tile at 1 window thread.
    with threadpool_limits(limits=1, user_api="blas"), short_gil_turns():
        for out in outputs:
            b = out.block
            rows, cols = slice(b.row, b.row + b.height), slice(b.col, b.col + b.width)
            classes[rows, cols] = out.classes
            statistic[rows, cols] = out.statistic
            stats.read_s += out.read_s
            stats.apply_s += out.apply_s
            stats.cloud_px[0] += out.clouds[0]
            stats.cloud_px[1] += out.clouds[1]
    timings["windows"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if not (classes != NO_DATA_CLASS).any():
        return no_valid_data_result(grid), stats
    exact = len(sample) == 1
    preset.calibrate(statistic, params, model, exact)
    summary = preset.summary_of(model, params)
    if on_statistic is not None:
        on_statistic(statistic, summary.statistic_name)
    classes = preset.finish(classes, statistic, params, model, exact)
    result = BlockwiseResult(
        classes=classes,
        statistic=statistic,
        statistic_name=summary.statistic_name,
        class_table=summary.class_table,
        grid=grid,
        metadata=dict(summary.metadata),
        confidence_of=summary.confidence_of,
    )
    apply_mmu(result, params)
    timings["regions"] = time.perf_counter() - t0
    return result, stats
