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
    "SpectralParams",
    "bands_of",
    "pair_of",
    "spectral_codes",
    "automatic_threshold",
    "regions_above",
]

#: Bands the spectral change classes read.
CLASSIFY_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
S2_CLASSES = classify.SPECTRAL_CHANGE_CLASSES

#: (gain, offset) per band that bring the after date onto the before date.
Normalisation = Mapping[str, tuple[float, float]]


class SpectralParams(PresetParams):
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


def spectral_codes(
    before: Scene, after: Scene, changed: NDArray[np.bool_], normalise: Normalisation | None = None
) -> NDArray[np.uint8]:
    """Per-pixel spectral change classes of the changed pixels (``other change`` when the
    bands needed for classes are not loaded), ``NO_CHANGE_CLASS`` elsewhere."""
    if not all(b in before.bands for b in CLASSIFY_BANDS):
        return np.where(changed, classify.OTHER_CHANGE, NO_CHANGE_CLASS).astype(np.uint8)
    # Indices only where something changed: memory follows the change, not the tile.
    # One flat index list gathered from every band (a boolean mask per band rescans the whole window).
    at = np.flatnonzero(changed)
    b_px = {b: before.band(b).take(at) for b in CLASSIFY_BANDS}
    a_px = {b: after.band(b).take(at) for b in CLASSIFY_BANDS}
    for band, (gain, offset) in (normalise or {}).items():
        if band in a_px:
            a_px[band] = (a_px[band] - np.float32(offset)) / np.float32(gain)
    codes = classify.classify_change_from_bands(np.ones(at.size, dtype=bool), b_px, a_px)
    classes = np.zeros(changed.shape, dtype=np.uint8)
    classes.ravel()[at] = codes
    return classes


def regions_above(
    classes: NDArray[np.uint8], statistic: NDArray[np.float32], threshold: float
) -> NDArray[np.uint8]:
    """Changed where the final statistic exceeds ``threshold`` (the spectral codes of the
    windows elsewhere become no change), one class per connected changed region."""
    with np.errstate(invalid="ignore"):
        changed = statistic > threshold
    classes[~changed & (classes != NO_DATA_CLASS)] = NO_CHANGE_CLASS
    return region_majority(classes, changed)
