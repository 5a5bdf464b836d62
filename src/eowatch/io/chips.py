"""Image chips: a square cut of an 8-bit image COG around a box, as PNG (the report of
confirmed changes, ``eowatch.results.report``)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.warp import transform_bounds
from rasterio.windows import Window

__all__ = ["chip_png"]


def chip_png(path: Path, bbox: tuple[float, float, float, float], min_px: int, max_px: int) -> bytes | None:
    """A square RGBA PNG of the 8-bit raster at ``path`` (1 or 3 bands, 0 = no data)
    around ``bbox`` (WGS 84): twice the box's larger side, ``min_px`` to ``max_px``
    pixels, centred on it (clipped to its centre when larger); None when all no data."""
    with rasterio.open(path) as src:
        left, bottom, right, top = transform_bounds("EPSG:4326", src.crs, *bbox)
        inverse = ~src.transform
        col0, row0 = inverse @ (left, top)
        col1, row1 = inverse @ (right, bottom)
        size = int(np.clip(max(abs(col1 - col0), abs(row1 - row0)) * 2.0, min_px, max_px))
        centre_col, centre_row = (col0 + col1) / 2, (row0 + row1) / 2
        col, row = round(centre_col - size / 2), round(centre_row - size / 2)
        data = np.zeros((src.count, size, size), dtype=np.uint8)  # 0 = no data, outside too
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + size, src.width), min(row + size, src.height)
        if c1 > c0 and r1 > r0:
            inside = src.read(window=Window(c0, r0, c1 - c0, r1 - r0))
            data[:, r0 - row : r1 - row, c0 - col : c1 - col] = inside
    if not data.any():
        return None
    rgb = np.repeat(data, 3, axis=0) if data.shape[0] == 1 else data[:3]
    alpha = np.where(data.any(axis=0), 255, 0).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(np.dstack([*rgb, alpha])).save(out, format="PNG")
    return out.getvalue()
