"""Spectral classes of change from index differences (rule based).

Changed pixels (from any detector) are labelled with what changed, using the
indices of both dates. Rules, first match wins:

1. **water gain** - NDWI after > 0 and NDWI before <= 0; **water loss** - the
   reverse. NDWI > 0 marks open water (McFeeters 1996). Optionally both also
   need NIR reflectance < ``water_nir_max`` at the water date, because
   top-of-atmosphere NDWI exceeds 0 on some dark urban surfaces.
2. **burn scar** - dNBR = NBR before - NBR after > 0.27 (lower bound of
   "moderate-low severity", Key & Benson 2006, USGS FIREMON) with an NDVI loss
   (NDVI before - NDVI after > 0.1) and, when the red band (B04) is given,
   no brightening in red (rise < 0.03): char is dark, whereas new concrete or
   exposed soil, which also lowers NBR, brightens the visible bands.
3. **new bare/built surface** - the after date is not vegetated (NDVI < 0.2,
   the bare-soil limit of Sobrino et al. 2004) and NDBI (Zha et al. 2003) or
   BSI (Rikimaru et al. 2002) rose by more than 0.1.
4. **vegetation loss** / **vegetation gain** - NDVI fell / rose by at least
   0.2 (a common NDVI-differencing threshold, e.g. Lyon et al. 1998).
5. **other change** - anything else that the detector flagged.

Rules whose indices are missing (e.g. no SWIR band, so no NBR/NDBI/BSI) are
skipped. ``NO_CHANGE_CLASS`` (0) and ``NO_DATA_CLASS`` (255) are reserved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeClass
from .indices import INDEX_BANDS, compute_index

__all__ = [
    "VEGETATION_LOSS",
    "VEGETATION_GAIN",
    "WATER_GAIN",
    "WATER_LOSS",
    "NEW_BARE_BUILT",
    "BURN_SCAR",
    "OTHER_CHANGE",
    "SPECTRAL_CHANGE_CLASSES",
    "CLASS_TABLE",
    "ClassifyRules",
    "classify_change",
    "classify_change_from_bands",
    "class_name",
]

VEGETATION_LOSS = 1
VEGETATION_GAIN = 2
WATER_GAIN = 3
WATER_LOSS = 4
NEW_BARE_BUILT = 5
BURN_SCAR = 6
OTHER_CHANGE = 7

#: The change classes (1..7), their names and display colours.
SPECTRAL_CHANGE_CLASSES: tuple[ChangeClass, ...] = (
    ChangeClass(VEGETATION_LOSS, "vegetation loss", (230, 120, 20), "NDVI fell by >= 0.2"),
    ChangeClass(VEGETATION_GAIN, "vegetation gain", (40, 170, 60), "NDVI rose by >= 0.2"),
    ChangeClass(WATER_GAIN, "water gain", (30, 90, 220), "NDWI crossed 0 upwards (new open water)"),
    ChangeClass(WATER_LOSS, "water loss", (140, 200, 240), "NDWI crossed 0 downwards (water receded)"),
    ChangeClass(
        NEW_BARE_BUILT, "new bare/built surface", (220, 30, 30), "non-vegetated after, NDBI or BSI rose > 0.1"
    ),
    ChangeClass(BURN_SCAR, "burn scar", (90, 30, 10), "dNBR > 0.27 with NDVI loss"),
    ChangeClass(OTHER_CHANGE, "other change", (200, 0, 200), "changed, no spectral rule matched"),
)

#: Every value of a classified change map, including no change (0) and no data (255).
CLASS_TABLE: tuple[ChangeClass, ...] = (
    (ChangeClass(NO_CHANGE_CLASS, "no change", (0, 0, 0), "valid, not changed"),)
    + SPECTRAL_CHANGE_CLASSES
    + (ChangeClass(NO_DATA_CLASS, "no data", (255, 255, 255), "no valid observation at either date"),)
)


def class_name(value: int) -> str:
    """Name of a class value of :data:`CLASS_TABLE`."""
    for c in CLASS_TABLE:
        if c.value == value:
            return c.name
    raise KeyError(f"no change class with value {value}; known: {[c.value for c in CLASS_TABLE]}")


@dataclass(frozen=True)
class ClassifyRules:
    """Thresholds of the rules (see the module docstring for their sources)."""

    water_ndwi: float = 0.0
    water_nir_max: float | None = None
    burn_dnbr: float = 0.27
    burn_ndvi_loss: float = 0.1
    burn_red_rise_max: float = 0.03
    bare_ndvi_max: float = 0.2
    bare_index_rise: float = 0.1
    vegetation_dndvi: float = 0.2


def _get(m: Mapping[str, ArrayLike], key: str) -> NDArray[np.float64] | None:
    v = m.get(key)
    return None if v is None else np.asarray(v, dtype=np.float64)


def classify_change(
    changed: NDArray[np.bool_],
    before: Mapping[str, ArrayLike],
    after: Mapping[str, ArrayLike],
    valid: NDArray[np.bool_] | None = None,
    rules: ClassifyRules | None = None,
) -> NDArray[np.uint8]:
    """Label changed pixels with a spectral change class.

    ``before``/``after`` map index names (``ndvi``, ``ndwi``, ``nbr``, ``ndbi``,
    ``bsi``; any subset) and optionally band reflectances (``B04`` for the burn
    rule, ``B08`` for ``rules.water_nir_max``) to arrays shaped like
    ``changed``. Returns uint8: 0 unchanged, 255 where ``valid`` is false,
    else 1..7.
    """
    r = rules or ClassifyRules()
    ch = np.asarray(changed, dtype=bool)
    out = np.full(ch.shape, NO_CHANGE_CLASS, dtype=np.uint8)
    todo = ch.copy()
    if valid is not None:
        todo &= np.asarray(valid, dtype=bool)

    def assign(cond: NDArray[np.bool_], code: int) -> None:
        hit = todo & cond
        out[hit] = code
        todo[hit] = False

    with np.errstate(invalid="ignore"):
        w0, w1 = _get(before, "ndwi"), _get(after, "ndwi")
        if w0 is not None and w1 is not None:
            wet0, wet1 = w0 > r.water_ndwi, w1 > r.water_ndwi
            nir0, nir1 = _get(before, "B08"), _get(after, "B08")
            if r.water_nir_max is not None and nir0 is not None and nir1 is not None:
                wet0 &= nir0 < r.water_nir_max
                wet1 &= nir1 < r.water_nir_max
            assign(wet1 & ~wet0 & np.isfinite(w0), WATER_GAIN)
            assign(wet0 & ~wet1 & np.isfinite(w1), WATER_LOSS)
        v0, v1 = _get(before, "ndvi"), _get(after, "ndvi")
        dndvi = None if v0 is None or v1 is None else v1 - v0
        n0, n1 = _get(before, "nbr"), _get(after, "nbr")
        if n0 is not None and n1 is not None and dndvi is not None:
            burn = ((n0 - n1) > r.burn_dnbr) & (-dndvi > r.burn_ndvi_loss)
            red0, red1 = _get(before, "B04"), _get(after, "B04")
            if red0 is not None and red1 is not None:
                burn &= (red1 - red0) < r.burn_red_rise_max
            assign(burn, BURN_SCAR)
        if v1 is not None:
            rise = np.zeros(ch.shape, dtype=bool)
            for name in ("ndbi", "bsi"):
                a, b = _get(before, name), _get(after, name)
                if a is not None and b is not None:
                    rise |= (b - a) > r.bare_index_rise
            assign(rise & (v1 < r.bare_ndvi_max), NEW_BARE_BUILT)
        if dndvi is not None:
            assign(dndvi <= -r.vegetation_dndvi, VEGETATION_LOSS)
            assign(dndvi >= r.vegetation_dndvi, VEGETATION_GAIN)
    out[todo] = OTHER_CHANGE
    if valid is not None:
        out[~np.asarray(valid, dtype=bool)] = NO_DATA_CLASS
    return out


def classify_change_from_bands(
    changed: NDArray[np.bool_],
    bands_before: Mapping[str, ArrayLike],
    bands_after: Mapping[str, ArrayLike],
    valid: NDArray[np.bool_] | None = None,
    rules: ClassifyRules | None = None,
) -> NDArray[np.uint8]:
    """:func:`classify_change` from Sentinel-2 bands (name -> reflectance) of both dates.

    Every index whose bands are present at both dates is computed; rules
    needing an absent index are skipped.
    """
    idx_b: dict[str, ArrayLike] = {k: bands_before[k] for k in ("B04", "B08") if k in bands_before}
    idx_a: dict[str, ArrayLike] = {k: bands_after[k] for k in ("B04", "B08") if k in bands_after}
    for name, need in INDEX_BANDS.items():
        if all(b in bands_before and b in bands_after for b in need):
            idx_b[name] = compute_index(name, bands_before)
            idx_a[name] = compute_index(name, bands_after)
    return classify_change(changed, idx_b, idx_a, valid, rules)
