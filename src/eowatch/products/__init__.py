"""The product set of one run: COGs, polygons, quicklook and a STAC Item,
written into one folder atomically."""

from __future__ import annotations

from .folder import PRODUCT_FILES, write_products
from .item import build_item

__all__ = ["PRODUCT_FILES", "write_products", "build_item"]
