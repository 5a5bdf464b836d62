"""A local catalogue: a folder of STAC Items and/or rasters, indexed into SQLite.

What is indexed under the root folder:

* STAC Item JSON files (``*.json``): one Item, a FeatureCollection or a JSON
  list of Items; asset hrefs are resolved against the file;
* raster scenes: a folder of single-band files named by band (``*_B04.tif``,
  ``*_vv.tif``; one folder per date, as ``eowatch detect`` reads them) or one
  multi-band raster whose band descriptions name the bands. Their footprint
  comes from the raster bounds, their date from the names (or an OSCD
  ``dates.txt``), their MGRS tile from ``T31UDQ``-like names.

The index (stdlib ``sqlite3``, one table) keeps footprint bbox, datetime,
collection, sensor and the Item JSON; it is refreshed incrementally (only new
or modified files are read again, vanished ones are dropped) before each
search. Search takes the same ``SearchQuery`` as the remote providers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import pystac
from shapely.geometry import box, mapping

from ..errors import EowatchError, InputError, ProviderError
from ..io.load import reference_grid, reproject_bounds
from ..io.sources import Acquisition, resolve_input
from ..settings import Settings
from .providers import Record, SearchQuery, SearchResults, record_from_item, register_provider, rejection

__all__ = ["LocalCatalog", "IndexReport", "local_catalog", "DB_NAME"]

log = logging.getLogger(__name__)

#: Default name of the index file, written in the catalogue root.
DB_NAME = ".eowatch-catalog.sqlite"
_RASTER_SUFFIXES = {".tif", ".tiff", ".jp2", ".vrt", ".img"}
_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})")
_TILE = re.compile(r"(?:^|[_\-.])T(\d{2}[C-X][A-Z]{2})(?:[_\-.]|$)")
_DT_FMT = "%Y-%m-%dT%H:%M:%S.%fZ"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,          -- source path, '#<n>' for items inside a collection file
    source TEXT NOT NULL,          -- the JSON file, raster folder or raster file
    kind TEXT NOT NULL,            -- 'stac' or 'raster'
    mtime REAL NOT NULL,
    id TEXT NOT NULL,
    collection TEXT NOT NULL,
    sensor TEXT NOT NULL,
    datetime TEXT NOT NULL,        -- UTC, fixed-width ISO 8601: sorts and compares as text
    minx REAL NOT NULL, miny REAL NOT NULL, maxx REAL NOT NULL, maxy REAL NOT NULL,
    item TEXT NOT NULL             -- the STAC Item JSON (generated for raster scenes)
);
CREATE INDEX IF NOT EXISTS entries_time ON entries (sensor, datetime);
CREATE TABLE IF NOT EXISTS skipped (source TEXT PRIMARY KEY, mtime REAL NOT NULL, reason TEXT NOT NULL);
"""


@dataclass
class IndexReport:
    """What one indexing pass did."""

    added: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: dict[str, str] = field(default_factory=dict)


