"""The imagery under the changes: the first and the last date of a run at full resolution
as 8-bit COGs on the product's grid (``before_visual.tif``, ``after_visual.tif``), so
that the map shows (and tiles serve) what the analyst judges a change on, even when the
inputs are no longer reachable.

Sentinel-2: true colour (B04, B03, B02); any other optical input its first band;
Sentinel-1: the first band in dB. One linear stretch for both dates (the 2nd-98th
percentile of both dates' previews, per band), so that a brightness change shows as
one; values 1-255, 0 = no data in the input (clouds stay visible: the analyst sees why
the change map has no valid data there). Written one 1024 px window at a time, never a
whole-scene array.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detect.base import Preset, PresetParams
from ..engine.blocks import plan_blocks
from ..io.cog import write_cog_windows
from ..io.gdal import PRODUCT_CACHE_MB
from ..io.quicklook import reduce_classes, reduction_step
from ..io.windows import SceneSpec
from ..kernels.sar import to_db
from ..model import Block
from ..runs import RunRecord
from .base import MEDIA_TYPES, AssetSpec, ProductOptions, RasterWriter
from .previews import display_bands

__all__ = ["VisualWriter", "VISUAL_TAG"]

#: GeoTIFF tag that marks a visual COG (its bands are drawn as they are by the tiles).
VISUAL_TAG = "eowatch_visual"
_PERCENTILES = (2.0, 98.0)


def _in_display_units(values: NDArray[np.floating[Any]], radar: bool) -> NDArray[np.float32]:
    x = np.asarray(values, dtype=np.float32)
    return to_db(x).astype(np.float32, copy=False) if radar else x


def _stretch(
    previews: Sequence[NDArray[np.float32]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per band low and scale (to 1-255) over the finite values of every preview."""
    lows, scales = [], []
    for band in range(previews[0].shape[0]):
        values = np.concatenate([p[band][np.isfinite(p[band])] for p in previews])
        low, high = np.percentile(values, _PERCENTILES) if values.size else (0.0, 1.0)
        lows.append(low)
        scales.append(254.0 / (high - low) if high > low else 0.0)
    return np.array(lows), np.array(scales)


def _to_uint8(values: NDArray[np.float32], low: NDArray[np.float64], scale: NDArray[np.float64]
              ) -> NDArray[np.uint8]:  # fmt: skip
    """1-255 by band (rounded), 0 where any band is not finite; float32, one band at a time
    (a full tile's window loop spent 8 s per date in float64 temporaries)."""
    out = np.empty(values.shape, dtype=np.uint8)
    bad = np.zeros(values.shape[1:], dtype=bool)
    for band, x in enumerate(values):
        y = (x - np.float32(low[band])) * np.float32(scale[band])
        np.clip(y, 0.0, 254.0, out=y)
        y += np.float32(1.5)  # 1 + rounding; NaN stays NaN
        bad |= np.isnan(y)
        out[band] = np.nan_to_num(y, copy=False, nan=0.0)
    out[:, bad] = 0
    return out


class VisualWriter(RasterWriter):
    name = "visual"
    FILES = {"before_visual": "before_visual.tif", "after_visual": "after_visual.tif"}

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        what = "true colour (B04/B03/B02)" if preset.sensor == "sentinel-2" else "backscatter (dB)"
        return tuple(
            AssetSpec(
                key,
                file,
                f"{'Before' if key.startswith('before') else 'After'} image, {what}",
                MEDIA_TYPES["cog"],
                ("visual",),
                f"8-bit COG of the {'first' if key.startswith('before') else 'last'} date at full resolution "
                "on the change map's grid, one stretch for both dates (2-98 %), 0 = no valid data.",
            )
            for key, file in self.FILES.items()
        )

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        plan, classes = record.plan, record.result.classes
        ends = (plan.sources[0], plan.sources[-1])
        bands = display_bands(ends[0])
        radar = ends[0].acq.sensor == "sentinel-1"
        step = reduction_step(plan.grid.shape, options.quicklook_max_size)
        shape = reduce_classes(classes, step).shape
        low, scale = _stretch([_in_display_units(s.preview(bands, shape), radar) for s in ends])
        description = [f"{b} ({'dB' if radar else 'reflectance'}) stretched to 1-255" for b in bands]

        def write_date(key: str, source: SceneSpec) -> None:
            reader = SceneSpec(source.acq, plan.grid, bands, gdal_cache_mb=PRODUCT_CACHE_MB).open()

            def windows() -> Iterator[tuple[Block, NDArray[np.uint8]]]:
                for block in plan_blocks(plan.grid, 1024):
                    scene = reader.read(block)[0]
                    yield block, _to_uint8(_in_display_units(scene.data, radar), low, scale)

            try:
                write_cog_windows(
                    folder / self.FILES[key],
                    plan.grid,
                    np.dtype(np.uint8),
                    len(bands),
                    windows(),
                    nodata=0,
                    band_descriptions=description,
                    tags={VISUAL_TAG: "1", "date": source.acq.id},
                    resampling="average",
                    compress="ZSTD",
                )
            finally:
                reader.close()

        # Both dates at once: reads, codecs and the numpy steps release the GIL.
        with ThreadPoolExecutor(2, thread_name_prefix="eowatch-visual") as pool:
            for done in [pool.submit(write_date, k, s) for k, s in zip(self.FILES, ends, strict=True)]:
                done.result()
