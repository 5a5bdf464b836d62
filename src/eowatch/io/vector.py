"""Change polygons: polygonize a change map, rate each region, write GeoJSON / FlatGeobuf.

One feature per 4-connected region of one change class (``eowatch.kernels.regions``
labels them and computes their statistics); geometries are traced along pixel edges
(``eowatch.kernels.boundaries``) and reprojected to EPSG:4326 (RFC 7946).
``ChangePolygons`` holds them as columns; ``to_features()`` gives GeoJSON-like dicts.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely
import shapely.errors
from numpy.typing import NDArray
from pyproj import CRS as ProjCRS
from pyproj import Geod, Transformer
from pyproj.exceptions import CRSError
from rasterio.crs import CRS
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from ..aoi import geodesic_area_m2
from ..errors import ProductWriteError
from ..kernels.boundaries import Rings, trace_rings
from ..kernels.regions import class_regions, zonal_statistics
from ..model import ChangeResult, Grid

__all__ = [
    "ChangePolygons",
    "polygonize_changes",
    "write_geojson",
    "write_flatgeobuf",
    "DIRECTION_CLASS_NAMES",
    "to_wgs84",
]

#: Class names that also become the ``direction`` property of their polygons.
DIRECTION_CLASS_NAMES = frozenset({"increase", "decrease"})

#: Output coordinate precision in degrees (1e-7 deg is about 1 cm).
_DECIMALS = 7
_WGS84 = CRS.from_epsg(4326)

#: Feature properties in output order (``direction`` follows where a class has one).
_PROPERTY_KEYS = (
    "class",
    "class_name",
    "area_m2",
    "mean_statistic",
    "max_statistic",
    "confidence",
    "pixel_count",
)
_FLOAT_KEYS = frozenset({"mean_statistic", "max_statistic", "confidence"})

#: Field name -> numpy dtype of the FlatGeobuf schema (extra properties are appended).
_SCHEMA: dict[str, str] = {
    "id": "int64",
    "class": "int32",
    "class_name": "object",
    "area_m2": "float64",
    "mean_statistic": "float64",
    "max_statistic": "float64",
    "confidence": "float64",
    "pixel_count": "int64",
}


def polygonize_changes(result: ChangeResult, *, simplify_tolerance_px: float = 0.0) -> ChangePolygons:
    """The change polygons (EPSG:4326), one per connected region of a change class.

    Properties: ``class``, ``class_name``, ``area_m2`` (on the ellipsoid, whatever the
    grid's CRS, of the unsimplified region: ``_areas_of``), ``mean_statistic``,
    ``max_statistic``, ``confidence`` (mean over the region, or None),
    ``pixel_count`` and ``direction`` for classes named increase/decrease.
    Sorted by area, largest first; ``id`` is the 1-based rank.
    """
    regions = class_regions(result.classes, result.changed)
    if regions.count == 0:
        return ChangePolygons.empty()
    count, label_class = regions.count, regions.label_class
    stats = zonal_statistics(regions, result.statistic, result.confidence_of)
    rings = trace_rings(regions.labels, count)
    del regions  # the label image: ~0.5 GB on a full tile
    xy = _map_coordinates(rings.xy, result.grid)
    rings = Rings(
        np.empty((0, 2)), rings.ring_offsets, rings.polygon_offsets
    )  # pixel corners no longer needed
    areas = _areas_of(xy, rings, result.grid)
    if simplify_tolerance_px > 0:
        xy, rings = _simplified(xy, rings, simplify_tolerance_px * max(result.grid.resolution))
    out_geoms = _lonlat_polygons(xy, rings, result.grid.crs)
    del xy
    names = {c.value: c.name for c in result.class_table}
    order = np.lexsort((np.arange(1, count + 1), label_class[1:], -areas))
    classes = label_class[1:][order]
    class_names = np.array([names.get(int(c), f"class {int(c)}") for c in classes], dtype=object)
    columns: dict[str, NDArray[Any]] = {
        "class": classes,
        "class_name": class_names,
        "area_m2": areas[order],
        "mean_statistic": stats["mean_statistic"][order],
        "max_statistic": stats["max_statistic"][order],
        "confidence": stats["confidence"][order],
        "pixel_count": stats["pixel_count"][order],
    }
    directions = [n.lower() if n.lower() in DIRECTION_CLASS_NAMES else None for n in class_names.tolist()]
    if any(directions):
        columns["direction"] = np.array(directions, dtype=object)
    return ChangePolygons(out_geoms[order], columns)


class ChangePolygons:
    """Ranked change polygons as columns: shapely geometries (EPSG:4326, RFC 7946
    orientation) and one array per property, row ``i`` being the feature of ``id`` i + 1.
    The writers use the columns directly, which keeps a full tile's 80k+ polygons off
    Python dicts (~8 s of a 10980 px pair); ``to_features()`` makes the dicts."""

    def __init__(self, geometries: NDArray[np.object_], columns: dict[str, NDArray[Any]]) -> None:
        self.geometries = geometries
        self.columns = columns

    @classmethod
    def empty(cls) -> ChangePolygons:
        return cls(
            np.empty(0, dtype=object), {k: np.empty(0, dtype=v) for k, v in _SCHEMA.items() if k != "id"}
        )

    def __len__(self) -> int:
        return len(self.geometries)

    @property
    def total_area_m2(self) -> float:
        return float(np.sum(self.columns["area_m2"])) if len(self) else 0.0

    def properties(self, rows: slice = slice(None)) -> list[dict[str, Any]]:
        """The property dict of every feature in ``rows`` (``direction`` only where the class has one)."""
        records: list[dict[str, Any]] = []
        direction = self.columns.get("direction")
        values = zip(*(self.columns[k][rows].tolist() for k in _PROPERTY_KEYS), strict=True)
        directions = direction[rows].tolist() if direction is not None else None
        for i, row in enumerate(values):
            props = {
                k: _finite_or_none(v) if k in _FLOAT_KEYS else v
                for k, v in zip(_PROPERTY_KEYS, row, strict=True)
            }
            if directions is not None and directions[i] is not None:
                props["direction"] = directions[i]
            records.append(props)
        return records

    def geometry_texts(self, rows: slice = slice(None)) -> list[str]:
        """Each geometry in ``rows`` as GeoJSON text: round-trip decimals (GEOS writes a digit
        more than ``json`` for a few values; they parse to the same numbers)."""
        return [str(t) for t in shapely.to_geojson(self.geometries[rows])]

    def to_features(self) -> list[dict[str, Any]]:
        """GeoJSON-like feature dicts (``id`` = rank, from 1)."""
        return [
            {"type": "Feature", "id": i, "geometry": json.loads(g), "properties": props}
            for i, (g, props) in enumerate(
                zip(self.geometry_texts(), self.properties(), strict=True), start=1
            )
        ]


def write_geojson(polygons: ChangePolygons, path: str | os.PathLike[str]) -> Path:
    """Write ``polygons`` as an RFC 7946 FeatureCollection (lon/lat, no ``crs`` member)."""
    dest = Path(path)
    try:
        _atomic_write(dest, lambda tmp: _write_collection(polygons, tmp))
    except (OSError, ValueError, TypeError) as exc:
        raise ProductWriteError(f"cannot write GeoJSON {dest}: {exc}") from exc
    return dest


def write_flatgeobuf(polygons: ChangePolygons, path: str | os.PathLike[str]) -> Path:
    """Write ``polygons`` (EPSG:4326) as FlatGeobuf with a spatial index.

    Zero features give a valid empty layer with the schema. The spatial index
    orders features along a Hilbert curve, so the ``id`` field keeps the rank.
    """
    dest = Path(path)
    try:
        geometry, geometry_type = _wkb(polygons.geometries)
        names = ["id", *polygons.columns]
        columns = [
            np.arange(1, len(polygons) + 1, dtype=np.int64),
            *(_typed(k, c) for k, c in polygons.columns.items()),
        ]
        _atomic_write(
            dest,
            lambda tmp: pyogrio.raw.write(
                str(tmp),
                geometry,
                columns,
                names,
                driver="FlatGeobuf",
                geometry_type=geometry_type,
                crs="EPSG:4326",
                layer=dest.stem,
                layer_options={"SPATIAL_INDEX": "YES"},
            ),
        )
    except (OSError, ValueError, TypeError, RuntimeError, shapely.errors.ShapelyError) as exc:
        raise ProductWriteError(f"cannot write FlatGeobuf {dest}: {exc}") from exc
    return dest


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


# -- geometry ----------------------------------------------------------------


def _map_coordinates(pixel_xy: NDArray[np.float64], grid: Grid) -> NDArray[np.float64]:
    """(column, row) pixel corners -> map coordinates of the grid's CRS, as one (n, 2) array."""
    t = grid.transform
    col, row = pixel_xy[:, 0], pixel_xy[:, 1]
    out = np.empty_like(pixel_xy)
    np.multiply(col, t.a, out=out[:, 0])
    out[:, 0] += t.b * row
    out[:, 0] += t.c
    np.multiply(col, t.d, out=out[:, 1])
    out[:, 1] += t.e * row
    out[:, 1] += t.f
    return out


def _polygons(xy: NDArray[np.float64], rings: Rings) -> NDArray[np.object_]:
    """One shapely polygon per label (index = label - 1) of the ragged rings at ``xy``."""
    return np.asarray(
        shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, xy, (rings.ring_offsets, rings.polygon_offsets)
        ),
        dtype=object,
    )


