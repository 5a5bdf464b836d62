"""The STAC Item that describes one run and records its provenance."""

from __future__ import annotations

import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pystac
from shapely.geometry import box, mapping

from .. import __version__
from ..io.s2_metadata import PROVENANCE_KEYS
from ..io.sources import Acquisition
from ..io.vector import ChangePolygons, to_wgs84
from ..io.windows import SceneSpec
from ..runs import ROLES, RunRecord
from .registry import AssetSpec

__all__ = ["build_item"]

_EXTENSIONS = [
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
    "https://stac-extensions.github.io/classification/v2.0.0/schema.json",
    "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]


def _input_record(source: SceneSpec, role: str) -> dict[str, Any]:
    acq: Acquisition = source.acq
    return {
        "role": role,
        "id": acq.id,
        "datetime": acq.datetime.isoformat() if acq.datetime else None,
        "href": acq.href,
        "bands": {name: acq.assets[name].href for name in source.bands},
        "sensor": acq.sensor,
        **{key: acq.properties[key] for key in PROVENANCE_KEYS if key in acq.properties},
    }


def build_item(record: RunRecord, polygons: ChangePolygons, assets: Sequence[AssetSpec]) -> pystac.Item:
    """A STAC Item for a run: footprint, the first and last date, ``assets`` with roles
    and media types, and provenance (inputs, preset, parameters, software, timings)."""
    plan, result = record.plan, record.result
    grid = plan.grid
    footprint = to_wgs84(box(*grid.bounds), grid.crs)
    first, last = plan.before, plan.after
    dates = [d for d in (first.datetime, last.datetime) if d is not None]
    properties: dict[str, Any] = {
        "start_datetime": min(dates).isoformat() if dates else None,
        "end_datetime": max(dates).isoformat() if dates else None,
        "eowatch:preset": plan.preset.name,
        "eowatch:parameters": plan.params.model_dump(),
        "eowatch:status": record.status,
        "eowatch:valid_fraction": round(result.valid_fraction, 6),
        "eowatch:valid_fraction_aoi": round(record.valid_fraction_of_aoi, 6),
        "eowatch:changed_area_m2": round(polygons.total_area_m2, 1),
        "eowatch:polygon_count": len(polygons),
        "eowatch:statistic": result.statistic_name,
        "eowatch:inputs": [
            _input_record(source, role)
            for source, role in zip((plan.sources[0], plan.sources[-1]), ROLES, strict=True)
        ],
        "eowatch:timings_s": {k: round(v, 3) for k, v in record.timings.items()},
        "eowatch:metadata": _plain(record.metadata()),
        "processing:software": {"eowatch": __version__, "python": platform.python_version()},
        "processing:datetime": datetime.now(UTC).isoformat(),
        "processing:lineage": f"eowatch preset {plan.preset.name} on {first.id} (before) "
        f"and {last.id} (after)",
        "proj:code": grid.crs.to_string() if grid.crs.to_epsg() is None else f"EPSG:{grid.crs.to_epsg()}",
        "proj:shape": [grid.height, grid.width],
        "proj:transform": list(grid.transform)[:6],
        **plan.properties,
    }
    item = pystac.Item(
        id=plan.run_id,
        geometry=mapping(footprint),
        bbox=list(footprint.bounds),
        datetime=last.datetime or datetime.now(UTC),
        properties=properties,
        stac_extensions=list(_EXTENSIONS),
    )
    for spec in assets:
        item.add_asset(
            spec.key,
            pystac.Asset(spec.file, title=spec.title, media_type=spec.media_type, roles=list(spec.roles),
                         extra_fields=spec.extra_fields),
        )  # fmt: skip
    for href in {first.href, last.href}:
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
