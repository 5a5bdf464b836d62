"""XYZ map tiles (Web Mercator) of the raster assets of result Items, through
rio-tiler: the change map with its embedded colour table (no-change pixels
transparent in the PNG itself unless ``no_change=opaque``), the before and after
imagery as they are (``eowatch.products.visual``), the statistic rescaled and
coloured with a named colour map. Access control is the catalogue's: a tile of
a collection the caller may not read is a 404 exactly like a missing one.

``.../tiles/{asset}/tilejson.json`` is a TileJSON 3.0 document whose tile URLs are
signed for the caller (``eowatch.api.signing``), so stock clients (QGIS, Leaflet,
OpenLayers, GDAL) need no header. Tiles may be cached for ``tile_cache_s`` at most,
and never beyond their signature's life."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

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
from ..model import NO_CHANGE_CLASS
from ..products.visual import VISUAL_TAG
from ..results import ResultsCatalog
from .auth import principal, visible_collections
from .signing import SIGNATURE_PARAM, TileSigner, tile_scope

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
    path: Path,
    x: int,
    y: int,
    z: int,
    colormap_name: str | None = None,
    rescale: str | None = None,
    opaque_no_change: bool = False,
) -> bytes:
    """A 256 px PNG tile of band 1 of a COG. A raster with a colour table is drawn with
    it, its no-change value transparent unless ``opaque_no_change``; any other is
    rescaled (``rescale`` or its 2-98 % range) to 0-255 (NaN and nodata transparent)
    and coloured with ``colormap_name`` (default viridis)."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2**z and 0 <= y < 2**z):
        raise NotFoundError(f"tile {z}/{x}/{y} does not exist (zoom 0-{MAX_ZOOM}, x and y below 2**zoom)")
    name = (colormap_name or "viridis").lower()
    if name not in cmap.list():
        raise InputError(f"unknown colormap_name {colormap_name!r}; e.g. viridis, magma, rdbu_r, greys")
    bounds = _parse_rescale(rescale)
    with Reader(str(path)) as src:
        visual = VISUAL_TAG in src.dataset.tags()
        try:
            img = src.tile(x, y, z) if visual else src.tile(x, y, z, indexes=1)
        except TileOutsideBounds as exc:
            raise NotFoundError(f"tile {z}/{x}/{y} is outside the raster") from exc
        table = src.colormap
    if visual:  # 8-bit imagery (eowatch.products.visual): drawn as it is, 0 transparent
        return img.render(img_format="PNG")
    if table:
        if not opaque_no_change:
            table = {**table, NO_CHANGE_CLASS: (0, 0, 0, 0)}
        return img.render(img_format="PNG", colormap=table)
    low, high = bounds or _range(str(path), path.stat().st_mtime)
    values = np.asarray(img.array.data[0], dtype="float64")
    valid = ~np.ma.getmaskarray(img.array)[0] & np.isfinite(values)
    scaled = np.clip((np.where(valid, values, low) - low) / (high - low) * 255.0, 0, 255).astype("uint8")
    mask = np.where(valid, 255, 0).astype("uint8")
    return render(scaled[np.newaxis], mask, img_format="PNG", colormap=cmap.get(name))


_COLORMAP = Query(None, description="Colour map of a raster without a colour table.")
_RESCALE = Query(None, description="'min,max' of that colour map (default: 2-98 %).")
_NO_CHANGE = Query(
    "transparent", pattern="^(transparent|opaque)$", description="No-change pixels of a change map."
)


def _raster(request: Request, collection_id: str, item_id: str, asset_key: str) -> Path:
    catalog: ResultsCatalog = request.app.state.catalog
    path, media_type = catalog.asset_file(collection_id, item_id, asset_key, visible_collections(request))
    if "tiff" not in (media_type or "") and path.suffix.lower() not in (".tif", ".tiff"):
        raise NotFoundError(f"asset {asset_key!r} of item {item_id!r} is not a raster that can be tiled")
    return path


def _max_age(request: Request) -> int:
    """How long a client may keep a tile: ``tile_cache_s``, within the signature's life."""
    age = int(request.app.state.settings.tile_cache_s)
    signature = request.query_params.get(SIGNATURE_PARAM)
    if signature:
        signer: TileSigner = request.app.state.tile_signer
        age = min(age, signer.remaining_s(signature))
    return age


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
    colormap_name: str | None = _COLORMAP,
    rescale: str | None = _RESCALE,
    no_change: str = _NO_CHANGE,
) -> Response:
    """An XYZ tile of a raster asset of an Item (also through a signed URL of its TileJSON)."""
    path = _raster(request, collection_id, item_id, asset_key)
    png = render_tile(path, x, y, z, colormap_name, rescale, opaque_no_change=no_change == "opaque")
    return Response(png, media_type=PNG, headers={"Cache-Control": f"private, max-age={_max_age(request)}"})


@router.get("/collections/{collection_id}/items/{item_id}/tiles/{asset_key}/tilejson.json", tags=["tiles"])
def tilejson(
    request: Request,
    collection_id: str,
    item_id: str,
    asset_key: str,
    colormap_name: str | None = _COLORMAP,
    rescale: str | None = _RESCALE,
    no_change: str = _NO_CHANGE,
) -> dict[str, Any]:
    """TileJSON 3.0 of a raster asset of an Item, its tile URL signed for the caller
    (valid for ``tile_url_ttl_s``: fetch the document again for a new one)."""
    path = _raster(request, collection_id, item_id, asset_key)
    with Reader(str(path)) as src:
        minzoom, maxzoom = int(src.minzoom), int(src.maxzoom)
        bounds = [float(v) for v in src.get_geographic_bounds(src.tms.rasterio_geographic_crs)]
    scope = tile_scope(collection_id, item_id, asset_key)
    signer: TileSigner = request.app.state.tile_signer
    signed = signer.sign(principal(request), scope)
    query = {"colormap_name": colormap_name, "rescale": rescale, "no_change": no_change}
    extra = "".join(f"&{k}={quote(v, safe=',')}" for k, v in query.items() if v and v != "transparent")
    base = str(request.app.state.base_url or request.base_url).rstrip("/")
    url = f"{base}{scope}{{z}}/{{x}}/{{y}}.png?{SIGNATURE_PARAM}={signed.signature}{extra}"
    west, south, east, north = bounds
    return {
        "tilejson": "3.0.0",
        "name": f"{item_id} {asset_key}",
        "scheme": "xyz",
        "tiles": [url],
        "minzoom": minzoom,
        "maxzoom": maxzoom,
        "bounds": bounds,
        "center": [(west + east) / 2, (south + north) / 2, max(minzoom, min(maxzoom, 14))],
        "attribution": "eowatch; contains modified Copernicus Sentinel data",
        "expires": dt.datetime.fromtimestamp(signed.expires, dt.UTC).isoformat().replace("+00:00", "Z"),
    }
