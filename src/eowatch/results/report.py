"""A report of confirmed changes: the polygons analysts confirmed, in the collections
the caller may read, as one zip an analyst attaches to a report or opens in a GIS:

* ``confirmed.geojson``, ``confirmed.kml`` and ``confirmed.gpkg``: one feature per
  confirmed polygon (collection, item, polygon id, class, verdict author, note, time,
  the chip files), in WGS 84;
* ``chips/<n>_before.png`` and ``chips/<n>_after.png``: the polygon's surroundings cut
  from the result's before and after images (``eowatch.products.visual``) at full
  resolution, the polygon in the middle (results without visual images get no chips).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import tempfile
import zipfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely

from ..errors import InputError, NotFoundError
from ..io.chips import chip_png
from .feedback import Feedback

__all__ = ["confirmed_report", "MAX_REPORTED", "CHIP_MIN_PX", "CHIP_MAX_PX"]

#: Most confirmed polygons in one report.
MAX_REPORTED = 500
#: A chip is the polygon's bounding box grown by half on each side, at least this many
#: pixels wide and high, at most this many (a larger polygon is shown clipped to its centre).
CHIP_MIN_PX, CHIP_MAX_PX = 64, 512


def _visual(feedback: Feedback, collection: str, item: str, key: str) -> Path | None:
    try:
        return feedback.catalog.asset_file(collection, item, key)[0]
    except NotFoundError:
        return None


def _fields(features: list[dict[str, Any]]) -> tuple[list[str], list[np.ndarray]]:
    """Flat attribute columns (nested values as JSON text) for the OGR formats."""
    names = sorted({k for f in features for k in f["properties"]})
    columns = []
    for name in names:
        values = [f["properties"].get(name) for f in features]
        flat = [json.dumps(v) if isinstance(v, (dict, list)) else v for v in values]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat if v is not None):
            columns.append(np.array([np.nan if v is None else float(v) for v in flat]))
        else:
            columns.append(np.array(["" if v is None else str(v) for v in flat], dtype=object))
    return names, columns


def confirmed_report(
    feedback: Feedback,
    visible: Collection[str] | None,
    collection_id: str | None = None,
    since: dt.datetime | None = None,
) -> bytes:
    """The zip of the confirmed polygons ``visible`` to the caller (see the module)."""
    labels = feedback.labels(visible, collection_id, since=since, verdicts=["confirmed"])
    features = labels["features"]
    if len(features) > MAX_REPORTED:
        raise InputError(
            f"{len(features)} confirmed changes match; a report holds at most {MAX_REPORTED}: "
            "narrow it with collection or since"
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for n, feature in enumerate(features, start=1):
            p = feature["properties"]
            bbox = shapely.geometry.shape(feature["geometry"]).bounds
            for when in ("before", "after"):
                path = _visual(feedback, p["collection"], p["item"], f"{when}_visual")
                png = chip_png(path, bbox, CHIP_MIN_PX, CHIP_MAX_PX) if path is not None else None
                p[f"chip_{when}"] = f"chips/{n}_{when}.png" if png else None
                if png:
                    archive.writestr(f"chips/{n}_{when}.png", png)
        archive.writestr("confirmed.geojson", json.dumps(labels, indent=1))
        if features:
            geometry = np.array([shapely.geometry.shape(f["geometry"]).wkb for f in features], dtype=object)
            names, columns = _fields(features)
            with tempfile.TemporaryDirectory(prefix="eowatch-report-") as tmp:
                for driver, file in (("KML", "confirmed.kml"), ("GPKG", "confirmed.gpkg")):
                    target = Path(tmp) / file
                    pyogrio.raw.write(
                        str(target), geometry, columns, names, driver=driver,
                        geometry_type="Unknown", crs="EPSG:4326", layer="confirmed",
                    )  # fmt: skip
                    archive.write(target, file)
    return buffer.getvalue()
