"""``s2-cva``: change vector analysis with an automatic threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...kernels.cva import cva_magnitude, standardize_difference
from ...model import Scene
from ..base import FitSummary, PixelValues, Preset, SampleDesign, WindowOutput
from ..registry import register
from .common import (
    CLASSIFY_BANDS,
    S2_CLASSES,
    SpectralParams,
    automatic_threshold,
    pair_of,
    regions_above,
    spectral_codes,
)

__all__ = ["CVAPreset", "CVAFit"]


class CVAParams(SpectralParams):
    threshold: Literal["otsu", "kittler-illingworth"] = Field("otsu", description="Automatic threshold.")
    standardise: bool = Field(True, description="Scale each band's difference by its robust spread (MAD).")


@dataclass(frozen=True)
class CVAFit:
    """Band weights (1 / robust spread², or None) and the magnitude threshold."""

    weights: NDArray[np.float64] | None
    threshold: float


def _stack(scene: Scene, names: tuple[str, ...]) -> NDArray[np.float32]:
    return np.stack([scene.band(n) for n in names])


@register
class CVAPreset(Preset[CVAParams, CVAFit]):
    """Spread and threshold from the sample; magnitude and spectral codes per window;
    one class per changed region."""

    name = "s2-cva"
    sensor = "sentinel-2"
    summary = "Change vector analysis: magnitude of the band-standardised difference, automatic threshold."
    Params = CVAParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: CVAParams, available: Sequence[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(params.bands + CLASSIFY_BANDS))

    def _magnitude(self, dates: Sequence[Scene], params: CVAParams, weights: NDArray[np.float64] | None
                   ) -> NDArray[np.float32]:  # fmt: skip
        before, after = pair_of(dates)
        x, y = _stack(before, params.bands), _stack(after, params.bands)
        return cva_magnitude(x, y, before.valid & after.valid, weights)

    def fit(self, sample: Sequence[Scene], params: CVAParams) -> CVAFit:
        before, after = pair_of(sample)
        valid = before.valid & after.valid
        weights = None
        if params.standardise:
            x, y = _stack(before, params.bands), _stack(after, params.bands)
            _, scale = standardize_difference(y - x, valid)
            weights = 1.0 / np.maximum(scale, 1e-6) ** 2
        magnitude = self._magnitude(sample, params, weights)
        return CVAFit(weights, automatic_threshold(magnitude, valid, params.threshold))

    def apply(self, window: Sequence[Scene], params: CVAParams, model: CVAFit) -> WindowOutput:
        before, after = pair_of(window)
        magnitude = self._magnitude(window, params, model.weights)  # NaN where invalid
        with np.errstate(invalid="ignore"):
            changed = magnitude > model.threshold
        codes, pixels = spectral_codes(before, after, changed)
        return WindowOutput(codes, magnitude, pixels=pixels)

    def finish(
        self,
        classes: NDArray[np.uint8],
        statistic: NDArray[np.float32],
        params: CVAParams,
        model: CVAFit,
        exact: bool,
        pixels: PixelValues | None = None,
    ) -> NDArray[np.uint8]:
        return regions_above(classes, statistic, model.threshold, pixels)

    def describe_fit(self, model: CVAFit, params: CVAParams) -> FitSummary:
        return FitSummary(
            "cva_magnitude", S2_CLASSES, {"threshold": model.threshold, "method": params.threshold}
        )
