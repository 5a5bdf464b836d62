"""Write one run's product folder, atomically.

Everything is written into a hidden staging folder beside the destination and
renamed into place at the end, so a crashed or failed run never leaves a folder
that looks complete; a re-run replaces the previous folder whole. The staging folder
exists from the start of the run: early writers (the statistic COG) write into it
while the engine finishes, and engine layers are spooled there.

A run stopped by SIGTERM (a job stopped, a container shut down) cleans up as on
Ctrl-C; what a killed run (SIGKILL, power loss) left behind is removed by the
next run of the same run id.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType

import pystac

from ..detect.base import LayerSpec
from ..errors import ProductWriteError
from ..gil import short_gil_turns
from ..io.cog import CogSpool
from ..io.gdal import PRODUCT_CACHE_MB, gdal_env
from ..io.vector import ChangePolygons, polygonize_changes
from ..model import Grid
from ..runs import RunRecord
from .item import build_item
from .registry import (
    ITEM_FILE,
    RASTER_WRITERS,
    VECTOR_WRITERS,
    HasStatistic,
    ProductOptions,
    RasterWriter,
    assets_of,
)

__all__ = ["ProductFolder", "Products"]


class Products:
    """What a written product folder holds: where it is, its polygons and its Item."""

    def __init__(self, folder: Path, polygons: ChangePolygons, item: pystac.Item) -> None:
        self.folder, self.polygons, self.item = folder, polygons, item


class ProductFolder:
    """The staging folder of one run. Use as a context manager: leaving it without
    ``publish`` (an error) waits for the writers in flight and removes everything."""

    def __init__(
        self, folder: Path, options: ProductOptions, timings: dict[str, float] | None = None
    ) -> None:
        self.folder, self.options = Path(folder), options
        self.timings = timings if timings is not None else {}
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        _remove_leftovers(self.folder)
        self.staging = self.folder.parent / f".{self.folder.name}.partial-{uuid.uuid4().hex[:8]}"
        self.staging.mkdir()
        self._signals = ExitStack()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eowatch-products")
        self._early: dict[str, Future[None]] = {}
        self._spools: list[CogSpool] = []

    def __enter__(self) -> ProductFolder:
        self._signals.enter_context(_sigterm_as_exit())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self._pool.shutdown(wait=True)
            shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._signals.close()

    def spool(self, spec: LayerSpec, grid: Grid) -> CogSpool:
        """A layer sink of the engine, spooled to disk in the staging folder."""
        spool = CogSpool(self.staging, spec.key, grid, spec.dtype, len(spec.bands), spec.nodata)
        self._spools.append(spool)
        return spool

    def start_early(self, source: HasStatistic) -> None:
        """Start the writers that need only the final statistic (on a background thread)."""
        for writer in RASTER_WRITERS:
            if writer.early:
                self._early[writer.name] = self._pool.submit(self._write_early, writer, source)

    def _write_early(self, writer: RasterWriter, source: HasStatistic) -> None:
        start = time.perf_counter()
        with gdal_env(PRODUCT_CACHE_MB):
            writer.write_early(source, self.staging, self.options)
        self.timings[f"write_{writer.name}"] = round(time.perf_counter() - start, 3)

    def publish(self, record: RunRecord) -> Products:
        """Write every product of ``record`` (rasters on a second thread while the polygons
        are traced here), then the Item, and move the folder into place."""
        publish_start = time.perf_counter()
        with short_gil_turns():
            rasters = self._pool.submit(self._rasters, record)
            start = time.perf_counter()
            polygons = polygonize_changes(record.result)
            self.timings["write_polygonize"] = round(time.perf_counter() - start, 3)
            start = time.perf_counter()
            for writer in VECTOR_WRITERS:
                writer.write(polygons, self.staging)
            self.timings["write_vectors"] = round(time.perf_counter() - start, 3)
            rasters.result()
        for spool in self._spools:  # layers no product took (a run without valid data)
            spool.done()
            spool.path.unlink(missing_ok=True)
        # The Item is written last, so the write time it records is all but complete.
        record.timings["write"] = time.perf_counter() - publish_start
        item = build_item(record, polygons, assets_of(record))
        (self.staging / ITEM_FILE).write_text(json.dumps(item.to_dict(), indent=1, default=str))
        _replace(self.staging, self.folder)
        return Products(self.folder, polygons, item)

    def _rasters(self, record: RunRecord) -> None:
        """The COGs, the quicklook and the sensor's products (GDAL and numpy: GIL mostly released)."""
        plan = record.plan
        with gdal_env(PRODUCT_CACHE_MB):
            for writer in RASTER_WRITERS:
                start = time.perf_counter()
                early = self._early.get(writer.name)
                if early is not None:
                    early.result()
                    self.timings[f"write_{writer.name}_wait"] = round(time.perf_counter() - start, 3)
                elif writer.assets(plan.preset, plan.params, len(plan.acquisitions)):
                    writer.write(record, self.staging, self.options)
                    self.timings[f"write_{writer.name}"] = round(time.perf_counter() - start, 3)


def _remove_leftovers(folder: Path) -> None:
    """Remove the staging and replaced folders that earlier runs of ``folder`` left
    when they were killed (a run of the same id now would be replaced by this one)."""
    for pattern in (f".{folder.name}.partial-*", f".{folder.name}.old-*"):
        for leftover in folder.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While a run writes, SIGTERM raises ``SystemExit`` (143) in the main thread, so
    that the staging folder is removed as on Ctrl-C. A handler someone else installed
    (a server's) is left alone, and so are other threads (signals reach only the main one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _replace(staging: Path, folder: Path) -> None:
    """Move ``staging`` to ``folder``, replacing an earlier run as a whole."""
    try:
        if folder.exists():
            old = folder.parent / f".{folder.name}.old-{uuid.uuid4().hex[:8]}"
            folder.rename(old)
            staging.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(folder)
    except OSError as exc:
        raise ProductWriteError(f"cannot move the products into {folder}: {exc}") from exc
