"""What files a run produces: the product writers, each declaring its assets.

Every writer says which runs it applies to, what assets it writes (STAC key, file,
title, media type, roles) and writes them from the run's record (``RunRecord``).
The STAC Item (``eowatch.products.item``) and the OGC API - Processes outputs
(``eowatch.api.processes``) are built from this registry, so an asset is declared
once. ``StatisticWriter.early``: the statistic COG needs only the final statistic,
so it is written while the regions and polygons are computed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..detect.base import Preset, PresetParams
from ..engine.blocks import plan_blocks
from ..io.cog import CogSpool, write_cog, write_cog_windows
from ..io.gdal import PRODUCT_CACHE_MB
from ..io.quicklook import quicklook_png, reduce_classes, reduction_step
from ..io.vector import ChangePolygons, write_flatgeobuf, write_geojson
from ..io.windows import SceneSpec
from ..kernels.sar import acd_composite, to_db
from ..model import NO_DATA_CLASS, Block
from ..runs import RunRecord
from .base import (
    ITEM_FILE,
    MEDIA_TYPES,
    AssetSpec,
    HasStatistic,
    ProductOptions,
    ProductWriter,
    RasterWriter,
    VectorWriter,
)
from .previews import preview_panel
from .visual import VisualWriter

__all__ = [
    "AssetSpec",
    "ProductOptions",
    "ProductWriter",
    "RASTER_WRITERS",
    "VECTOR_WRITERS",
    "WRITERS",
    "assets_for",
    "assets_of",
    "MEDIA_TYPES",
    "ITEM_FILE",
    "write_statistic_cog",
]

# -- rasters -----------------------------------------------------------------


class ChangeMapWriter(RasterWriter):
    name = "change_map"

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        return (
            AssetSpec(
                "change_map",
                "change_map.tif",
                "Change classes",
                MEDIA_TYPES["cog"],
                ("data",),
                "Cloud-Optimized GeoTIFF of change classes with a colour table (255 = no valid data).",
            ),
        )

    def assets_of(self, record: RunRecord) -> tuple[AssetSpec, ...]:
        classes = [
            {
                "value": c.value,
                "name": c.name,
                "description": c.description or c.name,
                "color_hint": "{:02X}{:02X}{:02X}".format(*c.colour),
            }
            for c in record.result.class_table
        ]
        classes.append(
            {
                "value": NO_DATA_CLASS,
                "name": "no_valid_data",
                "description": "cloud, shadow or nodata in a date",
                "nodata": True,
            }
        )
        fields = {
            "classification:classes": classes,
            "raster:bands": [{"data_type": "uint8", "nodata": NO_DATA_CLASS}],
        }
        return tuple(replace(spec, extra_fields=fields) for spec in super().assets_of(record))

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        result = record.result
        colormap: dict[int, tuple[int, int, int] | tuple[int, int, int, int]] = {
            c.value: c.colour for c in result.class_table
        }
        colormap[NO_DATA_CLASS] = (0, 0, 0, 0)
        write_cog(
            folder / "change_map.tif",
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


def write_statistic_cog(path: Path, source: HasStatistic, compression: str) -> None:
    write_cog(
        path,
        source.statistic.astype(np.float32, copy=False),  # no 0.5 GB copy of a full tile
        source.grid,
        nodata=float("nan"),
        band_descriptions=[source.statistic_name],
        resampling="average",
        tags={"statistic": source.statistic_name},
        compress=compression,
    )


class StatisticWriter(RasterWriter):
    name = "statistic"
    early = True
    FILE = "statistic.tif"

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        return (
            AssetSpec(
                "statistic",
                self.FILE,
                "Change statistic",
                MEDIA_TYPES["cog"],
                ("data",),
                "Cloud-Optimized GeoTIFF of the per-pixel change statistic (float32, NaN = no data).",
            ),
        )

    def assets_of(self, record: RunRecord) -> tuple[AssetSpec, ...]:
        (spec,) = super().assets_of(record)
        fields = {"raster:bands": [{"data_type": "float32", "nodata": "nan"}]}
        return (
            replace(spec, title=f"Change statistic ({record.result.statistic_name})", extra_fields=fields),
        )

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        self.write_early(record.result, folder, options)

    def write_early(self, source: HasStatistic, folder: Path, options: ProductOptions) -> None:
        write_statistic_cog(folder / self.FILE, source, options.statistic_compression)


class QuicklookWriter(RasterWriter):
    name = "quicklook"

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        return (
            AssetSpec(
                "quicklook",
                "quicklook.png",
                "Before / after / change",
                MEDIA_TYPES["png"],
                ("overview", "visual"),
                "PNG of the first and last date and the change map, with a legend.",
            ),
        )

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        """Panels of the first and last date read at quicklook size (from overviews where
        the files have them), masked where the change map has no data."""
        plan, result = record.plan, record.result
        step = reduction_step(plan.grid.shape, options.quicklook_max_size)
        valid = reduce_classes(result.classes, step) != NO_DATA_CLASS
        before, after = (preview_panel(source, valid) for source in (plan.sources[0], plan.sources[-1]))
        quicklook_png(
            folder / "quicklook.png",
            before,
            after,
            result,
            max_size=options.quicklook_max_size,
            title=f"{plan.before.id} -> {plan.after.id}",
        )


class AcdWriter(RasterWriter):
    """The amplitude change detection composite of Sentinel-1 runs (first vs last date):
    read, scaled to uint8 and written one 1024-px window at a time, full resolution,
    no whole-scene float array. Pixels that are no data in the change map are 0."""

    name = "acd_composite"

    VMIN, VMAX = -25.0, 0.0

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        if preset.sensor != "sentinel-1":
            return ()
        return (
            AssetSpec(
                "acd_composite",
                "acd_composite.tif",
                f"ACD composite (red = before, green/blue = after; {self.VMIN:g}..{self.VMAX:g} dB)",
                MEDIA_TYPES["cog"],
                ("visual",),
                "RGB composite of the first and last date's backscatter.",
            ),
        )

    @staticmethod
    def _band(record: RunRecord) -> str:
        return str(record.result.metadata.get("polarisation") or record.plan.bands[0])

    def assets_of(self, record: RunRecord) -> tuple[AssetSpec, ...]:
        band = self._band(record).upper()
        title = f"ACD composite {band} (red = before, green/blue = after; {self.VMIN:g}..{self.VMAX:g} dB)"
        return tuple(replace(spec, title=title) for spec in super().assets_of(record))

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        band, plan, classes = self._band(record), record.plan, record.result.classes
        ends = (plan.sources[0], plan.sources[-1])
        # Read with the products' block cache: each block is read once.
        readers = [SceneSpec(s.acq, plan.grid, (band,), gdal_cache_mb=PRODUCT_CACHE_MB).open() for s in ends]

        def windows() -> Iterator[tuple[Block, NDArray[np.uint8]]]:
            for block in plan_blocks(plan.grid, 1024):
                scenes = [reader.read(block)[0] for reader in readers]
                dbs = [to_db(np.where(s.valid, s.data[0], np.nan).astype(np.float64)) for s in scenes]
                rgb = acd_composite(dbs[0], dbs[1], self.VMIN, self.VMAX)
                rgb[:, classes[block.slices] == NO_DATA_CLASS] = 0
                yield block, rgb

        name = band.upper()
        try:
            write_cog_windows(
                folder / "acd_composite.tif",
                plan.grid,
                np.dtype(np.uint8),
                3,
                windows(),
                nodata=None,
                band_descriptions=[
                    f"red: before {name} dB",
                    f"green: after {name} dB",
                    f"blue: after {name} dB",
                ],
                tags={"acd_scale_db": f"{self.VMIN} to {self.VMAX} -> 0 to 255"},
                resampling="average",
            )
        finally:
            for reader in readers:
                reader.close()


class LayersWriter(RasterWriter):
    """The preset's extra layers (``Preset.layers``, e.g. the omnibus series maps)."""

    name = "layers"

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        return tuple(
            AssetSpec(layer.key, layer.file, layer.title, MEDIA_TYPES["cog"], ("visual",), layer.title)
            for layer in preset.layers(params, dates)
        )

    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None:
        plan = record.plan
        for spec in plan.preset.layers(plan.params, len(plan.acquisitions)):
            layer = record.result.layers.get(spec.key)
            if layer is None:  # no valid data: no layers
                continue
            if isinstance(layer, CogSpool):
                layer.publish(folder / spec.file, band_descriptions=list(spec.bands))
            else:
                write_cog(
                    folder / spec.file,
                    layer.read(),
                    plan.grid,
                    nodata=spec.nodata,
                    band_descriptions=list(spec.bands),
                )

    def assets_of(self, record: RunRecord) -> tuple[AssetSpec, ...]:
        return tuple(spec for spec in super().assets_of(record) if spec.key in record.result.layers)


