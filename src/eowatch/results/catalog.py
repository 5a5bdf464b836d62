"""The results catalogue: every product run registered as a STAC Item in a
collection, stored in SQLite (default) or PostgreSQL, searchable by space,
time, ids and collections, and exportable as a static STAC catalogue.

Spatial search needs no PostGIS: the bounding-box columns prefilter in SQL and
shapely decides the exact intersection in Python, so both databases give the
same answers.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import shutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pystac
from shapely.errors import ShapelyError
from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, and_, delete, func, or_, select, tuple_
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ..aoi import bbox_boxes
from ..errors import CatalogError, InputError, NotFoundError
from ..ids import check_id
from ..settings import Settings
from ..store import CollectionRow, ItemRow, make_engine
from ..store.db import as_utc, database_error, rfc3339

__all__ = ["ResultsCatalog", "SearchResult", "STAC_VERSION", "parse_datetime_range", "parse_bbox"]

STAC_VERSION = "1.1.0"
MAX_LIMIT = 10_000
_ITEM_FILE = "item.json"
_MANAGED_RELS = {"self", "root", "parent", "collection", "next", "prev"}


@dataclass(frozen=True)
class SearchResult:
    """One page of a search: the Items (STAC dicts, hrefs relative to their
    product folder), the token of the next page (None on the last) and how
    many Items match in all."""

    items: list[dict[str, Any]]
    next_token: str | None
    matched: int


# -- parsing of search parameters -------------------------------------------------


#: What pystac raises on JSON that is not a STAC Item (on JSON that is not an object: AttributeError).
_STAC_ERRORS = (pystac.STACError, pystac.STACTypeError)
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _parse_instant(text: str) -> datetime:
    """An RFC 3339 date-time (as STAC requires: date, time and offset), in UTC."""
    value = text.strip()
    if not _RFC3339.match(value):
        raise InputError(
            f"{text!r} is not an RFC 3339 date-time: "
            "write e.g. 2017-01-01T00:00:00Z or 2017-01-01T01:00:00+01:00"
        )
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except ValueError as exc:
        raise InputError(f"{text!r} is not an RFC 3339 date-time (e.g. 2017-01-01T00:00:00Z)") from exc
    except OverflowError as exc:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        raise InputError(f"{text!r} is outside the years 1 to 9999 once converted to UTC") from exc


def parse_datetime_range(text: str | None) -> tuple[datetime | None, datetime | None] | None:
    """``"a/b"`` (either end open with ``..`` or empty) or a single instant,
    as a UTC (start, end) pair; None for no filter."""
    if text is None or not text.strip():
        return None
    if "/" not in text:
        instant = _parse_instant(text)
        return instant, instant
    parts = text.split("/")
    if len(parts) != 2:
        raise InputError(f"datetime {text!r} must be one instant or an interval 'start/end'")
    start, end = (None if p.strip() in ("", "..") else _parse_instant(p) for p in parts)
    if start is None and end is None:
        raise InputError(f"datetime {text!r}: an interval needs at least one closed end")
    if start is not None and end is not None and start > end:
        raise InputError(f"datetime {text!r}: the start is after the end")
    return start, end


def _coordinate(value: Any, text: bool) -> float:
    """One finite number of a bbox: text in the ``"a,b,c,d"`` form, a JSON number otherwise."""
    if isinstance(value, bool) or not isinstance(value, str if text else int | float):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not finite")
    return number


def parse_bbox(values: Sequence[float] | str | None) -> list[float] | None:
    """A bbox as 4 (or 6, with heights) numbers, given as a list or ``"a,b,c,d"``:
    longitudes in [-180, 180] (minx > maxx crosses the antimeridian), latitudes in
    [-90, 90] with miny <= maxy."""
    if values is None:
        return None
    text = isinstance(values, str)
    try:
        numbers = [_coordinate(v, text) for v in (values.split(",") if isinstance(values, str) else values)]
    except (TypeError, ValueError) as exc:
        raise InputError(f"bbox {values!r} must be 4 (or 6) numbers minx,miny,maxx,maxy: {exc}") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise InputError(f"bbox {values!r} must have 4 numbers (minx, miny, maxx, maxy) or 6")
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180):
        raise InputError(f"bbox {values!r}: longitudes must be in [-180, 180] (minx > maxx crosses 180°)")
    if miny > maxy or not (-90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InputError(f"bbox {values!r}: latitudes must be in [-90, 90] with miny <= maxy")
    return numbers


_GEOMETRY_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                   "GeometryCollection")  # fmt: skip


def _geometry(value: dict[str, Any] | BaseGeometry) -> BaseGeometry:
    if isinstance(value, BaseGeometry):
        return value
    if value.get("type") not in _GEOMETRY_TYPES:
        raise InputError(
            f"intersects must be a GeoJSON geometry ({', '.join(_GEOMETRY_TYPES)}), "
            f"not type {value.get('type')!r}: send a Feature's geometry member, not the Feature"
        )
    try:
        geom = shape(value)
    except (AttributeError, KeyError, TypeError, ValueError, ShapelyError) as exc:
        raise InputError(f"intersects is not a GeoJSON geometry: {exc}") from exc
    if geom.is_empty:
        raise InputError("intersects is an empty geometry")
    return geom


def _encode_token(row_key: tuple[datetime, str, str]) -> str:
    when, collection, item = row_key
    raw = json.dumps([as_utc(when).isoformat(), collection, item]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, collection, item = json.loads(raw)
        return _parse_instant(when), str(collection), str(item)
    except (binascii.Error, ValueError, TypeError, AttributeError, RecursionError, InputError) as exc:
        raise InputError(f"paging token {token!r} is not valid; start again from the first page") from exc


# -- the catalogue -----------------------------------------------------------------


class ResultsCatalog:
    """STAC Items of product runs in a database.

    ``ResultsCatalog("sqlite:///out/eowatch.db")`` or with an existing engine.
    Items are returned as STAC dicts whose asset hrefs are relative to their
    product folder (the API turns them into URLs, the static export into
    copied files); ``asset_file`` finds the file behind an asset.
    """

    def __init__(self, engine_or_url: Engine | str) -> None:
        self.engine = engine_or_url if isinstance(engine_or_url, Engine) else make_engine(engine_or_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> ResultsCatalog:
        """The catalogue named by ``settings.database_url`` (default: a SQLite
        file ``eowatch.db`` in the output folder)."""
        return cls(settings.results_database_url())

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- collections ---------------------------------------------------------

    def ensure_collection(
        self, collection_id: str, title: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        """Create the collection when missing (title and description update an existing one)."""
        check_id("collection id", collection_id)
        try:
            with self._session() as session, session.begin():
                row = session.get(CollectionRow, collection_id)
                if row is None:
                    row = CollectionRow(
                        id=collection_id,
                        title=title or collection_id,
                        description=description or f"eowatch change-detection runs in {collection_id}",
                    )
                    session.add(row)
                else:
                    if title:
                        row.title = title
                    if description:
                        row.description = description
        except SQLAlchemyError as exc:
            raise database_error(f"cannot write collection {collection_id!r}", exc) from exc
        return self.get_collection(collection_id)

    def list_collections(self, visible: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Every collection as a STAC Collection dict (extent computed from its
        Items); only those in ``visible`` when given (access control)."""
        query = select(CollectionRow).order_by(CollectionRow.id)
        if visible is not None:
            query = query.where(CollectionRow.id.in_(list(visible)))
        with self._session() as session:
            rows = session.scalars(query).all()
            extents = self._extents(session)
        return [self._collection_dict(r, extents.get(r.id)) for r in rows]

    def get_collection(self, collection_id: str, visible: Collection[str] | None = None) -> dict[str, Any]:
        """One collection as a STAC Collection dict; NotFoundError when unknown
        (or, when ``visible`` is given, not in it: the same answer)."""
        with self._session() as session:
            row = session.get(CollectionRow, collection_id)
            if row is None or (visible is not None and collection_id not in visible):
                raise NotFoundError(f"no collection {collection_id!r} in the results catalogue")
            extents = self._extents(session, collection_id)
        return self._collection_dict(row, extents.get(collection_id))

    def _extents(self, session: Session, collection_id: str | None = None) -> dict[str, tuple[Any, ...]]:
        query = select(
            ItemRow.collection_id,
            func.min(ItemRow.minx),
            func.min(ItemRow.miny),
            func.max(ItemRow.maxx),
            func.max(ItemRow.maxy),
            func.min(ItemRow.start_datetime),
            func.max(ItemRow.end_datetime),
            func.count(),
        ).group_by(ItemRow.collection_id)
        if collection_id is not None:
            query = query.where(ItemRow.collection_id == collection_id)
        return {r[0]: tuple(r[1:]) for r in session.execute(query)}

    @staticmethod
    def _collection_dict(row: CollectionRow, extent: tuple[Any, ...] | None) -> dict[str, Any]:
        if extent and extent[-1]:
            bbox = [float(v) for v in extent[:4]]
            interval = [rfc3339(extent[4]), rfc3339(extent[5])]
        else:
            bbox, interval = [-180.0, -90.0, 180.0, 90.0], [None, None]
        return {
            "type": "Collection",
            "stac_version": STAC_VERSION,
            "id": row.id,
            "title": row.title or row.id,
            "description": row.description or row.id,
            "license": "other",
            "extent": {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}},
            "links": [],
        }

    # -- ingest ---------------------------------------------------------------

    def ingest_folder(self, folder: str | Path, collection: str) -> dict[str, Any]:
        """Register the product in ``folder`` (its ``item.json`` and assets) in
        ``collection``, creating the collection when needed. Ingesting the same
        Item id again replaces the earlier record. Returns the stored Item."""
        folder = Path(folder).resolve()
        item_path = folder / _ITEM_FILE
        if not item_path.is_file():
            raise InputError(f"{folder} is not a product folder: it has no {_ITEM_FILE}")
        try:
            data = json.loads(item_path.read_text())
            pystac.Item.from_dict(data, preserve_dict=True)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, *_STAC_ERRORS) as exc:
            raise InputError(
                f"{item_path} is not a readable STAC Item: {exc}; give product folders written by eowatch"
            ) from exc
        for key, asset in (data.get("assets") or {}).items():
            href = str(asset.get("href", ""))
            if "://" in href:
                continue
            path = (folder / href).resolve()
            if not path.is_relative_to(folder):
                raise InputError(f"asset {key!r} of {item_path} points outside its folder: {href}")
            if not path.is_file():
                raise InputError(f"asset {key!r} of {item_path} is missing: {path} (re-run the product)")
        return self.ingest_item(data, folder, collection)

    def ingest_item(self, data: dict[str, Any], folder: str | Path, collection: str) -> dict[str, Any]:
        """Store a STAC Item dict whose relative asset hrefs live in ``folder``."""
        self.ensure_collection(collection)
        try:
            geometry = data["geometry"]
            geom = shape(geometry)
            bbox = data.get("bbox") or list(geom.bounds)
            props = dict(data.get("properties") or {})
            when = _parse_instant(props.get("datetime") or props["start_datetime"])
            start = _parse_instant(props["start_datetime"]) if props.get("start_datetime") else when
            end = _parse_instant(props["end_datetime"]) if props.get("end_datetime") else when
            item_id = str(data["id"])
        except (KeyError, TypeError, AttributeError, ValueError, ShapelyError) as exc:
            raise InputError(
                f"STAC Item {data.get('id')!r} lacks a geometry, bbox or datetime: {exc}"
            ) from exc
        check_id("item id", item_id)
        minx, miny, maxx, maxy = (float(v) for v in (bbox[:2] + bbox[-2:] if len(bbox) == 6 else bbox))
        props["datetime"] = rfc3339(when)
        links = [link for link in data.get("links", []) if link.get("rel") not in _MANAGED_RELS]
        row = ItemRow(
            collection_id=collection,
            id=item_id,
            datetime=when,
            start_datetime=min(start, when),
            end_datetime=max(end, when),
            minx=minx,
            miny=miny,
            maxx=maxx,
            maxy=maxy,
            geometry=geometry,
            properties=props,
            assets=data.get("assets") or {},
            links=links,
            stac_extensions=list(data.get("stac_extensions") or []),
            folder=str(Path(folder).resolve()),
        )
        try:
            with self._session() as session, session.begin():
                session.execute(
                    delete(ItemRow).where(ItemRow.collection_id == collection, ItemRow.id == item_id)
                )
                session.add(row)
        except SQLAlchemyError as exc:
            raise database_error(f"cannot store item {item_id!r} in {collection!r}", exc) from exc
        return self._item_dict(row)

    def delete_item(self, collection_id: str, item_id: str) -> None:
        """Remove one Item (its product folder is left alone)."""
        with self._session() as session, session.begin():
            result = session.execute(
                delete(ItemRow).where(ItemRow.collection_id == collection_id, ItemRow.id == item_id)
            )
        if not result.rowcount:  # type: ignore[attr-defined]
            raise NotFoundError(f"no item {item_id!r} in collection {collection_id!r}")

    # -- read -------------------------------------------------------------------

    @staticmethod
    def _item_dict(row: ItemRow) -> dict[str, Any]:
        return {
            "type": "Feature",
            "stac_version": STAC_VERSION,
            "stac_extensions": list(row.stac_extensions or []),
            "id": row.id,
            "collection": row.collection_id,
            "geometry": row.geometry,
            "bbox": [row.minx, row.miny, row.maxx, row.maxy],
            "properties": dict(row.properties),
            "links": [dict(link) for link in row.links or []],
            "assets": {k: dict(v) for k, v in (row.assets or {}).items()},
        }

    def _row(
        self, session: Session, collection_id: str, item_id: str, visible: Collection[str] | None = None
    ) -> ItemRow:
        if visible is not None and collection_id not in visible:
            raise NotFoundError(f"no collection {collection_id!r} in the results catalogue")
        row = session.get(ItemRow, (collection_id, item_id))
        if row is None:
            if session.get(CollectionRow, collection_id) is None:
                raise NotFoundError(f"no collection {collection_id!r} in the results catalogue")
            raise NotFoundError(f"no item {item_id!r} in collection {collection_id!r}")
        return row

    def get_item(
        self, collection_id: str, item_id: str, visible: Collection[str] | None = None
    ) -> dict[str, Any]:
        """One Item as a STAC dict; NotFoundError when unknown or its collection
        is not in ``visible`` (when given)."""
        with self._session() as session:
            return self._item_dict(self._row(session, collection_id, item_id, visible))

    def asset_file(
        self, collection_id: str, item_id: str, asset_key: str, visible: Collection[str] | None = None
    ) -> tuple[Path, str | None]:
        """The local file behind an asset of an Item and its media type. Only
        the Item's own assets inside its product folder are ever returned."""
        with self._session() as session:
            row = self._row(session, collection_id, item_id, visible)
            asset = (row.assets or {}).get(asset_key)
            folder = Path(row.folder)
        if asset is None:
            raise NotFoundError(f"item {item_id!r} has no asset {asset_key!r}")
        href = str(asset.get("href", ""))
        path = (folder / href).resolve()
        if "://" in href or not path.is_relative_to(folder) or not path.is_file():
            raise NotFoundError(
                f"asset {asset_key!r} of item {item_id!r} is not a file of its product folder"
            )
        return path, asset.get("type")

    def asset_folder(self, collection_id: str, item_id: str) -> Path:
        """The product folder of an Item."""
        with self._session() as session:
            return Path(self._row(session, collection_id, item_id).folder)

    # -- search ------------------------------------------------------------------

    def search(
        self,
        bbox: Sequence[float] | str | None = None,
        intersects: dict[str, Any] | BaseGeometry | None = None,
        datetime: str | None = None,
        ids: Iterable[str] | None = None,
        collections: Iterable[str] | None = None,
        limit: int = 10,
        token: str | None = None,
        visible: Collection[str] | None = None,
    ) -> SearchResult:
        """Items matching every given filter, newest first (then by collection
        and id), ``limit`` at a time; pass the returned token for the next page.
        ``visible`` (access control) limits the search to those collections."""
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise InputError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        if bbox is not None and intersects is not None:
            raise InputError("give bbox or intersects, not both")
        box_values = parse_bbox(bbox)
        geom = _geometry(intersects) if intersects is not None else None
        boxes = bbox_boxes(*box_values) if box_values else ([geom.bounds] if geom is not None else [])
        if box_values:
            parts = [box(*b) for b in boxes]
            geom = parts[0] if len(parts) == 1 else parts[0].union(parts[1])
        interval = parse_datetime_range(datetime)

        conditions: list[Any] = []
        if ids is not None:
            conditions.append(ItemRow.id.in_(list(ids)))
        if collections is not None:
            conditions.append(ItemRow.collection_id.in_(list(collections)))
        if visible is not None:
            conditions.append(ItemRow.collection_id.in_(list(visible)))
        if interval is not None:
            start, end = interval
            if end is not None:
                conditions.append(ItemRow.start_datetime <= end)
            if start is not None:
                conditions.append(ItemRow.end_datetime >= start)
        if boxes:
            conditions.append(
                or_(
                    *(
                        and_(
                            ItemRow.minx <= b[2],
                            ItemRow.maxx >= b[0],
                            ItemRow.miny <= b[3],
                            ItemRow.maxy >= b[1],
                        )
                        for b in boxes
                    )
                )
            )
        order = (ItemRow.datetime.desc(), ItemRow.collection_id, ItemRow.id)
        after = _decode_token(token) if token else None
        try:
            with self._session() as session:
                if geom is None:
                    return self._search_sql(session, conditions, order, after, int(limit))
                return self._search_exact(session, conditions, order, after, int(limit), geom)
        except SQLAlchemyError as exc:
            raise database_error(f"search failed on {self.engine.url!r}", exc) from exc

    @staticmethod
    def _after(after: tuple[datetime, str, str]) -> Any:
        when, collection, item = after
        return or_(
            ItemRow.datetime < when,
            and_(ItemRow.datetime == when, tuple_(ItemRow.collection_id, ItemRow.id) > (collection, item)),
        )

    def _search_sql(
        self,
        session: Session,
        conditions: list[Any],
        order: tuple[Any, ...],
        after: tuple[datetime, str, str] | None,
        limit: int,
    ) -> SearchResult:
        matched = session.scalar(select(func.count()).select_from(ItemRow).where(*conditions)) or 0
        page_conditions = conditions + ([self._after(after)] if after else [])
        rows = session.scalars(
            select(ItemRow).where(*page_conditions).order_by(*order).limit(limit + 1)
        ).all()
        next_token = _encode_token(self._key(rows[limit - 1])) if len(rows) > limit else None
        return SearchResult([self._item_dict(r) for r in rows[:limit]], next_token, int(matched))

    def _search_exact(
        self,
        session: Session,
        conditions: list[Any],
        order: tuple[Any, ...],
        after: tuple[datetime, str, str] | None,
        limit: int,
        geom: BaseGeometry,
    ) -> SearchResult:
        candidates = session.execute(
            select(ItemRow.datetime, ItemRow.collection_id, ItemRow.id, ItemRow.geometry)
            .where(*conditions)
            .order_by(*order)
        ).all()
        keys = [(as_utc(r[0]), r[1], r[2]) for r in candidates if shape(r[3]).intersects(geom)]
        matched = len(keys)
        if after is not None:
            when, collection, item = after
            keys = [k for k in keys if k[0] < when or (k[0] == when and (k[1], k[2]) > (collection, item))]
        page = keys[:limit]
        rows = {(r.collection_id, r.id): r for r in self._rows(session, [(k[1], k[2]) for k in page])}
        items = [self._item_dict(rows[(k[1], k[2])]) for k in page if (k[1], k[2]) in rows]
        next_token = _encode_token(page[-1]) if len(keys) > limit else None
        return SearchResult(items, next_token, matched)

    @staticmethod
    def _rows(session: Session, keys: list[tuple[str, str]]) -> Sequence[ItemRow]:
        if not keys:
            return []
        return session.scalars(
            select(ItemRow).where(tuple_(ItemRow.collection_id, ItemRow.id).in_(keys))
        ).all()

    @staticmethod
    def _key(row: ItemRow) -> tuple[datetime, str, str]:
        return as_utc(row.datetime), row.collection_id, row.id

    # -- static export ------------------------------------------------------------

    def export_static(self, dest: str | Path, title: str = "eowatch results") -> Path:
        """Write a self-contained static STAC catalogue under ``dest``
        (catalog.json -> collections -> items, assets copied beside each Item)
        and check that pystac reads it back. Returns the path of catalog.json."""
        dest = Path(dest).resolve()
        dest.mkdir(parents=True, exist_ok=True)
        catalog = pystac.Catalog(id="eowatch-results", description=title, title=title)
        copies: list[tuple[pystac.Item, dict[str, Path]]] = []
        with self._session() as session:
            for coll in self.list_collections():
                collection = pystac.Collection.from_dict(
                    {**coll, "links": []}, preserve_dict=False, migrate=False
                )
                catalog.add_child(collection)
                rows = session.scalars(
                    select(ItemRow)
                    .where(ItemRow.collection_id == coll["id"])
                    .order_by(ItemRow.datetime, ItemRow.id)
                ).all()
                for row in rows:
                    data = self._item_dict(row)
                    data["links"] = [link for link in data["links"] if "://" in str(link.get("href", ""))]
                    sources: dict[str, Path] = {}
                    for key, asset in data["assets"].items():
                        href = str(asset.get("href", ""))
                        if "://" not in href:
                            sources[key] = (Path(row.folder) / href).resolve()
                            asset["href"] = sources[key].name
                    item = pystac.Item.from_dict(data, preserve_dict=False, migrate=False)
                    collection.add_item(item)
                    copies.append((item, sources))
        catalog.normalize_hrefs(str(dest))
        for item, sources in copies:
            item_dir = Path(item.get_self_href() or dest).parent
            item_dir.mkdir(parents=True, exist_ok=True)
            for key, source in sources.items():
                if not source.is_file():
                    raise CatalogError(f"asset {key!r} of item {item.id!r} is missing: {source}")
                shutil.copy2(source, item_dir / source.name)  # the asset href is already this name
        catalog.save(pystac.CatalogType.SELF_CONTAINED)
        root = dest / "catalog.json"
        loaded = pystac.Catalog.from_file(str(root))
        exported = sum(1 for _ in loaded.get_items(recursive=True))
        if exported != len(copies):
            raise CatalogError(f"static export at {dest} reads back {exported} items, expected {len(copies)}")
        return root
