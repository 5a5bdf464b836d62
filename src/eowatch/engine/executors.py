"""Where windows run: a local thread pool (numpy, numba kernels and GDAL release the
GIL) or a ``dask.distributed`` cluster whose workers open the same inputs. Either way
at most a few windows are in flight, so band data in memory is a few windows,
whatever the scene size."""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detect.base import LayerSpec, Preset, PresetParams
from ..errors import InputError
from ..model import NO_DATA_CLASS, Block
from .sources import DateReader, DateSource
from .stats import EngineStats

__all__ = ["WindowJob", "WindowOut", "run_threads", "run_dask"]


@dataclass
class WindowJob:
    """Everything a worker needs for any window of one run (pickled once per Dask worker)."""

    preset: Preset[Any, Any]  # stateless: pickled by reference to its class
    params: PresetParams
    sources: Sequence[DateSource]
    model: Any
    halo: int
    layers: tuple[LayerSpec, ...]
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass
class WindowOut:
    """One window's outputs with the halo cropped, and what it cost."""

    block: Block
    classes: NDArray[np.uint8]
    statistic: NDArray[np.float32]
    layers: dict[str, NDArray[Any]]
    clouds: list[int]
    read_s: float
    apply_s: float
    #: The preset's ``pixels`` inside the block and valid: flat indices in the block, values.
    pixels: tuple[NDArray[np.int32], NDArray[np.float16]] | None = None


_local = threading.local()


def _readers(job: WindowJob) -> list[DateReader]:
    """This thread's open readers for ``job`` (files stay open across its windows)."""
    cached = getattr(_local, "readers", None)
    if cached is None or cached[0] != job.token:
        if cached is not None:
            _close(cached[1])
        _local.readers = None
        readers: list[DateReader] = []
        try:
            for source in job.sources:
                readers.append(source.open())
        except BaseException:
            _close(readers)
            raise
        _local.readers = (job.token, readers)
    out: list[DateReader] = _local.readers[1]
    return out


def _close(readers: list[DateReader]) -> None:
    for reader in readers:
        reader.close()


def release_readers(token: str) -> None:
    """Close this thread's readers of the run ``token``."""
    cached = getattr(_local, "readers", None)
    if cached is not None and cached[0] == token:
        _close(cached[1])
        _local.readers = None


def apply_block(job: WindowJob, block: Block) -> WindowOut:
    """Read one window (with the halo) of every date, apply the model, crop the halo;
    pixels invalid in any date become no data in every output."""
    grid = job.sources[0].grid
    t0 = time.perf_counter()
    outer = block.grown(job.halo, grid)
    read = [reader.read(outer) for reader in _readers(job)]
    t1 = time.perf_counter()
    out = job.preset.apply([scene for scene, _ in read], job.params, job.model)
    inner = block.inside(outer)
    valid = np.logical_and.reduce([scene.valid[inner] for scene, _ in read])
    classes = np.array(out.classes[inner], dtype=np.uint8)
    statistic = np.array(out.statistic[inner], dtype=np.float32)
    classes[~valid] = NO_DATA_CLASS
    statistic[~valid] = np.nan
    layers = {}
    for spec in job.layers:
        layer = np.array(out.layers[spec.key][(slice(None), *inner)], dtype=spec.dtype)
        layer[:, ~valid] = spec.nodata
        layers[spec.key] = layer
    clouds = [int(c[inner].sum()) for _, c in read]
    pixels = None if out.pixels is None else _inner_pixels(out.pixels, outer, block, valid)
    return WindowOut(block, classes, statistic, layers, clouds, t1 - t0, time.perf_counter() - t1, pixels)


def _inner_pixels(
    pixels: tuple[NDArray[np.int32], NDArray[np.float16]],
    outer: Block,
    block: Block,
    valid: NDArray[np.bool_],
) -> tuple[NDArray[np.int32], NDArray[np.float16]]:
    """The preset's pixels of the grown window that lie in the block and are valid, with
    flat indices in the block."""
    index, values = pixels
    rows, cols = np.divmod(index, outer.width)
    rows, cols = rows - (block.row - outer.row), cols - (block.col - outer.col)
    keep = (rows >= 0) & (rows < block.height) & (cols >= 0) & (cols < block.width)
    keep[keep] &= valid[rows[keep], cols[keep]]
    return (rows[keep] * block.width + cols[keep]).astype(np.int32), values[:, keep]


def run_threads(job: WindowJob, blocks: list[Block], workers: int, stats: EngineStats) -> Iterator[WindowOut]:
    """Windows on a thread pool, at most ``workers + 1`` submitted and not yet consumed
    (every thread busy, one finished window waiting to be stitched)."""
    limit = workers + 1
    pending: deque[Future[WindowOut]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eowatch-window") as pool:
        try:
            for block in blocks:
                pending.append(pool.submit(apply_block, job, block))
                stats.max_resident_windows = max(stats.max_resident_windows, len(pending))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()
            # Close each worker thread's files (one cleanup task per thread).
            list(pool.map(release_readers, [job.token] * workers))


def run_dask(job: WindowJob, blocks: list[Block], address: str, stats: EngineStats) -> Iterator[WindowOut]:
    """Windows on a ``dask.distributed`` cluster, two per worker in flight."""
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
            queue.add(client.submit(apply_block, job_future, block, pure=False))
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
                queue.add(client.submit(apply_block, job_future, following, pure=False))
                in_flight += 1
            yield out
        # Readers live in the workers' executor threads: close them there (one task per
        # worker thread, best effort when a worker has several), not in client.run's event loop.
        info = client.scheduler_info().get("workers", {})
        releases = [
            client.submit(release_readers, job.token, workers=[worker], pure=False, allow_other_workers=False)
            for worker, details in info.items()
            for _ in range(int(details.get("nthreads", 1)))
        ]
        client.gather(releases)
