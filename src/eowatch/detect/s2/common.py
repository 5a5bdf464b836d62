"""What the Sentinel-2 presets share: the spectral parameters, the change classes and
the spectral classing of changed pixels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from ...kernels import classify
from ...kernels.labels import components
from ...kernels.thresholds import kittler_illingworth, otsu
from ...model import NO_CHANGE_CLASS, NO_DATA_CLASS, Scene
from ..base import PixelValues, PresetParams

__all__ = [
    "CLASSIFY_BANDS",
    "S2_CLASSES",
    "S2Params",
    "SpectralParams",
    "bands_of",
    "pair_of",
    "spectral_codes",
    "normalised",
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
#: Slack on every rule threshold when regions are checked on their mean terms: the terms
#: travel as float16 (error < 5e-4 on values within +-2), so a region that passes with it
#: passes on its exact means too.
_TERM_MARGIN = 1e-3


def normalised(
    bands: Mapping[str, NDArray[np.float32]], normalise: Normalisation | None
) -> dict[str, NDArray[np.float32]]:
    """The after date's bands brought onto the before date: (value - offset) / gain."""
    out = dict(bands)
    for band, (gain, offset) in (normalise or {}).items():
        if band in out:
            out[band] = (out[band] - np.float32(offset)) / np.float32(gain)
    return out


def spectral_codes(
    before: Scene,
    after: Scene,
    changed: NDArray[np.bool_],
    normalise: Normalisation | None = None,
    terms_at: NDArray[np.bool_] | None = None,
) -> tuple[NDArray[np.uint8], tuple[NDArray[np.int32], NDArray[np.float16]] | None]:
    """Window codes of the changed pixels (``CANDIDATE`` and the classes their spectra
    support), ``NO_CHANGE_CLASS`` elsewhere; and the rule terms (``classify.RULE_TERMS``,
    for the whole-map step's region check) of the changed pixels in ``terms_at`` (all of
    them by default). No support and no terms when the bands for classes are not loaded."""
    codes = np.where(changed, CANDIDATE, NO_CHANGE_CLASS).astype(np.uint8)
    if not all(b in before.bands for b in CLASSIFY_BANDS):
        return codes, None
    # Indices only where something changed: memory follows the change, not the tile.
    # One flat index list gathered from every band (a boolean mask per band rescans the whole window).
    at = np.flatnonzero(changed)
    b_px = {b: before.band(b).take(at) for b in CLASSIFY_BANDS}
    a_px = {b: after.band(b).take(at) for b in CLASSIFY_BANDS}
    terms = classify.rule_terms(*classify.indices_of(b_px, normalised(a_px, normalise)))
    codes.ravel()[at] |= classify.support_of_terms(terms)
    keep = slice(None) if terms_at is None else terms_at.ravel()[at]
    values = np.stack([terms[k][keep] for k in classify.RULE_TERMS]).astype(np.float16)
    return codes, (at[keep].astype(np.int32), values)


def regions_above(
    codes: NDArray[np.uint8], statistic: NDArray[np.float32], threshold: float, pixels: PixelValues | None
) -> NDArray[np.uint8]:
    """Changed where the final statistic exceeds ``threshold``; each connected changed
    region (4-connected, as the polygons) takes the class most of its pixels have first
    (``classify.RULE_ORDER``) and keeps it only when the region's mean rule terms support
    it (else "other change"), so that no polygon's class contradicts its own mean index
    values. ``codes``: window codes of ``spectral_codes``, turned into classes in place."""
    with np.errstate(invalid="ignore"):
        changed = statistic > threshold
    codes[~changed & (codes != NO_DATA_CLASS)] = NO_CHANGE_CLASS
    found = components(changed, 4)
    if found.count == 0:
        return codes
    inside, label = found.inside, found.pixel_labels
    support = codes.ravel()[inside] & _SUPPORT_BITS
    region_class = found.value_counts(classify.first_supported(support)).argmax(axis=1).astype(np.uint8)
    held = _regions_supported(region_class, inside, label, support, pixels)
    region_class[~held] = classify.OTHER_CHANGE
    codes.ravel()[inside] = region_class[label]
    return codes


def _regions_supported(
    region_class: NDArray[np.uint8],
    inside: NDArray[np.int64],
    label: NDArray[np.int32],
    support: NDArray[np.uint8],
    pixels: PixelValues | None,
) -> NDArray[np.bool_]:
    """Whether each region's class holds on its mean rule terms (every pixel of the region
    must have its terms); without terms, whether it holds on every pixel of the region
    (every rule is a conjunction of linear thresholds, so it then holds on the means)."""
    n = len(region_class)
    if pixels is None:
        failed = np.zeros(n, dtype=bool)
        failed[label[~classify.supports(support, region_class[label])]] = True
        return ~failed
    count = np.zeros(n, dtype=np.int64)
    sums = np.zeros((len(classify.RULE_TERMS), n))
    for index, values in pixels.drain():  # window by window, each freed once summed
        pos = np.minimum(np.searchsorted(inside, index), inside.size - 1)
        found = inside[pos] == index
        at = pos[found]
        # Only regions with a rule to check ("other change" always holds), numbered 0..m-1
        # for this window (sums over all regions per window would cost windows x regions).
        ruled = region_class[label[at]] != classify.OTHER_CHANGE
        regions, local = np.unique(label[at[ruled]], return_inverse=True)
        count[regions] += np.bincount(local, minlength=regions.size)
        found[found] = ruled
        for i, row in enumerate(values[:, found]):
            sums[i, regions] += np.bincount(local, weights=row.astype(np.float64), minlength=regions.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = {name: sums[i] / count for i, name in enumerate(classify.RULE_TERMS)}
    held = classify.supports(classify.support_of_terms(means, margin=_TERM_MARGIN), region_class)
    complete = count == np.bincount(label, minlength=n)
    kept: NDArray[np.bool_] = (held & complete) | (region_class == classify.OTHER_CHANGE)
    return kept
