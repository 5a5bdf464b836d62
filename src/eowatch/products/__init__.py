"""The product set of one run: COGs, polygons, quicklook and a STAC Item, written into
one folder atomically from the run's record (``registry`` says what files a run produces)."""

from __future__ import annotations

from .folder import ProductFolder, Products
from .item import build_item
from .registry import WRITERS, AssetSpec, ProductOptions, assets_for, assets_of

__all__ = ["ProductFolder", "Products", "ProductOptions", "AssetSpec", "WRITERS", "assets_for", "assets_of",
           "build_item"]  # fmt: skip
