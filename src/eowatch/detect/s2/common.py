"""What the Sentinel-2 presets share: the spectral parameters, the change classes and
the spectral classing of changed pixels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from ...kernels import classify
from ...kernels.morphology import region_majority
from ...kernels.thresholds import kittler_illingworth, otsu
from ...model import NO_CHANGE_CLASS, NO_DATA_CLASS, Scene
from ..base import PresetParams

__all__ = [
    "CLASSIFY_BANDS",
    "S2_CLASSES",
    "S2Params",
    "SpectralParams",
    "bands_of",
    "pair_of",
    "spectral_codes",
    "automatic_threshold",
    "regions_above",
    "CANDIDATE",
]

#: Bands the spectral change classes read.
CLASSIFY_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
S2_CLASSES = classify.SPECTRAL_CHANGE_CLASSES

#: (gain, offset) per band that bring the after date onto the before date.
Normalisation = Mapping[str, tuple[float, float]]


class S2Params(PresetParams):
    """Parameters every Sentinel-2 preset shares (read by the input rules, ``eowatch.inputs``)."""

    allow_mixed_levels: bool = Field(
        False,
        description="Compare an L1C (top-of-atmosphere) date with an L2A (surface) date; off by default "
        "because the atmosphere then shows up as change. Recorded in the product.",
    )


class SpectralParams(S2Params):
    bands: tuple[str, ...] = Field(
        ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"),
        description="Bands compared (20 m bands are resampled to the 10 m grid).",
    )

    @field_validator("bands", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return tuple(s.strip() for s in v.split(",")) if isinstance(v, str) else v


def pair_of(dates: Sequence[Scene]) -> tuple[Scene, Scene]:
    """The (before, after) scenes of a pair preset's window."""
    before, after = dates
    return before, after


def bands_of(scene: Scene) -> dict[str, NDArray[np.float32]]:
    return dict(zip(scene.bands, scene.data, strict=True))


def automatic_threshold(values: NDArray[np.floating], valid: NDArray[np.bool_] | None, method: str) -> float:
    return kittler_illingworth(values, valid) if method == "kittler-illingworth" else otsu(values, valid)


#: Window codes of the spectral presets: a changed (candidate) pixel is ``CANDIDATE`` plus
#: the support bits of the classes its spectra support (``classify.rule_support``); the
#: whole-map step (``regions_above``) turns them into classes. Never 255 (no data).
CANDIDATE = np.uint8(0x80)
_SUPPORT_BITS = np.uint8(0x3F)


def spectral_codes(
    before: Scene, after: Scene, changed: NDArray[np.bool_], normalise: Normalisation | None = None
) -> NDArray[np.uint8]:
    """Window codes of the changed pixels (``CANDIDATE`` and the classes their spectra
    support; no support when the bands needed for classes are not loaded),
    ``NO_CHANGE_CLASS`` elsewhere."""
    codes = np.where(changed, CANDIDATE, NO_CHANGE_CLASS).astype(np.uint8)
    if not all(b in before.bands for b in CLASSIFY_BANDS):
        return codes
    # Indices only where something changed: memory follows the change, not the tile.
    # One flat index list gathered from every band (a boolean mask per band rescans the whole window).
    at = np.flatnonzero(changed)
    b_px = {b: before.band(b).take(at) for b in CLASSIFY_BANDS}
    a_px = {b: after.band(b).take(at) for b in CLASSIFY_BANDS}
    for band, (gain, offset) in (normalise or {}).items():
        if band in a_px:
            a_px[band] = (a_px[band] - np.float32(offset)) / np.float32(gain)
    codes.ravel()[at] |= classify.rule_support_from_bands(b_px, a_px)
    return codes


def regions_above(
    codes: NDArray[np.uint8], statistic: NDArray[np.float32], threshold: float
) -> NDArray[np.uint8]:
    """Changed where the final statistic exceeds ``threshold``; each connected changed
    region takes the class most of its pixels have first (``classify.RULE_ORDER``), and
    keeps it only on the pixels whose spectra support it (``other change`` elsewhere), so
    that no region's class contradicts its own index values. ``codes``: window codes of
    ``spectral_codes``, turned into classes in place."""
    with np.errstate(invalid="ignore"):
        changed = statistic > threshold
    at = np.flatnonzero(changed)
    support = codes.ravel()[at] & _SUPPORT_BITS
    codes[~changed & (codes != NO_DATA_CLASS)] = NO_CHANGE_CLASS
    codes.ravel()[at] = classify.first_supported(support)
    classes = region_majority(codes, changed)
    kept = classify.supports(support, classes.ravel()[at])
    classes.ravel()[at[~kept]] = classify.OTHER_CHANGE
    return classes
