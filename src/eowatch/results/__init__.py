"""The results catalogue: product runs as STAC Items in a database, searchable
and exportable as a static STAC catalogue."""

from __future__ import annotations

from .catalog import STAC_VERSION, ResultsCatalog, SearchResult, parse_bbox, parse_datetime_range

__all__ = ["ResultsCatalog", "SearchResult", "STAC_VERSION", "parse_bbox", "parse_datetime_range"]