def _areas_of(xy: NDArray[np.float64], rings: Rings, grid: Grid) -> NDArray[np.float64]:
    """Area of each region in m² on the ellipsoid, whatever the grid's CRS: geodesic on
    geographic grids (``eowatch.aoi.geodesic_area_m2``), else by the shoelace formula in a
    Lambert azimuthal equal-area projection centred on the grid. (A projected grid's own
    pixel area carries its projection's scale: x1.45 in EPSG:3857 at Beirut, 0.9992 to
    1.002 in UTM.)"""
    if grid.crs.is_geographic:
        geod = _geod(grid.crs)
        return np.array([geodesic_area_m2(g, geod) for g in _polygons(xy, rings)], dtype=np.float64)
    crs = ProjCRS.from_wkt(grid.crs.to_wkt())
    left, bottom, right, top = grid.bounds
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2
    )
    equal_area = ProjCRS.from_proj4(f"+proj=laea +lat_0={lat} +lon_0={lon} +ellps=WGS84 +units=m")
    x, y = Transformer.from_crs(crs, equal_area, always_xy=True).transform(xy[:, 0], xy[:, 1])
    ring_areas = np.abs(_ring_areas(np.column_stack([x, y]), rings))
    exteriors = rings.polygon_offsets[:-1]
    # a polygon's rings are its exterior and its holes: exterior minus the holes
    return 2 * ring_areas[exteriors] - np.add.reduceat(ring_areas, exteriors)


