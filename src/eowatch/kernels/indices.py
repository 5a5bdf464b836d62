"""Spectral indices of Sentinel-2 reflectance.

Every index is a function of single-band reflectance arrays (any shape, float
in reflectance units, DN/10000) and returns float32 with NaN where it is
undefined (a denominator of zero, or a NaN input).

``INDEX_BANDS`` names the Sentinel-2 bands each index needs, in the order the
function takes them, so callers can look the bands up by name:

>>> compute_index("ndvi", {"B08": nir, "B04": red})  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "normalized_difference",
    "ndvi",
    "ndwi",
    "ndbi",
    "nbr",
    "bsi",
    "INDEX_BANDS",
    "INDEX_FUNCTIONS",
    "compute_index",
]

FloatArray = NDArray[np.float32]


def normalized_difference(a: ArrayLike, b: ArrayLike) -> FloatArray:
    """(a - b) / (a + b), float32, NaN where a + b == 0 or an input is NaN."""
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    num = a64 - b64
    den = a64 + b64
    out = np.full(np.broadcast(a64, b64).shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out.astype(np.float32)


def ndvi(nir: ArrayLike, red: ArrayLike) -> FloatArray:
    """Normalised difference vegetation index (Rouse et al. 1974): (NIR - red) / (NIR + red)."""
    return normalized_difference(nir, red)


def ndwi(green: ArrayLike, nir: ArrayLike) -> FloatArray:
    """Normalised difference water index (McFeeters 1996): (green - NIR) / (green + NIR)."""
    return normalized_difference(green, nir)


def ndbi(swir1: ArrayLike, nir: ArrayLike) -> FloatArray:
    """Normalised difference built-up index (Zha et al. 2003): (SWIR1 - NIR) / (SWIR1 + NIR)."""
    return normalized_difference(swir1, nir)


def nbr(nir: ArrayLike, swir2: ArrayLike) -> FloatArray:
    """Normalised burn ratio (Key & Benson 2006): (NIR - SWIR2) / (NIR + SWIR2)."""
    return normalized_difference(nir, swir2)


def bsi(blue: ArrayLike, red: ArrayLike, nir: ArrayLike, swir1: ArrayLike) -> FloatArray:
    """Bare soil index (Rikimaru et al. 2002):
    ((SWIR1 + red) - (NIR + blue)) / ((SWIR1 + red) + (NIR + blue))."""
    r = np.asarray(red, dtype=np.float64)
    s = np.asarray(swir1, dtype=np.float64)
    n = np.asarray(nir, dtype=np.float64)
    bl = np.asarray(blue, dtype=np.float64)
    return normalized_difference(s + r, n + bl)


#: Sentinel-2 band names each index needs, in the order its function takes them.
INDEX_BANDS: dict[str, tuple[str, ...]] = {
    "ndvi": ("B08", "B04"),
    "ndwi": ("B03", "B08"),
    "ndbi": ("B11", "B08"),
    "nbr": ("B08", "B12"),
    "bsi": ("B02", "B04", "B08", "B11"),
}

#: Index name -> function.
INDEX_FUNCTIONS: dict[str, Callable[..., FloatArray]] = {
    "ndvi": ndvi,
    "ndwi": ndwi,
    "ndbi": ndbi,
    "nbr": nbr,
    "bsi": bsi,
}


def compute_index(name: str, bands: Mapping[str, ArrayLike]) -> FloatArray:
    """Compute index ``name`` from a mapping of Sentinel-2 band name -> reflectance array.

    Raises ``KeyError`` for an unknown index and
    :class:`eowatch.errors.MissingBandError` when a required band is absent.
    """
    key = name.lower()
    if key not in INDEX_BANDS:
        raise KeyError(f"unknown index {name!r}; known indices: {sorted(INDEX_BANDS)}")
    needed = INDEX_BANDS[key]
    missing = [b for b in needed if b not in bands]
    if missing:
        from ..errors import MissingBandError

        raise MissingBandError(
            f"index {key!r} needs bands {list(needed)}; missing {missing} (have {sorted(bands)})"
        )
    return INDEX_FUNCTIONS[key](*(bands[b] for b in needed))
