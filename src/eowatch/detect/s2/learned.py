"""``s2-learned``: a trained change model on top of s2-imad's MAD chi-square.

The MAD transform, its chi-square calibration and the radiometric normalisation are
fitted on the pair as in s2-imad. In every window, pixels whose calibrated chi-square
exceeds the model's loose candidate threshold (alpha ~1e-2, most real change and some
15 % of a scene) are rated by the model (``eowatch.learn``, trained with ``eowatch
train``) from the features of ``features.py``: the statistic is the change probability
(0 where not a candidate). With a region stage, ``calibrate`` then rates every region of
probability above the model's region threshold as a whole (``rate_regions``: a second
model on the region's probability statistics and size), its pixels taking the region's
probability. Change is where the final probability exceeds the decision threshold; each
region takes its spectral class as in s2-imad, then the same minimum mapping unit. The
probability is the confidence (cross-validated to be calibrated; see the model card).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...errors import InputError
from ...kernels.thresholds import chi2_threshold
from ...learn.artifact import DEFAULT_MODEL, LearnedModel, load_model
from ...model import Scene
from ..base import FitSummary, PixelValues, Preset, SampleDesign, WindowOutput
from ..registry import register
from .common import S2_CLASSES, S2Params, pair_of, regions_above, spectral_codes
from .features import (
    FEATURE_BANDS,
    FEATURE_NAMES,
    HALO,
    REGION_FEATURE_NAMES,
    pixel_features,
    region_features,
)
from .imad import IMADFit, IMADParams, IMADPreset

__all__ = [
    "LearnedPreset",
    "LearnedFit",
    "LearnedParams",
    "candidates",
    "candidate_features",
    "candidate_probability",
    "imad_params",
    "rate_regions",
]


class LearnedParams(S2Params):
    model: str = Field(
        DEFAULT_MODEL,
        description="Change model: a shipped model's name (NAME or NAME-vN) or a model card path "
        "(NAME-vN.card.json written by `eowatch train`).",
    )
    threshold: float | None = Field(
        None, gt=0, lt=1, description="Decision threshold on the change probability (default: the model's)."
    )
    min_area_m2: float = Field(2000.0, ge=0, description="Minimum mapping unit in m².")


@dataclass(frozen=True)
class LearnedFit:
    """s2-imad's fit on the pair (chi-square scale, normalisation) and the loaded model."""

    imad: IMADFit
    model: LearnedModel
    threshold: float

    @property
    def coded_above(self) -> float:
        """Pixels above this probability get spectral codes in the windows: every pixel of
        a region the region stage rates, else every pixel above the decision threshold."""
        region = self.model.region_threshold
        return self.threshold if region is None else min(region, self.threshold)


def imad_params(mad_bands: tuple[str, ...], alpha: float) -> IMADParams:
    """s2-imad's parameters for the MAD fit under a model."""
    return IMADParams(bands=mad_bands, alpha=alpha)


def candidates(
    before: Scene, after: Scene, imad: IMADFit, mad_bands: tuple[str, ...], alpha: float
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Calibrated chi-square (NaN where invalid) and the candidates (above the chi-square
    threshold at ``alpha``) of a window or a whole pair."""
    n = len(mad_bands)
    chi2 = imad.model.chi_square(before.data[:n], after.data[:n], before.valid & after.valid)
    chi2 *= np.float32(imad.scale)
    with np.errstate(invalid="ignore"):
        candidate = chi2 > np.float32(chi2_threshold(alpha, n))
    return chi2, candidate


def candidate_features(
    before: Scene, after: Scene, imad: IMADFit, mad_bands: tuple[str, ...], chi2: NDArray[np.float32],
    at: NDArray[np.intp],
) -> NDArray[np.float32]:  # fmt: skip
    """Features (len(at), k) of the pixels at flat indices ``at``: what the preset rates
    and what training reads."""
    return pixel_features(before, after, chi2, imad.normalise(mad_bands), at)


def candidate_probability(
    before: Scene, after: Scene, imad: IMADFit, model: LearnedModel
) -> NDArray[np.float32]:
    """Change probability of every pixel: the model's on the candidates, 0 elsewhere, NaN invalid."""
    chi2, candidate = candidates(before, after, imad, model.mad_bands, model.candidate_alpha)
    probability = np.where(np.isfinite(chi2), np.float32(0.0), np.float32(np.nan)).astype(np.float32)
    at = np.flatnonzero(candidate)
    if at.size:
        rows = candidate_features(before, after, imad, model.mad_bands, chi2, at)
        probability.ravel()[at] = model.predict(rows)
    return probability


def rate_regions(statistic: NDArray[np.float32], model: LearnedModel) -> NDArray[np.float32]:
    """Replace, in place, the pixel probability of every region above the model's region
    threshold by the region model's probability (no-op without a region stage)."""
    threshold = model.region_threshold
    if threshold is None:
        return statistic
    found, features = region_features(statistic, threshold)
    if found.count:
        rated = model.predict_regions(features)
        statistic.ravel()[found.inside] = rated[found.pixel_labels - 1]
    return statistic


def _identity(values: NDArray[np.floating[Any]]) -> NDArray[np.float32]:
    return np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0).astype(np.float32)