def _ring_areas(xy: NDArray[np.float64], rings: Rings) -> NDArray[np.float64]:
    """The signed area of each ring at ``xy`` (shoelace; counter-clockwise positive)."""
    starts, ends = rings.ring_offsets[:-1], rings.ring_offsets[1:]
    x, y = xy[:, 0], xy[:, 1]
    # Each ring is closed, so the last vertex pairs with nothing after it.
    cross = np.zeros(len(xy))
    cross[:-1] = x[:-1] * y[1:] - x[1:] * y[:-1]
    cross[ends - 1] = 0.0
    return np.add.reduceat(cross, starts) / 2 if len(starts) else np.zeros(0)


def _lonlat_polygons(xy: NDArray[np.float64], rings: Rings, crs: CRS) -> NDArray[np.object_]:
    """The polygons in EPSG:4326, rounded, exterior rings counter-clockwise (RFC 7946), made
    from the flat vertex array in one pass: one PROJ call for every vertex (per-geometry OGR
    calls took ~1 minute for the 80k polygons of a full tile), and one set of shapely objects
    (3 M polygons: 1.6 GB each, where a reprojected, a rounded and an oriented copy peaked at 7 GB)."""
    lonlat = np.array(xy)  # the callers' map coordinates stay as they are
    if CRS.from_user_input(crs) != _WGS84:
        to_wgs84 = Transformer.from_crs(ProjCRS.from_wkt(crs.to_wkt()), "EPSG:4326", always_xy=True)
        lon, lat = to_wgs84.transform(lonlat[:, 0], lonlat[:, 1])
        lonlat[:, 0], lonlat[:, 1] = lon, lat
        del lon, lat
    np.round(lonlat, _DECIMALS, out=lonlat)
    return _polygons(_oriented(lonlat, rings), rings)