# -- vectors -------------------------------------------------------------------


class PolygonsWriter(VectorWriter):
    name = "polygons"

    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        return (
            AssetSpec(
                "polygons",
                "changes.geojson",
                "Change polygons",
                MEDIA_TYPES["geojson"],
                ("data",),
                "GeoJSON change polygons: class, area in m², mean/max statistic, confidence.",
            ),
            AssetSpec(
                "polygons_fgb",
                "changes.fgb",
                "Change polygons (FlatGeobuf)",
                MEDIA_TYPES["fgb"],
                ("data",),
                "The change polygons as FlatGeobuf with a spatial index.",
            ),
        )

    def write(self, polygons: ChangePolygons, folder: Path) -> None:
        write_geojson(polygons, folder / "changes.geojson")
        write_flatgeobuf(polygons, folder / "changes.fgb")


#: Raster products in the order they are written (on the rasters' thread).
RASTER_WRITERS: tuple[RasterWriter, ...] = (
    ChangeMapWriter(),
    StatisticWriter(),
    QuicklookWriter(),
    VisualWriter(),
    AcdWriter(),
    LayersWriter(),
)
VECTOR_WRITERS: tuple[VectorWriter, ...] = (PolygonsWriter(),)
#: Every writer, in the order of the Item's assets.
WRITERS: tuple[ProductWriter, ...] = (*RASTER_WRITERS[:4], *VECTOR_WRITERS, *RASTER_WRITERS[4:])


def assets_for(preset: Preset[Any, Any], params: PresetParams, dates: int = 2) -> tuple[AssetSpec, ...]:
    """Every asset a run of ``preset`` writes (the OGC process outputs)."""
    return tuple(spec for writer in WRITERS for spec in writer.assets(preset, params, dates))


def assets_of(record: RunRecord) -> tuple[AssetSpec, ...]:
    """The assets of one run (the STAC Item's)."""
    return tuple(spec for writer in WRITERS for spec in writer.assets_of(record))
