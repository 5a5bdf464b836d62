"""XYZ map tiles (Web Mercator) of the raster assets of result Items, through
rio-tiler: the change map with its embedded colour table, the statistic
rescaled and coloured with a named colour map. Access control is the
catalogue's: a tile of a collection the caller may not read is a 404 exactly
like a missing one."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Query, Request, Response

# Imported here, not inside the functions: tiles are rendered in the threadpool, and the first
# requests of a map arrive together; rio_tiler imported by several threads at once fails with
# "cannot import name 'Reader'" (a partly initialised module), seen from the web application.
from rio_tiler.colormap import cmap
from rio_tiler.errors import TileOutsideBounds
from rio_tiler.io import Reader
from rio_tiler.utils import render

from ..errors import InputError, NotFoundError
from ..results import ResultsCatalog
from .auth import visible_collections

__all__ = ["router", "render_tile"]

router = APIRouter()
PNG = "image/png"
MAX_ZOOM = 24


@functools.lru_cache(maxsize=256)
def _range(path: str, _mtime: float) -> tuple[float, float]:
    """The 2nd-98th percentile range of band 1 (cached per file version)."""
    with Reader(path) as src:
        stats = src.statistics(indexes=1, max_size=512)
    band = next(iter(stats.values()))
    low, high = float(band.percentile_2), float(band.percentile_98)
    return (low, high) if high > low else (low, low + 1.0)


def _parse_rescale(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError as exc:
        raise InputError(f"rescale must be 'min,max' (two numbers), not {value!r}") from exc
    if not high > low:
        raise InputError(f"rescale {value!r}: max must be above min")
    return low, high


def render_tile(
    path: Path, x: int, y: int, z: int, colormap_name: str | None = None, rescale: str | None = None
) -> bytes:
    """A 256 px PNG tile of band 1 of a COG. A raster with a colour table is
    drawn with it; any other is rescaled (``rescale`` or its 2-98 % range) to
    0-255 (NaN and nodata transparent) and coloured with ``colormap_name`` (default viridis)."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFoundError(f"tile {z}/{x}/{y} does not exist (zoom 0-{MAX_ZOOM}, x and y below 2**zoom)")
    name = (colormap_name or "viridis").lower()
    if name not in cmap.list():
        raise InputError(f"unknown colormap_name {colormap_name!r}; e.g. viridis, magma, rdbu_r, greys")
    bounds = _parse_rescale(rescale)
    with Reader(str(path)) as src:
        try:
            img = src.tile(x, y, z, indexes=1)
        except TileOutsideBounds as exc:
            raise NotFoundError(f"tile {z}/{x}/{y} is outside the raster") from exc
        table = src.colormap
    if table:
        return img.render(img_format="PNG", colormap=table)
    low, high = bounds or _range(str(path), path.stat().st_mtime)
    values = np.asarray(img.array.data[0], dtype="float64")
    valid = ~np.ma.getmaskarray(img.array)[0] & np.isfinite(values)
    scaled = np.clip((np.where(valid, values, low) - low) / (high - low) * 255.0, 0, 255).astype("uint8")
    mask = np.where(valid, 255, 0).astype("uint8")
    return render(scaled[np.newaxis], mask, img_format="PNG", colormap=cmap.get(name))


@router.get(
    "/collections/{collection_id}/items/{item_id}/tiles/{asset_key}/{z}/{x}/{y}.png",
    response_class=Response,
    responses={200: {"content": {PNG: {}}}},
    tags=["tiles"],
)
def tile(
    request: Request,
    collection_id: str,
    item_id: str,
    asset_key: str,
    z: int,
    x: int,
    y: int,
    colormap_name: str | None = Query(None, description="Colour map of a raster without a colour table."),
    rescale: str | None = Query(None, description="'min,max' of that colour map (default: 2-98 %)."),
) -> Response:
    """An XYZ tile of a raster asset of an Item."""
    catalog: ResultsCatalog = request.app.state.catalog
    path, media_type = catalog.asset_file(collection_id, item_id, asset_key, visible_collections(request))
    if "tiff" not in (media_type or "") and path.suffix.lower() not in (".tif", ".tiff"):
        raise NotFoundError(f"asset {asset_key!r} of item {item_id!r} is not a raster that can be tiled")
    png = render_tile(path, x, y, z, colormap_name, rescale)
    return Response(png, media_type=PNG, headers={"Cache-Control": "private, max-age=3600"})