@register
class LearnedPreset(Preset[LearnedParams, LearnedFit]):
    """Windows hold the change probability; ``finish`` thresholds it and classes each region."""

    name = "s2-learned"
    sensor = "sentinel-2"
    summary = (
        "A trained change model (gradient-boosted trees, `eowatch train`) rating s2-imad's candidate "
        "pixels from the MAD chi-square, spectral log-ratios and indices and their surroundings; the "
        "probability is the confidence. Default model trained on OSCD (labels CC BY-NC-SA)."
    )
    Params = LearnedParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: LearnedParams, available: Sequence[str]) -> tuple[str, ...]:
        model = load_model(params.model)
        return tuple(dict.fromkeys(model.mad_bands + FEATURE_BANDS))

    def halo(self, params: LearnedParams) -> int:
        return HALO

    def fit(self, sample: Sequence[Scene], params: LearnedParams) -> LearnedFit:
        model = load_model(params.model)
        regions = model.card.get("region_features")
        if model.features != FEATURE_NAMES or (
            regions is not None and tuple(regions) != REGION_FEATURE_NAMES
        ):
            raise InputError(
                f"model {model.id} was trained on other features than this eowatch computes; "
                "retrain it with `eowatch train`"
            )
        imad = IMADPreset().fit(sample, imad_params(model.mad_bands, model.candidate_alpha))
        threshold = params.threshold if params.threshold is not None else model.threshold
        return LearnedFit(imad, model, threshold)

    def apply(self, window: Sequence[Scene], params: LearnedParams, model: LearnedFit) -> WindowOutput:
        before, after = pair_of(window)
        probability = candidate_probability(before, after, model.imad, model.model)
        with np.errstate(invalid="ignore"):
            changed = probability > np.float32(model.coded_above)
        codes, pixels = spectral_codes(before, after, changed, model.imad.normalise(model.model.mad_bands))
        return WindowOutput(codes, probability, pixels=pixels)

    def calibrate(
        self, statistic: NDArray[np.float32], params: LearnedParams, model: LearnedFit, exact: bool
    ) -> LearnedFit:
        """The region stage (when the model has one), in place: every region of pixel
        probability above the model's region threshold takes the probability the region
        model gives it (the expected share of its pixels that changed)."""
        rate_regions(statistic, model.model)
        return model

    def finish(
        self,
        classes: NDArray[np.uint8],
        statistic: NDArray[np.float32],
        params: LearnedParams,
        model: LearnedFit,
        exact: bool,
        pixels: PixelValues | None = None,
    ) -> NDArray[np.uint8]:
        """Threshold the probability, one class per region."""
        return regions_above(classes, statistic, model.threshold, pixels)

    def describe_fit(self, model: LearnedFit, params: LearnedParams) -> FitSummary:
        card = model.model.card
        return FitSummary(
            statistic_name="change_probability",
            class_table=S2_CLASSES,
            metadata={
                "model_id": model.model.id,
                "model_version": model.model.version,
                "model_name": card.get("name"),
                "model_label_licence": card.get("label_licence"),
                "decision_threshold": model.threshold,
                "region_threshold": model.model.region_threshold,
                "candidate_alpha": model.model.candidate_alpha,
                "chi2_scale": model.imad.scale,
                "canonical_correlations": model.imad.model.rho.tolist(),
            },
            confidence_of=_identity,
        )
