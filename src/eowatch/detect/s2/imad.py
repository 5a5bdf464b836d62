"""``s2-imad``: MAD / IR-MAD with a calibrated chi-square no-change test."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from ...errors import InputError
from ...kernels.imad import (
    IMADModel,
    chi2_median_scale,
    chi2_no_change_probability,
    fit_radiometric_normalisation,
    imad,
    sample_pixels,
)
from ...kernels.thresholds import chi2_threshold
from ...model import Scene
from ..base import FitSummary, PixelValues, Preset, SampleDesign, WindowOutput
from ..registry import register
from .common import CLASSIFY_BANDS, S2_CLASSES, SpectralParams, pair_of, regions_above, spectral_codes

__all__ = ["IMADPreset", "IMADFit"]

#: Pixels whose statistic (calibrated with the sample's scale) exceeds this fraction of the
#: threshold get spectral codes in the windows, before the whole-scene calibration.
_CANDIDATE_MARGIN = 0.5
#: ... and above this fraction their rule terms, for the regions' class check (16 % of a
#: full test tile are candidates, 405 MB of terms; the terms' share is about half). If the
#: whole-scene calibration raises the scale by more than 1 / 0.8, regions with pixels
#: without terms are classed "other change" (never a wrong class).
_TERMS_MARGIN = 0.8


class IMADParams(SpectralParams):
    bands: tuple[str, ...] = Field(("B02", "B03", "B04", "B08"), description="Bands compared.")
    alpha: float = Field(1e-4, gt=0, lt=1, description="Significance level of the chi-square no-change test.")
    max_iter: int = Field(
        1,
        ge=1,
        le=500,
        description="IR-MAD iterations; 1 = plain MAD (re-weighting lowered F1 on urban OSCD scenes).",
    )
    tol: float = Field(1e-4, gt=0, description="Convergence: largest change of a canonical correlation.")
    calibrate: bool = Field(
        True, description="Rescale chi-square so its median matches chi2(bands) (no-change majority)."
    )
    min_area_m2: float = Field(2000.0, ge=0, description="Minimum mapping unit in m².")


@dataclass(frozen=True)
class IMADFit:
    """The MAD transform, the chi-square scale and threshold, and the radiometric
    normalisation of the after date onto the before date."""

    model: IMADModel
    scale: float
    threshold: float
    gain: NDArray[np.float64]
    offset: NDArray[np.float64]

    def normalise(self, bands: tuple[str, ...]) -> dict[str, tuple[float, float]]:
        return dict(zip(bands, zip(self.gain.tolist(), self.offset.tolist(), strict=True), strict=True))


def _chi2_confidence(statistic: NDArray[np.floating], dof: int) -> NDArray[np.float32]:
    """1 - p-value of a calibrated chi-square statistic (float32)."""
    p_value = chi2_no_change_probability(np.asarray(statistic, dtype=np.float32), dof).astype(np.float32)
    return (1.0 - p_value).astype(np.float32)


@register
class IMADPreset(Preset[IMADParams, IMADFit]):
    """Windows hold the uncalibrated chi-square; ``calibrate`` scales it on the whole scene
    and ``finish`` thresholds it and gives each changed region its majority class."""

    name = "s2-imad"
    sensor = "sentinel-2"
    summary = (
        "MAD / IR-MAD (Nielsen 2007) on the 10 m bands: chi-square no-change test at significance alpha, "
        "calibrated robustly on the no-change majority; after relative radiometric normalisation on the "
        "no-change pixels it selects, changes are classed by their spectra."
    )
    Params = IMADParams
    sample_design = SampleDesign(lattice=8, pixelwise=True)

    def bands(self, params: IMADParams, available: Sequence[str]) -> tuple[str, ...]:
        # The compared bands first: views of the window, not copies.
        return tuple(dict.fromkeys(params.bands + CLASSIFY_BANDS))

    def fit(self, sample: Sequence[Scene], params: IMADParams) -> IMADFit:
        before, after = pair_of(sample)
        valid = before.valid & after.valid
        n = len(params.bands)
        x, y = before.data[:n], after.data[:n]
        res = imad(x, y, valid, max_iter=params.max_iter, tol=params.tol)
        # Real no-change pixels are heavier-tailed than chi2(dof) (misregistration,
        # BRDF, phenology): calibrate on the median, which the changed minority barely moves.
        scale = chi2_median_scale(res.chi2, n, valid) if params.calibrate else 1.0
        z = (res.chi2 * scale).astype(np.float32)
        p_value = chi2_no_change_probability(z, n).astype(np.float32)
        # Normalise the after date on the no-change pixels so index-based classes compare like with like.
        idx = sample_pixels(valid & (p_value > 0.95), 1_000_000)
        gain, offset = fit_radiometric_normalisation(
            x.reshape(n, -1)[:, idx].T, y.reshape(n, -1)[:, idx].T, np.ones(idx.size, dtype=bool)
        )
        return IMADFit(res.model, scale, chi2_threshold(params.alpha, n), gain, offset)

    def apply(self, window: Sequence[Scene], params: IMADParams, model: IMADFit) -> WindowOutput:
        """Uncalibrated chi-square, and spectral codes of every pixel that could still be
        changed once ``calibrate`` calibrates on the whole scene (calibrated statistic above
        half the threshold with the sample's scale: the final scale would have to be twice
        the sample's to miss one; ``calibrate`` checks)."""
        before, after = pair_of(window)
        n = len(params.bands)
        # NaN where either date is invalid or a band is not finite.
        chi2 = model.model.chi_square(before.data[:n], after.data[:n], before.valid & after.valid)
        with np.errstate(invalid="ignore"):
            candidate = chi2 > np.float32(model.threshold * _CANDIDATE_MARGIN / model.scale)
            terms_at = chi2 > np.float32(model.threshold * _TERMS_MARGIN / model.scale)
        codes, pixels = spectral_codes(before, after, candidate, model.normalise(params.bands), terms_at)
        return WindowOutput(codes, chi2, pixels=pixels)

    def calibrate(
        self, statistic: NDArray[np.float32], params: IMADParams, model: IMADFit, exact: bool
    ) -> IMADFit:
        """Scale the chi-square (in place). When the fit saw a sample, the median calibration
        is redone on every 4th pixel of the stitched statistic (millions of pixels over the
        whole scene), not on the sample's clustered windows, whose median moved by several %."""
        n = len(params.bands)
        if params.calibrate and not exact:
            lattice = statistic[::4, ::4]
            scale = chi2_median_scale(lattice, n, np.isfinite(lattice))
            if scale > model.scale / _CANDIDATE_MARGIN:
                raise InputError(
                    f"the chi-square calibration of the whole scene ({scale:.3g}) differs from the "
                    f"fitting sample's ({model.scale:.3g}) by more than x{1 / _CANDIDATE_MARGIN:g}; "
                    "raise scene_sample_px (EOWATCH_SCENE_SAMPLE_PX) so the sample represents the scene"
                )
            model = replace(model, scale=scale)
        statistic *= np.float32(model.scale)
        return model

    def finish(
        self,
        classes: NDArray[np.uint8],
        statistic: NDArray[np.float32],
        params: IMADParams,
        model: IMADFit,
        exact: bool,
        pixels: PixelValues | None = None,
    ) -> NDArray[np.uint8]:
        """Threshold the calibrated chi-square, one class per region."""
        return regions_above(classes, statistic, model.threshold, pixels)

    def describe_fit(self, model: IMADFit, params: IMADParams) -> FitSummary:
        return FitSummary(
            statistic_name="mad_chi2",
            class_table=S2_CLASSES,
            metadata={
                "canonical_correlations": model.model.rho.tolist(),
                "iterations": model.model.iterations,
                "converged": model.model.converged,
                "chi2_scale": model.scale,
                "chi2_threshold": model.threshold,
                "normalisation": {
                    "bands": list(params.bands),
                    "gain": model.gain.tolist(),
                    "offset": model.offset.tolist(),
                },
            },
            confidence_of=partial(_chi2_confidence, dof=len(params.bands)),
        )
