"""Write one run's products into a folder, atomically.

Everything is written into a hidden staging folder beside the destination and
renamed into place at the end, so a crashed or failed run never leaves a
folder that looks complete; a re-run replaces the previous folder whole.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray

from ..errors import ProductWriteError
from ..gil import short_gil_turns
from ..io.cog import write_cog
from ..io.quicklook import quicklook_png
from ..io.vector import ChangePolygons, polygonize_changes, write_flatgeobuf, write_geojson
from ..model import NO_DATA_CLASS, ChangeResult, Grid, Scene

__all__ = ["PRODUCT_FILES", "EarlyStatistic", "write_products", "write_statistic_cog", "preview_bands"]

PRODUCT_FILES = {
    "change_map": "change_map.tif",
    "statistic": "statistic.tif",
    "quicklook": "quicklook.png",
    "polygons_geojson": "changes.geojson",
    "polygons_fgb": "changes.fgb",
    "item": "item.json",
}


def preview_bands(scene: Scene) -> NDArray[np.float32]:
    """True colour (B04, B03, B02) when the scene has it, else its first band
    (in dB for radar, whose linear power is too skewed to look at)."""
    if all(b in scene.bands for b in ("B04", "B03", "B02")):
        rgb = np.stack([scene.band(b) for b in ("B04", "B03", "B02")])
    elif scene.sensor == "sentinel-1":
        with np.errstate(divide="ignore", invalid="ignore"):
            rgb = (10.0 * np.log10(np.maximum(scene.data[:1], 1e-6))).astype(np.float32)
    else:
        rgb = scene.data[:1]
    return np.where(scene.valid, rgb, np.nan).astype(np.float32)


def write_products(
    folder: Path,
    before: Scene,
    after: Scene,
    result: ChangeResult,
    item_builder: Any,
    quicklook_max_size: int = 768,
    extra_writers: dict[str, Any] | None = None,
    previews: Callable[[], tuple[NDArray[np.float32], NDArray[np.float32]]] | None = None,
    timings: dict[str, float] | None = None,
    statistic_compression: str = "ZSTD",
    early_statistic: EarlyStatistic | None = None,
) -> tuple[Path, ChangePolygons, Any]:
    """Write the product set of ``result`` into ``folder``.

    ``item_builder(features)`` returns the STAC Item (written last, so its
    presence marks a complete product). ``extra_writers`` maps an asset key to
    ``fn(staging_folder) -> filename`` for sensor-specific products.
    ``previews()`` gives the quicklook's before/after panels when the scenes
    are not in memory (windowed runs); by default they come from the scenes.
    ``timings`` receives the seconds of each product (``write_<product>``); the rasters
    (COGs, quicklook, extras) are written on a second thread while the polygons are
    traced, so their seconds overlap the polygons'. ``statistic_compression`` is the codec
    of the statistic COG (``Settings.statistic_compression``); ``early_statistic`` one already
    being written (windowed runs start it while the regions are computed).
    Returns the folder, the change polygons and the Item.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()

    def rasters() -> None:
        """The COGs, the quicklook and the extra products (GDAL and numpy: GIL mostly released)."""
        clock = _Clock(timings)
        _write_change_map(staging, result)
        clock.lap("write_change_map")
        if early_statistic is not None:
            early_statistic.move_to(staging / PRODUCT_FILES["statistic"])
            clock.lap("write_statistic_wait")
        else:
            write_statistic_cog(
                staging / PRODUCT_FILES["statistic"],
                result.statistic,
                result.grid,
                result.statistic_name,
                statistic_compression,
            )
            clock.lap("write_statistic")
        before_rgb, after_rgb = previews() if previews else (preview_bands(before), preview_bands(after))
        quicklook_png(
            staging / PRODUCT_FILES["quicklook"],
            before_rgb,
            after_rgb,
            result,
            max_size=quicklook_max_size,
            title=f"{before.id} -> {after.id}",
        )
        clock.lap("write_quicklook")
        for _key, writer in (extra_writers or {}).items():
            writer(staging)
        clock.lap("write_extra")

    try:
        # Rasters on a second thread while this one traces the polygons: on a full tile each
        # side takes seconds and the two share no data but the (read-only) result.
        with (
            short_gil_turns(),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="eowatch-products") as pool,
        ):
            raster_products = pool.submit(rasters)
            clock = _Clock(timings)
            features = polygonize_changes(result)
            clock.lap("write_polygonize")
            write_geojson(features, staging / PRODUCT_FILES["polygons_geojson"])
            write_flatgeobuf(features, staging / PRODUCT_FILES["polygons_fgb"])
            clock.lap("write_vectors")
            raster_products.result()
        item = item_builder(features)
        (staging / PRODUCT_FILES["item"]).write_text(json.dumps(item.to_dict(), indent=1, default=str))
        _replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder, features, item


