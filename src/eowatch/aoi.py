"""Areas of interest: parsed from GeoJSON, WKT or a bbox, validated and measured.

An AOI is always held as a shapely geometry in EPSG:4326 (lon, lat).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from .errors import AOIError

__all__ = ["parse_aoi", "aoi_area_km2", "check_aoi"]

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
) -> BaseGeometry:
    """Parse an AOI given as a geometry, GeoJSON (text, dict or file), WKT, or a
    bbox ``minx,miny,maxx,maxy`` in degrees. Invalid polygons (e.g.
    self-intersecting) are repaired with ``make_valid``; anything that is not an
    area is refused."""
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
    except (ValueError, KeyError, TypeError, AttributeError, shapely.errors.GEOSException) as exc:
        raise AOIError(
            f"could not parse the AOI ({exc}); give GeoJSON, WKT (e.g. 'POLYGON((...))') "
            "or a bbox 'minlon,minlat,maxlon,maxlat'"
        ) from exc
    return _validated(geom)


def _bbox(values: list[float] | tuple[float, ...]) -> BaseGeometry:
    if len(values) != 4:
        raise AOIError(f"a bbox needs 4 numbers minlon,minlat,maxlon,maxlat; got {len(values)}")
    minx, miny, maxx, maxy = (float(v) for v in values)
    if not (minx < maxx and miny < maxy):
        raise AOIError(f"bbox {list(values)} is empty or inverted; use minlon,minlat,maxlon,maxlat")
    return box(minx, miny, maxx, maxy)


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


def aoi_area_km2(geom: BaseGeometry) -> float:
    """Geodesic area of an EPSG:4326 geometry in km²."""
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e6


def check_aoi(geom: BaseGeometry, max_area_km2: float) -> BaseGeometry:
    """Refuse AOIs larger than ``max_area_km2``."""
    area = aoi_area_km2(geom)
    if area > max_area_km2:
        raise AOIError(
            f"the AOI covers {area:,.0f} km², above the limit of {max_area_km2:,.0f} km²; "
            "split it or raise EOWATCH_MAX_AOI_AREA_KM2"
        )
    return geom
