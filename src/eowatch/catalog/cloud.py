"""Cloud cover over the AOI, not over the whole scene.

A scene that is 80 % cloudy may be clear over a small AOI, and the reverse.
The Sentinel-2 scene classification (SCL) is read over the AOI's window only,
at a coarse resolution (GDAL reads an overview of remote COGs: a few small
HTTP range requests), and the fraction of AOI pixels that are cloud, shadow,
cirrus, no data (and snow when masked) is returned. When the SCL cannot be
read (no SCL asset as in L1C, no network, no credentials) the scene's
``eo:cloud_cover`` is used instead, scaled by how much of the AOI the
footprint covers; ``CloudCover.source`` says which one was used.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from affine import Affine
from shapely.geometry.base import BaseGeometry

from ..errors import EowatchError
from ..io.load import aoi_mask, band_grid, read_band, reproject_bounds
from ..kernels.masks import scl_invalid
from ..model import Grid
from .providers import Record

__all__ = ["CloudCover", "aoi_cloud_cover", "annotate_cloud", "SOURCES"]

log = logging.getLogger(__name__)

#: Where a cloud figure came from.
SOURCES = ("scl", "scene-metadata", "unknown")
DEFAULT_RESOLUTION_M = 160.0


@dataclass(frozen=True)
class CloudCover:
    """Invalid (cloud, shadow, cirrus, no data[, snow]) fraction over the AOI.

    ``fraction`` is in [0, 1] (None when unknown); ``valid_fraction`` is the
    share of the AOI with a usable observation; ``source`` is 'scl',
    'scene-metadata' or 'unknown'; ``detail`` says why a fallback was used."""

    fraction: float | None
    valid_fraction: float | None
    source: str
    detail: str = ""
    resolution_m: float | None = None

    @property
    def percent(self) -> float | None:
        return None if self.fraction is None else 100.0 * self.fraction

    def as_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "valid_fraction": self.valid_fraction, "source": self.source,
                "detail": self.detail, "resolution_m": self.resolution_m}  # fmt: skip

    def describe(self) -> str:
        """'12.3 % (scl)' or '40.0 % (scene-metadata: no SCL asset)'."""
        if self.fraction is None:
            return f"unknown ({self.detail})" if self.detail else "unknown"
        note = f": {self.detail}" if self.detail and self.source != "scl" else ""
        return f"{self.percent:.1f} % ({self.source}{note})"


def _aoi_grid(grid: Grid, aoi: BaseGeometry, resolution: float) -> Grid:
    """A coarse grid in the SCL's CRS covering the AOI, aligned on multiples of ``resolution``."""
    left, bottom, right, top = reproject_bounds("EPSG:4326", grid.crs, aoi.bounds)
    res = resolution
    if grid.crs.is_geographic:  # degrees: express the resolution as a fraction of the native one
        res = grid.resolution[0] * max(1.0, resolution / 10.0)
    col0, col1 = math.floor(left / res), math.ceil(right / res)
    row0, row1 = math.floor(-top / res), math.ceil(-bottom / res)
    width, height = max(1, col1 - col0), max(1, row1 - row0)
    return Grid(grid.crs, Affine(res, 0, col0 * res, 0, -res, -row0 * res), width, height)


def aoi_cloud_cover(
    record: Record,
    aoi: BaseGeometry,
    *,
    resolution_m: float = DEFAULT_RESOLUTION_M,
    mask_snow: bool = True,
    use_scl: bool = True,
) -> CloudCover:
    """Cloud cover of ``record`` over ``aoi`` (EPSG:4326): from the SCL asset when
    it can be read, else from the scene's ``eo:cloud_cover``."""
    reason = "SCL reading disabled"
    scl = record.acquisition.assets.get("SCL")
    if use_scl and scl is None:
        reason = "no SCL asset"
    elif use_scl and scl is not None:
        try:
            grid = _aoi_grid(band_grid(scl), aoi, resolution_m)
            classes, valid = read_band(scl, grid, categorical=True)
            inside = aoi_mask(grid, aoi)
            total = int(inside.sum())
            if total == 0:
                raise ValueError("the AOI covers no pixel of the SCL grid")
            invalid = inside & (~valid | scl_invalid(classes, mask_snow=mask_snow))
            fraction = float(invalid.sum()) / total
            return CloudCover(fraction, 1.0 - fraction, "scl", resolution_m=resolution_m)
        except (EowatchError, OSError, ValueError) as exc:
            reason = f"SCL unreadable: {str(exc).splitlines()[0][:200]}"
            log.info("%s: %s; using the scene metadata", record.id, reason)
    scene = record.scene_cloud_cover
    if scene is None:
        return CloudCover(None, None, "unknown", f"{reason}; no eo:cloud_cover")
    cover = record.aoi_cover(aoi)
    cloud = min(max(scene / 100.0, 0.0), 1.0)
    clear = cover * (1.0 - cloud)
    return CloudCover(1.0 - clear, clear, "scene-metadata", reason)


def annotate_cloud(
    records: Iterable[Record],
    aoi: BaseGeometry,
    *,
    resolution_m: float = DEFAULT_RESOLUTION_M,
    mask_snow: bool = True,
    use_scl: bool = True,
) -> None:
    """Set ``record.cloud`` on every Sentinel-2 record (Sentinel-1 sees through clouds)."""
    for record in records:
        if record.sensor == "sentinel-2" and record.cloud is None:
            record.cloud = aoi_cloud_cover(
                record, aoi, resolution_m=resolution_m, mask_snow=mask_snow, use_scl=use_scl
            )