class LocalCatalog:
    """Search a folder of STAC Items and rasters through a SQLite index."""

    def __init__(self, root: str | Path, db_path: str | Path | None = None, *, name: str = "local") -> None:
        self.name = name
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ProviderError(
                f"local catalogue {self.root} is not a folder; set local_catalog_path to a folder of "
                "STAC Items or band rasters"
            )
        self.db_path = str(db_path) if db_path is not None else str(self.root / DB_NAME)

    def __repr__(self) -> str:
        return f"LocalCatalog(root={str(self.root)!r}, db_path={self.db_path!r})"

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.db_path)
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise ProviderError(
                f"local catalogue: cannot open the index {self.db_path}: {exc}; "
                "set local_catalog_db to a writable file"
            ) from exc
        return conn

    # -- indexing --------------------------------------------------------------

    def _sources(self) -> Iterator[tuple[str, Path]]:
        """('stac', json file) and ('raster', folder or file) under the root."""
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            here = Path(folder)
            rasters = sorted(here / f for f in files if Path(f).suffix.lower() in _RASTER_SUFFIXES)
            for f in sorted(files):
                if f.lower().endswith((".json", ".geojson")) and not f.startswith("."):
                    yield "stac", here / f
            if rasters:
                try:
                    resolve_input(here)
                    yield "raster", here
                except EowatchError:
                    yield from (("raster", r) for r in rasters)

    def index(self) -> IndexReport:
        """Bring the index up to date with the folder."""
        report = IndexReport()
        conn = self._connect()
        try:
            with conn:
                known = {row[0]: row[1] for row in conn.execute("SELECT DISTINCT source, mtime FROM entries")}
                known |= {row[0]: row[1] for row in conn.execute("SELECT source, mtime FROM skipped")}
                present: set[str] = set()
                for kind, path in self._sources():
                    source = str(path)
                    present.add(source)
                    mtime = _mtime(path)
                    if known.get(source) == mtime:
                        report.unchanged += 1
                        continue
                    conn.execute("DELETE FROM entries WHERE source = ?", (source,))
                    conn.execute("DELETE FROM skipped WHERE source = ?", (source,))
                    try:
                        rows = list(self._read_stac(path) if kind == "stac" else [self._read_raster(path)])
                    except Exception as exc:  # any unreadable source is reported, never fatal
                        rows, reason = [], f"{type(exc).__name__}: {exc}"
                        report.skipped[source] = reason
                        conn.execute(
                            "INSERT OR REPLACE INTO skipped VALUES (?, ?, ?)", (source, mtime, reason)
                        )
                    for i, (sensor, item) in enumerate(rows):
                        conn.execute(
                            "INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                            (f"{source}#{i}", source, kind, mtime, item["id"], item.get("collection") or "",
                             sensor, item["properties"]["datetime"], *item["bbox"], json.dumps(item)),
                        )  # fmt: skip
                        report.added += 1
                gone = [s for s in known if s not in present]
                for source in gone:
                    report.removed += conn.execute("DELETE FROM entries WHERE source = ?", (source,)).rowcount
                    conn.execute("DELETE FROM skipped WHERE source = ?", (source,))
        finally:
            conn.close()
        if report.skipped:
            log.info("local catalogue: %d source(s) not indexed: %s", len(report.skipped), report.skipped)
        return report

    def _read_stac(self, path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("type") == "FeatureCollection":
            features = data.get("features") or []
        elif isinstance(data, list):
            features = data
        elif isinstance(data, dict) and data.get("type") == "Feature":
            features = [data]
        else:
            raise InputError("not a STAC Item, FeatureCollection or list of Items")
        for feature in features:
            item = pystac.Item.from_dict(feature, preserve_dict=True, migrate=False)
            item.set_self_href(str(path))  # relative asset hrefs resolve against the file
            record = record_from_item(item, self.name)
            stored = item.to_dict(include_self_link=False, transform_hrefs=False)
            for key, asset in item.assets.items():
                stored["assets"][key]["href"] = asset.get_absolute_href() or asset.href
            stored["bbox"] = list(record.footprint.bounds)
            stored["properties"]["datetime"] = record.datetime.astimezone(UTC).strftime(_DT_FMT)
            stored["collection"] = item.collection_id or ""
            yield record.sensor, stored

    def _read_raster(self, path: Path) -> tuple[str, dict[str, Any]]:
        acq = resolve_input(path)
        if acq.datetime is None:
            raise InputError(f"no date in the names under {path} (expected e.g. 20240419 in a file name)")
        grid = reference_grid(acq)
        bounds = reproject_bounds(grid.crs, "EPSG:4326", grid.bounds)
        props: dict[str, Any] = dict(acq.properties)
        hrefs = " ".join(a.href for a in acq.assets.values())
        if acq.sensor == "sentinel-2" and (m := _TILE.search(hrefs.replace("/", "_"))):
            props["s2:mgrs_tile"] = m.group(1)
        props["datetime"] = acq.datetime.astimezone(UTC).strftime(_DT_FMT)
        props["eowatch:source"] = str(path)
        level = str(props.get("processing:level", "")).lower()
        collection = f"local-{acq.sensor}" + (f"-{level}" if level else "")
        item = {
            "type": "Feature", "stac_version": "1.0.0", "id": acq.id, "collection": collection,
            "geometry": mapping(box(*bounds)), "bbox": list(bounds), "properties": props,
            "assets": {k: {"href": a.href, "roles": ["data"]} for k, a in acq.assets.items()}, "links": [],
        }  # fmt: skip
        return acq.sensor, item

    # -- searching -------------------------------------------------------------

    def search(self, query: SearchQuery) -> SearchResults:
        """Records matching ``query`` (newest first, at most ``query.limit``)."""
        self.index()
        minx, miny, maxx, maxy = query.aoi.bounds
        sql = ("SELECT kind, source, collection, item FROM entries WHERE sensor = ? AND datetime >= ? "
               "AND datetime <= ? AND maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?")  # fmt: skip
        args: list[Any] = [query.sensor, query.start.strftime(_DT_FMT), query.end.strftime(_DT_FMT),
                           minx, maxx, miny, maxy]  # fmt: skip
        if query.collections:
            sql += f" AND collection IN ({','.join('?' * len(query.collections))})"
            args += list(query.collections)
        sql += " ORDER BY datetime DESC"
        conn = self._connect()
        try:
            rows = conn.execute(sql, args).fetchall()
        finally:
            conn.close()
        results = SearchResults(provider=self.name, pages=1)
        for kind, source, _collection, text in rows:
            try:
                record = self._record(kind, source, json.loads(text))
            except (EowatchError, OSError, ValueError, KeyError) as exc:
                results.skipped += 1
                results.notes.append(f"skipped {source}: {exc}")
                continue
            if rejection(query, record) is None:
                results.append(record)
                if len(results) >= query.limit:
                    break
        return results

    def _record(self, kind: str, source: str, item_dict: dict[str, Any]) -> Record:
        item = pystac.Item.from_dict(item_dict, preserve_dict=True, migrate=False)
        if kind == "stac":
            return record_from_item(item, self.name, href=source)
        acq: Acquisition = resolve_input(source)
        acq.properties = {**acq.properties, **item.properties}
        acq.datetime = item.datetime
        return Record(acq, box(*item_dict["bbox"]), item.collection_id or "", self.name, item_dict)


def _mtime(path: Path) -> float:
    """Latest modification time of a file, or of a folder and the rasters in it."""
    if path.is_file():
        return path.stat().st_mtime
    times = [path.stat().st_mtime] + [p.stat().st_mtime for p in path.iterdir() if p.is_file()]
    return max(times)


def local_catalog(settings: Settings) -> LocalCatalog:
    """The local catalogue at ``settings.local_catalog_path`` (index at ``local_catalog_db``,
    default ``<folder>/.eowatch-catalog.sqlite``)."""
    root = settings.local_catalog_path
    if not root:
        raise InputError("provider 'local' needs a folder: set EOWATCH_LOCAL_CATALOG_PATH")
    return LocalCatalog(root, settings.local_catalog_db)


register_provider("local", local_catalog)