def _oriented(xy: NDArray[np.float64], rings: Rings) -> NDArray[np.float64]:
    """``xy`` (in place) with every ring reversed whose orientation is not RFC 7946's (outer
    rings counter-clockwise, holes clockwise), as ``shapely.orient_polygons`` does."""
    starts, ends = rings.ring_offsets[:-1], rings.ring_offsets[1:]
    signed = _ring_areas(xy, rings)
    exterior = np.zeros(len(starts), dtype=bool)
    exterior[rings.polygon_offsets[:-1][np.diff(rings.polygon_offsets) > 0]] = True
    flip = np.flatnonzero(np.where(exterior, signed < 0, signed > 0))
    if flip.size == 0:
        return xy
    sizes = ends[flip] - starts[flip]
    offset = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    target = np.repeat(starts[flip], sizes) + offset
    xy[target] = xy[np.repeat(ends[flip] - 1, sizes) - offset]  # the right side is a copy: safe in place
    return xy


def _geod(crs: CRS) -> Geod:
    """The CRS's own ellipsoid, WGS84 when it cannot be told."""
    try:
        geod = ProjCRS.from_wkt(crs.to_wkt()).get_geod()
    except CRSError:
        geod = None
    return geod if geod is not None else Geod(ellps="WGS84")


def _simplified(xy: NDArray[np.float64], rings: Rings, tolerance: float) -> tuple[NDArray[np.float64], Rings]:
    """The polygons simplified (``tolerance`` in the grid's CRS units, topology kept), as
    ragged arrays again."""
    simple = shapely.simplify(_polygons(xy, rings), tolerance, preserve_topology=True)
    _, coords, (ring_offsets, polygon_offsets) = shapely.to_ragged_array(simple)
    return coords, Rings(np.empty((0, 2)), ring_offsets.astype(np.int64), polygon_offsets.astype(np.int64))


def to_wgs84(geom: BaseGeometry, crs: Any) -> BaseGeometry:
    """``geom`` (in ``crs``) in EPSG:4326 lon/lat, through GDAL's transformer."""
    return shape(transform_geom(crs, "EPSG:4326", mapping(geom)))


# -- writing -----------------------------------------------------------------


#: Features turned into text at a time (bounds the memory of a tile's millions of polygons).
_TEXT_CHUNK = 50_000


def _write_collection(polygons: ChangePolygons, path: Path) -> None:
    """The FeatureCollection text of ``polygons``, written chunk by chunk, geometry texts
    from GEOS spliced in (the same features ``json.dumps`` writes)."""
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"type":"FeatureCollection","features":[')
        for start in range(0, len(polygons), _TEXT_CHUNK):
            rows = slice(start, start + _TEXT_CHUNK)
            parts = [
                f'{{"type":"Feature","geometry":{geometry},"properties":'
                f'{json.dumps(props, allow_nan=False, separators=(",", ":"))},"id":{i}}}'
                for i, (geometry, props) in enumerate(
                    zip(polygons.geometry_texts(rows), polygons.properties(rows), strict=True),
                    start=start + 1,
                )
            ]
            out.write(("," if start else "") + ",".join(parts))
        out.write("]}")


def _typed(name: str, column: NDArray[Any]) -> NDArray[Any]:
    """A property column as the FlatGeobuf schema types it (strings and None as objects)."""
    if column.dtype == object:
        return _column(column.tolist(), "object")
    return column.astype(_SCHEMA.get(name, column.dtype.name))


def _wkb(geoms: NDArray[np.object_]) -> tuple[NDArray[np.object_], str]:
    geoms = geoms.copy()
    types = shapely.get_type_id(geoms)
    if (types == shapely.GeometryType.MULTIPOLYGON).any():
        single = np.flatnonzero(types == shapely.GeometryType.POLYGON)
        geoms[single] = shapely.multipolygons(geoms[single, None])
        geometry_type = "MultiPolygon"
    else:
        geometry_type = "Polygon"
    wkb = np.empty(len(geoms), dtype=object)
    wkb[:] = shapely.to_wkb(geoms)  # one vectorised call, not one per feature
    return wkb, geometry_type


def _column(values: list[Any], dtype: str) -> NDArray[Any]:
    """A typed column; floats (and ints with gaps) use NaN for missing values, written as null."""
    if dtype == "float64" or (dtype != "object" and any(v is None for v in values)):
        return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    if dtype in ("int32", "int64"):
        return np.array([int(v) for v in values], dtype=dtype)
    column = np.empty(len(values), dtype=object)
    column[:] = [None if v is None else str(v) for v in values]
    return column


def _atomic_write(dest: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` on a temporary path next to ``dest``, then move it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".eowatch-", dir=dest.parent) as tmp:
        staged = Path(tmp) / dest.name
        write(staged)
        os.replace(staged, dest)
