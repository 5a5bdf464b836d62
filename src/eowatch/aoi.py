"""Areas of interest: parsed from GeoJSON, WKT or a bbox, validated and measured.

An AOI is always held as a shapely geometry in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from shapely.geometry.polygon import orient

from .errors import AOIError

__all__ = ["parse_aoi", "aoi_area_km2", "check_aoi", "geodesic_area_m2", "bbox_boxes"]

_GEOD = Geod(ellps="WGS84")


def _from_geojson(obj: dict[str, Any]) -> BaseGeometry:
    kind = obj.get("type")
    if kind == "FeatureCollection":
        geoms = [shape(f["geometry"]) for f in obj.get("features", []) if f.get("geometry")]
        if not geoms:
            raise AOIError("the GeoJSON FeatureCollection has no geometry; give at least one Polygon feature")
        return shapely.union_all(geoms)
    if kind == "Feature":
        if not obj.get("geometry"):
            raise AOIError("the GeoJSON Feature has no geometry; give a Polygon or MultiPolygon")
        return shape(obj["geometry"])
    return shape(obj)


def parse_aoi(
    value: str | Path | dict[str, Any] | BaseGeometry | tuple[float, ...] | list[float],
    *,
    files: bool = True,
) -> BaseGeometry:
    """Parse an AOI given as a geometry, GeoJSON (text, dict or, with ``files``, a file),
    WKT, or a bbox ``minx,miny,maxx,maxy`` in degrees (``minx > maxx`` crosses the
    antimeridian). Invalid polygons (e.g. self-intersecting) are repaired with
    ``make_valid``; anything that is not an area is refused. ``files=False`` (a request
    over HTTP) refuses file paths instead of reading them."""
    try:
        if isinstance(value, BaseGeometry):
            geom = value
        elif isinstance(value, dict):
            geom = _from_geojson(value)
        elif isinstance(value, list | tuple):
            geom = _bbox(value)
        else:
            text = str(value).strip()
            path = Path(text)
            if len(text) < 4096 and path.suffix.lower() in {".geojson", ".json"}:
                if not files:
                    raise AOIError(
                        f"the AOI {text!r} is a file name: this service reads no files for an AOI; "
                        "give the GeoJSON itself, WKT or a bbox 'minlon,minlat,maxlon,maxlat'"
                    )
                if not path.exists():
                    raise AOIError(f"AOI file {path} does not exist; give a GeoJSON file, WKT or a bbox")
                geom = _from_geojson(json.loads(path.read_text()))
            elif text.startswith("{"):
                geom = _from_geojson(json.loads(text))
            elif text[:1].isalpha():
                geom = shapely.from_wkt(text)
            else:
                geom = _bbox([float(v) for v in text.replace(" ", "").split(",")])
    except AOIError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, ShapelyError) as exc:
        raise AOIError(
            f"could not parse the AOI ({exc}); give GeoJSON, WKT (e.g. 'POLYGON((...))') "
            "or a bbox 'minlon,minlat,maxlon,maxlat'"
        ) from exc
    return _validated(geom)


def bbox_boxes(minx: float, miny: float, maxx: float, maxy: float) -> list[tuple[float, float, float, float]]:
    """A lon/lat bbox as one box, or two when it crosses the antimeridian (``minx > maxx``)."""
    if minx > maxx:
        return [(minx, miny, 180.0, maxy), (-180.0, miny, maxx, maxy)]
    return [(minx, miny, maxx, maxy)]


def _bbox(values: list[float] | tuple[float, ...]) -> BaseGeometry:
    if len(values) != 4:
        raise AOIError(f"a bbox needs 4 numbers minlon,minlat,maxlon,maxlat; got {len(values)}")
    minx, miny, maxx, maxy = (float(v) for v in values)
    if not (minx != maxx and miny < maxy):
        raise AOIError(f"bbox {list(values)} is empty or inverted; use minlon,minlat,maxlon,maxlat")
    return shapely.union_all([box(*b) for b in bbox_boxes(minx, miny, maxx, maxy)])


def _validated(geom: BaseGeometry) -> BaseGeometry:
    if geom.is_empty:
        raise AOIError("the AOI is empty; give a polygon with a positive area")
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
        # make_valid may return a collection with lines; keep the areal part.
        geom = shapely.union_all(
            [g for g in getattr(geom, "geoms", [geom]) if g.geom_type.endswith("Polygon")]
        )
    if geom.is_empty or geom.area == 0 or not geom.geom_type.endswith("Polygon"):
        raise AOIError(f"the AOI must be a Polygon or MultiPolygon with an area; got {geom.geom_type}")
    minx, miny, maxx, maxy = geom.bounds
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise AOIError(
            f"AOI bounds {geom.bounds} are not longitude/latitude degrees; give the AOI in EPSG:4326"
        )
    return geom


def geodesic_area_m2(geom: BaseGeometry, geod: Geod = _GEOD) -> float:
    """Area in m² of a lon/lat geometry on ``geod``'s ellipsoid (WGS84 by default), its
    edges taken as straight lines in lon/lat, as those of a bbox or of raster pixels are:
    each polygon is densified to a 64th of its extent before ``Geod`` measures it, and one
    wider than 180° of longitude is measured in strips of 90° (``Geod`` cannot tell the
    inside of a ring around the globe: the whole world measured 0)."""
    if hasattr(geom, "geoms"):
        return sum(geodesic_area_m2(part, geod) for part in geom.geoms)
    if geom.geom_type != "Polygon" or geom.is_empty:
        return 0.0
    minx, miny, maxx, maxy = geom.bounds
    if maxx - minx > 180:
        return sum(
            geodesic_area_m2(geom.intersection(box(w, -90, w + 90, 90)), geod) for w in (-180, -90, 0, 90)
        )
    segment = max(maxx - minx, maxy - miny) / 64
    dense = shapely.segmentize(geom, segment) if segment > 0 else geom
    area, _ = geod.geometry_area_perimeter(orient(dense, sign=1.0))
    return abs(area)


def aoi_area_km2(geom: BaseGeometry) -> float:
    """Geodesic area of an EPSG:4326 geometry in km² (``geodesic_area_m2``)."""
    return geodesic_area_m2(geom) / 1e6


def check_aoi(geom: BaseGeometry, max_area_km2: float) -> BaseGeometry:
    """Refuse AOIs larger than ``max_area_km2``."""
    area = aoi_area_km2(geom)
    if area > max_area_km2:
        raise AOIError(
            f"the AOI covers {area:,.0f} km², above the limit of {max_area_km2:,.0f} km²; "
            "split it or raise EOWATCH_MAX_AOI_AREA_KM2"
        )
    return geom