def write_statistic_cog(path: Path, statistic: NDArray[Any], grid: Grid, name: str, compression: str) -> None:
    write_cog(
        path,
        statistic.astype(np.float32, copy=False),  # no 0.5 GB copy of a full tile
        grid,
        nodata=float("nan"),
        band_descriptions=[name],
        resampling="average",
        tags={"statistic": name},
        compress=compression,
    )


class EarlyStatistic:
    """The statistic COG written on a background thread as soon as the statistic is final
    (``run_blockwise(on_statistic=...)``), while the region steps and polygons run; into a
    hidden file beside the product folder, moved into it by ``write_products``.
    Use as a context manager: leaving it waits for the thread and removes a file never moved."""

    def __init__(self, parent: Path, grid: Grid, compression: str, gdal_cache_mb: int,
                 timings: dict[str, float] | None = None) -> None:  # fmt: skip
        self.path = parent / f".statistic-{uuid.uuid4().hex[:8]}.tif"
        self.grid, self.compression, self.timings = grid, compression, timings
        self.gdal_cache_mb = gdal_cache_mb
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="eowatch-statistic")
        self._future: Future[None] | None = None

    @property
    def started(self) -> bool:
        return self._future is not None

    def start(self, statistic: NDArray[np.float32], name: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._future = self._pool.submit(self._write, statistic, name)

    def _write(self, statistic: NDArray[np.float32], name: str) -> None:
        clock = _Clock(self.timings)
        with rasterio.Env(GDAL_CACHEMAX=self.gdal_cache_mb * 1024 * 1024):
            write_statistic_cog(self.path, statistic, self.grid, name, self.compression)
        clock.lap("write_statistic")

    def move_to(self, dest: Path) -> None:
        """Wait for the COG (raising its error) and move it to ``dest``."""
        if self._future is None:
            raise ProductWriteError("the statistic was never handed over (run_blockwise on_statistic)")
        self._future.result()
        os.replace(self.path, dest)

    def __enter__(self) -> EarlyStatistic:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True)
        self.path.unlink(missing_ok=True)


def _write_change_map(staging: Path, result: ChangeResult) -> None:
    colormap: dict[int, tuple[int, int, int] | tuple[int, int, int, int]] = {
        c.value: c.colour for c in result.class_table
    }
    colormap[NO_DATA_CLASS] = (0, 0, 0, 0)
    write_cog(
        staging / PRODUCT_FILES["change_map"],
        result.classes,
        result.grid,
        nodata=NO_DATA_CLASS,
        colormap=colormap,
        band_descriptions=["change_class"],
        tags={
            "classes": json.dumps({c.value: c.name for c in result.class_table}),
            "no_valid_data_value": NO_DATA_CLASS,
        },
    )


class _Clock:
    """Seconds between laps, recorded into ``timings`` (when given)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings, self.t = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        if self.timings is not None:
            self.timings[name] = round(now - self.t, 3)
        self.t = now


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
