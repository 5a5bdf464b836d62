"""GDAL configuration: the one place that sets it (``gdal_env``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import rasterio

__all__ = ["gdal_env", "PRODUCT_CACHE_MB"]

#: GDAL block cache while writing products: COG copies read each block once or twice, so
#: 64 MB writes a full-tile statistic as fast as 256 MB (2.3 s), and the block cache is
#: process-wide: it adds to the region stage's memory while the statistic is written.
PRODUCT_CACHE_MB = 64


@contextmanager
def gdal_env(cache_mb: int, **options: Any) -> Iterator[None]:
    """GDAL configured for eowatch's reads and writes: a block cache of ``cache_mb``
    (GDAL's default, 5 % of RAM, would hold full-tile blocks read once) and ``options``."""
    with rasterio.Env(GDAL_CACHEMAX=cache_mb * 1024 * 1024, **options):
        yield
