"""The STAC Item that describes one run and records its provenance."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pystac
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from .. import __version__
from ..io.vector import ChangePolygons
from ..model import NO_DATA_CLASS, ChangeResult, Scene

__all__ = ["build_item", "MEDIA_TYPES"]

MEDIA_TYPES = {
    "cog": "image/tiff; application=geotiff; profile=cloud-optimized",
    "png": "image/png",
    "geojson": "application/geo+json",
    "fgb": "application/vnd.flatgeobuf",
}
_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]


def _input_record(scene: Scene, role: str, href: str) -> dict[str, Any]:
    return {
        "role": role,
        "id": scene.id,
        "datetime": scene.datetime.isoformat() if scene.datetime else None,
        "href": href,
        "bands": {name: scene.hrefs.get(name) for name in scene.bands},
        "sensor": scene.sensor,
    }


def build_item(
    run_id: str,
    before: Scene,
    after: Scene,
    before_href: str,
    after_href: str,
    result: ChangeResult,
    features: Sequence[dict[str, Any]],
    preset: str,
    parameters: dict[str, Any],
    timings: dict[str, float],
    files: dict[str, str],
    status: str = "ok",
    extra_properties: dict[str, Any] | None = None,
    extra_assets: dict[str, tuple[str, str, str]] | None = None,
) -> pystac.Item:
    """A STAC Item for a run: footprint, both input dates, assets with roles
    and media types, and provenance (inputs, preset, parameters, software,
    timings)."""
    grid = result.grid
    footprint = shape(transform_geom(grid.crs, "EPSG:4326", mapping(box(*grid.bounds))))
    changed_area = (
        features.total_area_m2
        if isinstance(features, ChangePolygons)  # no feature dicts for a tile's 80k polygons
        else float(sum(f["properties"]["area_m2"] for f in features))
    )
    dates = [d for d in (before.datetime, after.datetime) if d is not None]
    properties: dict[str, Any] = {
        "start_datetime": min(dates).isoformat() if dates else None,
        "end_datetime": max(dates).isoformat() if dates else None,
        "eowatch:preset": preset,
        "eowatch:parameters": parameters,
        "eowatch:status": status,
        "eowatch:valid_fraction": round(result.valid_fraction, 6),
        "eowatch:changed_area_m2": round(changed_area, 1),
        "eowatch:polygon_count": len(features),
        "eowatch:statistic": result.statistic_name,
        "eowatch:inputs": [
            _input_record(before, "before", before_href),
            _input_record(after, "after", after_href),
        ],
        "eowatch:timings_s": {k: round(v, 3) for k, v in timings.items()},
        "eowatch:metadata": _plain(result.metadata),
        "processing:software": {"eowatch": __version__, "python": platform.python_version()},
        "processing:datetime": datetime.now(UTC).isoformat(),
        "processing:lineage": f"eowatch preset {preset} on {before.id} (before) and {after.id} (after)",
        "proj:code": grid.crs.to_string() if grid.crs.to_epsg() is None else f"EPSG:{grid.crs.to_epsg()}",
        "proj:shape": [grid.height, grid.width],
        "proj:transform": list(grid.transform)[:6],
        **(extra_properties or {}),
    }
    item = pystac.Item(
        id=run_id,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=after.datetime or datetime.now(UTC),
        properties=properties,
        stac_extensions=list(_EXTENSIONS),
    )
    classes = [
        {
            "value": c.value,
            "name": c.name,
            "description": c.description or c.name,
            "color_hint": "{:02X}{:02X}{:02X}".format(*c.colour),
        }
        for c in result.class_table
    ]
    classes.append(
        {
            "value": NO_DATA_CLASS,
            "name": "no_valid_data",
            "description": "cloud, shadow or nodata in a date",
            "nodata": True,
        }
    )
    item.add_asset(
        "change_map",
        pystac.Asset(
            files["change_map"],
            title="Change classes",
            media_type=MEDIA_TYPES["cog"],
            roles=["data"],
            extra_fields={
                "classification:classes": classes,
                "raster:bands": [{"data_type": "uint8", "nodata": NO_DATA_CLASS}],
            },
        ),
    )
    item.add_asset(
        "statistic",
        pystac.Asset(
            files["statistic"],
            title=f"Change statistic ({result.statistic_name})",
            media_type=MEDIA_TYPES["cog"],
            roles=["data"],
            extra_fields={"raster:bands": [{"data_type": "float32", "nodata": "nan"}]},
        ),
    )
    item.add_asset(
        "quicklook",
        pystac.Asset(
            files["quicklook"],
            title="Before / after / change",
            media_type=MEDIA_TYPES["png"],
            roles=["overview", "visual"],
        ),
    )
    item.add_asset(
        "polygons",
        pystac.Asset(
            files["polygons_geojson"],
            title="Change polygons",
            media_type=MEDIA_TYPES["geojson"],
            roles=["data"],
        ),
    )
    item.add_asset(
        "polygons_fgb",
        pystac.Asset(
            files["polygons_fgb"],
            title="Change polygons (FlatGeobuf)",
            media_type=MEDIA_TYPES["fgb"],
            roles=["data"],
        ),
    )
    for key, (href, title, media) in (extra_assets or {}).items():
        item.add_asset(key, pystac.Asset(href, title=title, media_type=media, roles=["visual"]))
    for href in {before_href, after_href}:
        if href.endswith(".json"):
            item.add_link(pystac.Link("derived_from", href, media_type="application/geo+json"))
    return item


def _plain(value: Any) -> Any:
    """Make numpy scalars and arrays JSON-friendly."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
