"""Spectral classes of change from index differences (rule based).

Changed pixels (from any detector) are labelled with what changed, using the
indices of both dates. Rules, first match wins:

1. **water gain** - water after, NDWI <= 0 before; **water loss** - the reverse.
   Water is NDWI > 0 (open water, McFeeters 1996) with SWIR1 (B11) reflectance
   below ``water_swir_max`` = 0.05: water absorbs short-wave infrared, whereas
   dark urban surfaces, building shadows and wet soil, whose top-of-atmosphere
   NDWI also exceeds 0, reflect 0.05-0.15 there (on the 8 OSCD cities NDWI > 0
   alone called 20 % of Paris water; with the SWIR test 2 %).
2. **burn scar** - dNBR = NBR before - NBR after > 0.27 (lower bound of
   "moderate-low severity", Key & Benson 2006, USGS FIREMON) with an NDVI loss
   (NDVI before - NDVI after > 0.1) and, when the red band (B04) is given,
   no brightening in red (rise < 0.03): char is dark, whereas new concrete or
   exposed soil, which also lowers NBR, brightens the visible bands.
3. **new bare/built surface** - the after date is not vegetated (NDVI < 0.2,
   the bare-soil limit of Sobrino et al. 2004) and NDBI (Zha et al. 2003) and
   BSI (Rikimaru et al. 2002) rose by more than 0.1 on average.
4. **vegetation loss** / **vegetation gain** - NDVI fell / rose by at least
   0.2 (a common NDVI-differencing threshold, e.g. Lyon et al. 1998).
5. **other change** - anything else that the detector flagged.

Every rule is a conjunction of linear thresholds on a few terms of the index
values (``rule_terms``), so it can be checked on a region's mean terms
(``support_of_terms``: the presets keep a region's class only when they hold),
and a region whose pixels all satisfy it satisfies it on its means too.

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
    "RULE_ORDER",
    "RULE_TERMS",
    "rule_terms",
    "support_of_terms",
    "rule_support",
    "first_supported",
    "burn_rule",
    "supports",
    "support_bit",
    "classify_change",
    "classify_change_from_bands",
    "rule_support_from_bands",
    "indices_of",
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
    ChangeClass(
        WATER_GAIN, "water gain", (30, 90, 220), "water (NDWI > 0, B11 < 0.05) after, NDWI <= 0 before"
    ),
    ChangeClass(
        WATER_LOSS, "water loss", (140, 200, 240), "water (NDWI > 0, B11 < 0.05) before, NDWI <= 0 after"
    ),
    ChangeClass(
        NEW_BARE_BUILT,
        "new bare/built surface",
        (220, 30, 30),
        "non-vegetated after, NDBI and BSI rose > 0.1 on average",
    ),
    ChangeClass(BURN_SCAR, "burn scar", (90, 30, 10), "dNBR > 0.27, NDVI fell > 0.1, red rose < 0.03"),
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
    water_swir_max: float | None = 0.05
    burn_dnbr: float = 0.27
    burn_ndvi_loss: float = 0.1
    burn_red_rise_max: float = 0.03
    bare_ndvi_max: float = 0.2
    bare_index_rise: float = 0.1
    vegetation_dndvi: float = 0.2


def _get(m: Mapping[str, ArrayLike], key: str) -> NDArray[np.float64] | None:
    v = m.get(key)
    return None if v is None else np.asarray(v, dtype=np.float64)


#: Bands the rules read directly (red for burn scars, SWIR1 for water).
_RULE_BANDS = ("B04", "B11")
#: Classes with a spectral rule, in the order the rules are tried (first match wins).
RULE_ORDER = (WATER_GAIN, WATER_LOSS, BURN_SCAR, NEW_BARE_BUILT, VEGETATION_LOSS, VEGETATION_GAIN)


def support_bit(code: int) -> int:
    """The bit of class ``code`` in a :func:`rule_support` mask."""
    return 1 << (code - 1)


#: The linear terms every rule is written in (``rule_terms``): a region's mean terms are
#: the terms of its mean index values, so the rules can be checked on regions too.
RULE_TERMS = (
    "ndwi_before", "ndwi_after", "swir_before", "swir_after",
    "dnbr", "dndvi", "ndvi_after", "dred", "bare_rise",
)  # fmt: skip


def rule_terms(
    before: Mapping[str, ArrayLike], after: Mapping[str, ArrayLike]
) -> dict[str, NDArray[np.float64]]:
    """The terms of the rules from index values (and B04, B11) of both dates; NaN
    where an index or band is missing (a rule needing it then never holds, an optional
    limit on it is skipped)."""
    shape = next(np.shape(v) for v in (*before.values(), *after.values()))
    missing = np.full(shape, np.nan)

    def get(m: Mapping[str, ArrayLike], key: str) -> NDArray[np.float64]:
        v = _get(m, key)
        return missing if v is None else v

    rises = [get(after, k) - get(before, k) for k in ("ndbi", "bsi") if k in before and k in after]
    return {
        "ndwi_before": get(before, "ndwi"),
        "ndwi_after": get(after, "ndwi"),
        "swir_before": get(before, "B11"),
        "swir_after": get(after, "B11"),
        "dnbr": get(before, "nbr") - get(after, "nbr"),
        "dndvi": get(after, "ndvi") - get(before, "ndvi"),
        "ndvi_after": get(after, "ndvi"),
        "dred": get(after, "B04") - get(before, "B04"),
        "bare_rise": np.mean(rises, axis=0) if rises else missing,
    }


def rule_support(
    before: Mapping[str, ArrayLike], after: Mapping[str, ArrayLike], rules: ClassifyRules | None = None
) -> NDArray[np.uint8]:
    """Which classes the spectra of both dates support, per pixel: bit ``support_bit(c)``
    is set where the rule of class ``c`` holds (every rule, not only the first match)."""
    return support_of_terms(rule_terms(before, after), rules)


def support_of_terms(
    terms: Mapping[str, NDArray[np.floating]], rules: ClassifyRules | None = None, margin: float = 0.0
) -> NDArray[np.uint8]:
    """:func:`rule_support` from rule terms (per pixel, or a region's mean terms), each
    threshold passed by at least ``margin`` (slack for the rounding of stored terms)."""
    r = rules or ClassifyRules()
    m = margin
    t = {k: np.asarray(v, dtype=np.float64) for k, v in terms.items()}
    out = np.zeros(t["dnbr"].shape, dtype=np.uint8)

    def mark(cond: NDArray[np.bool_], code: int) -> None:
        out[cond] |= np.uint8(support_bit(code))

    def below(x: NDArray[np.float64], limit: float | None) -> NDArray[np.bool_]:
        """An optional upper limit: holds where it is unset or ``x`` unknown (NaN)."""
        held: NDArray[np.bool_] = np.ones(x.shape, dtype=bool) if limit is None else ~(x >= limit - m)
        return held

    with np.errstate(invalid="ignore"):
        wet0 = (t["ndwi_before"] > r.water_ndwi + m) & below(t["swir_before"], r.water_swir_max)
        wet1 = (t["ndwi_after"] > r.water_ndwi + m) & below(t["swir_after"], r.water_swir_max)
        # "Not water" is NDWI at or below the threshold alone: one linear condition, so the
        # rule stays a conjunction (a pixel whose SWIR rose over still water, e.g. under
        # haze, is no water loss).
        mark(wet1 & (t["ndwi_before"] <= r.water_ndwi - m), WATER_GAIN)
        mark(wet0 & (t["ndwi_after"] <= r.water_ndwi - m), WATER_LOSS)
        mark(burn_rule(t, r, m), BURN_SCAR)
        # The mean rise of NDBI and BSI, not either: a linear rule holds on a region's mean
        # terms when it holds on each of its pixels.
        bare = (t["bare_rise"] > r.bare_index_rise + m) & (t["ndvi_after"] < r.bare_ndvi_max - m)
        mark(bare, NEW_BARE_BUILT)
        mark(t["dndvi"] <= -r.vegetation_dndvi - m, VEGETATION_LOSS)
        mark(t["dndvi"] >= r.vegetation_dndvi + m, VEGETATION_GAIN)
    return out


def burn_rule(
    terms: Mapping[str, NDArray[np.floating]], rules: ClassifyRules, margin: float = 0.0
) -> NDArray[np.bool_]:
    """Burnt: dNBR above the threshold with an NDVI loss and, where red is known (``dred``
    not NaN), no brightening in red (char is dark; new concrete or bare soil brightens)."""
    m = margin
    with np.errstate(invalid="ignore"):
        burnt: NDArray[np.bool_] = (
            (np.asarray(terms["dnbr"]) > rules.burn_dnbr + m)
            & (-np.asarray(terms["dndvi"]) > rules.burn_ndvi_loss + m)
            & ~(np.asarray(terms["dred"]) >= rules.burn_red_rise_max - m)
        )
    return burnt


def first_supported(support: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The first class of :data:`RULE_ORDER` each pixel supports; ``OTHER_CHANGE`` where none."""
    out = np.full(support.shape, OTHER_CHANGE, dtype=np.uint8)
    todo = np.ones(support.shape, dtype=bool)
    for code in RULE_ORDER:
        hit = todo & ((support & np.uint8(support_bit(code))) != 0)
        out[hit] = code
        todo &= ~hit
    return out


def supports(support: NDArray[np.uint8], classes: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Whether each pixel's spectra support its class (``OTHER_CHANGE`` always holds)."""
    bits = np.left_shift(np.uint8(1), np.maximum(classes, 1) - np.uint8(1), dtype=np.uint8)
    held: NDArray[np.bool_] = (classes == OTHER_CHANGE) | ((support & bits) != 0)
    return held


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
    rule, ``B11`` for the water rule) to arrays shaped like
    ``changed``. Returns uint8: 0 unchanged, 255 where ``valid`` is false,
    else 1..7.
    """
    ch = np.asarray(changed, dtype=bool)
    out = np.where(ch, first_supported(rule_support(before, after, rules)), NO_CHANGE_CLASS).astype(np.uint8)
    if valid is not None:
        out[~np.asarray(valid, dtype=bool)] = NO_DATA_CLASS
    return out


def indices_of(
    bands_before: Mapping[str, ArrayLike], bands_after: Mapping[str, ArrayLike]
) -> tuple[dict[str, ArrayLike], dict[str, ArrayLike]]:
    """Every index whose bands both dates have, and the bands the rules read (B04, B11)."""
    idx_b: dict[str, ArrayLike] = {k: bands_before[k] for k in _RULE_BANDS if k in bands_before}
    idx_a: dict[str, ArrayLike] = {k: bands_after[k] for k in _RULE_BANDS if k in bands_after}
    for name, need in INDEX_BANDS.items():
        if all(b in bands_before and b in bands_after for b in need):
            idx_b[name] = compute_index(name, bands_before)
            idx_a[name] = compute_index(name, bands_after)
    return idx_b, idx_a


def classify_change_from_bands(
    changed: NDArray[np.bool_],
    bands_before: Mapping[str, ArrayLike],
    bands_after: Mapping[str, ArrayLike],
    valid: NDArray[np.bool_] | None = None,
    rules: ClassifyRules | None = None,
) -> NDArray[np.uint8]:
    """:func:`classify_change` from Sentinel-2 bands (name -> reflectance) of both dates;
    rules needing an index whose bands are absent are skipped."""
    return classify_change(changed, *indices_of(bands_before, bands_after), valid, rules)


def rule_support_from_bands(
    bands_before: Mapping[str, ArrayLike],
    bands_after: Mapping[str, ArrayLike],
    rules: ClassifyRules | None = None,
) -> NDArray[np.uint8]:
    """:func:`rule_support` from Sentinel-2 bands of both dates."""
    return rule_support(*indices_of(bands_before, bands_after), rules)
