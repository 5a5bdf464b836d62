"""Sentinel-2 presets: IR-MAD, change vector analysis, burn scars, water."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from ..errors import InputError
from ..kernels import classify
from ..kernels.cva import cva_magnitude, standardize_difference
from ..kernels.imad import (
    IMADModel,
    chi2_median_scale,
    chi2_no_change_probability,
    fit_radiometric_normalisation,
    imad,
    sample_pixels,
)
from ..kernels.indices import compute_index
from ..kernels.morphology import region_majority
from ..kernels.thresholds import chi2_threshold, kittler_illingworth, otsu
from ..model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeResult, Scene
from .base import FitSummary, Preset, PresetParams, WindowOutput
from .registry import register

__all__ = ["IMADPreset", "CVAPreset", "BurnPreset", "WaterPreset"]

_CLASSIFY_BANDS = ("B02", "B03", "B04", "B08", "B11", "B12")
S2_CLASSES = classify.SPECTRAL_CHANGE_CLASSES


def _bands_of(scene: Scene) -> dict[str, np.ndarray]:
    return dict(zip(scene.bands, scene.data, strict=True))


def _select(scene: Scene, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([scene.band(n) for n in names])


def _threshold(values: np.ndarray, valid: np.ndarray, method: str) -> float:
    return kittler_illingworth(values, valid) if method == "kittler-illingworth" else otsu(values, valid)


class _SpectralParams(PresetParams):
    bands: tuple[str, ...] = Field(
        ("B02", "B03", "B04", "B08", "B05", "B06", "B07", "B8A", "B11", "B12"),
        description="Bands compared (20 m bands are resampled to the 10 m grid).",
    )

    @field_validator("bands", mode="before")
    @classmethod
    def _split(cls, v: object) -> object:
        return tuple(s.strip() for s in v.split(",")) if isinstance(v, str) else v


def _spectral_codes(
    before: Scene,
    after: Scene,
    changed: np.ndarray,
    normalise: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """Per-pixel spectral change classes of the changed pixels (``other change``
    when the bands needed for classes are not loaded). ``normalise`` maps a band
    to the (gain, offset) that brings the after date onto the before date."""
    if not all(b in before.bands for b in _CLASSIFY_BANDS):
        return np.where(changed, classify.OTHER_CHANGE, NO_CHANGE_CLASS).astype(np.uint8)
    # Indices only where something changed: memory follows the change, not the tile.
    # One flat index list gathered from every band (a boolean mask per band rescans the whole window).
    at = np.flatnonzero(changed)
    b_px = {b: before.band(b).take(at) for b in _CLASSIFY_BANDS}
    a_px = {b: after.band(b).take(at) for b in _CLASSIFY_BANDS}
    for band, (gain, offset) in (normalise or {}).items():
        if band in a_px:
            a_px[band] = (a_px[band] - np.float32(offset)) / np.float32(gain)
    codes = classify.classify_change_from_bands(np.ones(at.size, dtype=bool), b_px, a_px)
    classes = np.zeros(changed.shape, dtype=np.uint8)
    classes.ravel()[at] = codes
    return classes


def _classified(
    before: Scene,
    after: Scene,
    changed: np.ndarray,
    normalise: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """Spectral change classes, one class per connected changed region."""
    return region_majority(_spectral_codes(before, after, changed, normalise), changed)


def _chi2_confidence(statistic: np.ndarray, dof: int) -> np.ndarray:
    """1 - p-value of a calibrated chi-square statistic (float32, as the whole-scene path stores it)."""
    p_value = chi2_no_change_probability(statistic, dof).astype(np.float32)
    return (1.0 - p_value).astype(np.float32)


#: Pixels whose statistic (calibrated with the sample's scale) exceeds this fraction
#: of the threshold get spectral codes in the windowed pass, before the final calibration.
_CANDIDATE_MARGIN = 0.5


@dataclass
class IMADFit:
    """The global part of an IR-MAD run, fitted on a sample and applied per window."""

    model: IMADModel
    scale: float
    threshold: float
    gain: np.ndarray
    offset: np.ndarray

    def normalise(self, bands: tuple[str, ...]) -> dict[str, tuple[float, float]]:
        return dict(zip(bands, zip(self.gain.tolist(), self.offset.tolist(), strict=True), strict=True))


@register
class IMADPreset(Preset):
    name = "s2-imad"
    sensor = "sentinel-2"
    summary = (
        "MAD / IR-MAD (Nielsen 2007) on the 10 m bands: chi-square no-change test at significance alpha, "
        "calibrated robustly on the no-change majority; after relative radiometric normalisation on the "
        "no-change pixels it selects, changes are classed by their spectra."
    )

    class Params(_SpectralParams):
        bands: tuple[str, ...] = Field(("B02", "B03", "B04", "B08"), description="Bands compared.")
        alpha: float = Field(
            1e-4, gt=0, lt=1, description="Significance level of the chi-square no-change test."
        )
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

    def bands(self, params: Params) -> tuple[str, ...]:
        return tuple(dict.fromkeys(params.bands + _CLASSIFY_BANDS))

    windowed = True
    pixelwise_fit = True  # decimated whole tiles (eowatch.io.windows.sample_cells)

    def _fit(self, before: Scene, after: Scene, params: Params) -> tuple[IMADFit, np.ndarray, np.ndarray]:
        """The fit, with the calibrated statistic and p-values of the pixels it was fitted on."""
        valid = before.valid & after.valid
        # bands() lists the compared bands first, so these are views, not copies.
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
        fit = IMADFit(res.model, scale, chi2_threshold(params.alpha, n), gain, offset)
        return fit, z, p_value

    def fit(self, before: Scene, after: Scene, params: Params) -> IMADFit:
        return self._fit(before, after, params)[0]

    def apply_window(self, before: Scene, after: Scene, params: Params, model: IMADFit) -> WindowOutput:
        """Uncalibrated chi-square, and spectral codes of every pixel that could still be
        changed once ``calibrate`` calibrates on the whole scene (calibrated statistic above
        half the threshold with the sample's scale: the final scale would have to be twice
        the sample's to miss one; ``calibrate`` checks)."""
        n = len(params.bands)
        # NaN where either date is invalid or a band is not finite.
        chi2 = model.model.chi_square(before.data[:n], after.data[:n], before.valid & after.valid)
        with np.errstate(invalid="ignore"):
            candidate = chi2 > np.float32(model.threshold * _CANDIDATE_MARGIN / model.scale)
        return WindowOutput(
            classes=_spectral_codes(before, after, candidate, model.normalise(params.bands)),
            statistic=chi2,
        )

    def calibrate(self, statistic: np.ndarray, params: Params, model: IMADFit, exact: bool) -> None:
        """Calibrate the chi-square on the whole scene (in place).

        When the fit saw a sample, the median calibration is redone on a regular
        lattice of every 4th pixel of the stitched statistic (millions of pixels spread
        over the whole scene), not on the sample's clustered windows, whose median
        moved by several % between samples."""
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
            model.scale = scale
        statistic *= np.float32(model.scale)  # float32 in place, as the whole-scene path computes it

    def finish(
        self, classes: np.ndarray, statistic: np.ndarray, params: Params, model: IMADFit, exact: bool
    ) -> np.ndarray:
        """Threshold the calibrated chi-square, one class per region."""
        with np.errstate(invalid="ignore"):
            changed = statistic > model.threshold
        classes[~changed & (classes != NO_DATA_CLASS)] = NO_CHANGE_CLASS
        return region_majority(classes, changed)

    def summary_of(self, model: IMADFit, params: Params) -> FitSummary:
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

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        valid = before.valid & after.valid
        fit, z, p_value = self._fit(before, after, params)
        changed = valid & (z > fit.threshold)
        summary = self.summary_of(fit, params)
        return ChangeResult(
            classes=_classified(before, after, changed, fit.normalise(params.bands)),
            statistic=np.where(valid, z, np.nan).astype(np.float32),
            statistic_name=summary.statistic_name,
            class_table=summary.class_table,
            grid=before.grid,
            confidence=(1.0 - p_value).astype(np.float32),
            metadata=summary.metadata,
        )


@register
class CVAPreset(Preset):
    name = "s2-cva"
    sensor = "sentinel-2"
    summary = "Change vector analysis: magnitude of the band-standardised difference, automatic threshold."

    class Params(_SpectralParams):
        threshold: Literal["otsu", "kittler-illingworth"] = Field("otsu", description="Automatic threshold.")
        standardise: bool = Field(
            True, description="Scale each band's difference by its robust spread (MAD)."
        )

    def bands(self, params: Params) -> tuple[str, ...]:
        return tuple(dict.fromkeys(params.bands + _CLASSIFY_BANDS))

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        valid = before.valid & after.valid
        x, y = _select(before, params.bands), _select(after, params.bands)
        weights = None
        if params.standardise:
            _, scale = standardize_difference(y - x, valid)
            weights = 1.0 / np.maximum(scale, 1e-6) ** 2
        magnitude = cva_magnitude(x, y, valid, weights)
        t = _threshold(magnitude, valid, params.threshold)
        changed = valid & (magnitude > t)
        return ChangeResult(
            classes=_classified(before, after, changed),
            statistic=magnitude,
            statistic_name="cva_magnitude",
            class_table=S2_CLASSES,
            grid=before.grid,
            metadata={"threshold": t, "method": params.threshold},
        )


@register
class BurnPreset(Preset):
    name = "s2-burn"
    sensor = "sentinel-2"
    summary = "Burn scars: dNBR above the USGS moderate-severity level with a vegetation (NDVI) loss."

    class Params(PresetParams):
        dnbr_threshold: float = Field(
            0.27, gt=0, description="dNBR = NBR_before - NBR_after above this is burnt."
        )
        min_ndvi_loss: float = Field(0.1, ge=0, description="Required NDVI decrease.")

    def bands(self, params: Params) -> tuple[str, ...]:
        return _CLASSIFY_BANDS

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        valid = before.valid & after.valid
        b, a = _bands_of(before), _bands_of(after)
        dnbr = compute_index("nbr", b) - compute_index("nbr", a)
        dndvi = compute_index("ndvi", a) - compute_index("ndvi", b)
        burnt = valid & (dnbr > params.dnbr_threshold) & (dndvi < -params.min_ndvi_loss)
        classes = np.where(burnt, classify.BURN_SCAR, NO_CHANGE_CLASS).astype(np.uint8)
        statistic = np.where(valid, dnbr, np.nan).astype(np.float32)
        # Confidence grows from the threshold to the USGS high-severity level (0.66).
        confidence = np.clip((dnbr - params.dnbr_threshold) / (0.66 - params.dnbr_threshold), 0, 1)
        return ChangeResult(
            classes=classes,
            statistic=statistic,
            statistic_name="dnbr",
            class_table=S2_CLASSES,
            grid=before.grid,
            confidence=confidence.astype(np.float32),
        )


@register
class WaterPreset(Preset):
    name = "s2-water"
    sensor = "sentinel-2"
    summary = "Water gain/loss: NDWI (McFeeters) water maps of each date with an automatic threshold."

    class Params(PresetParams):
        threshold: float | Literal["otsu"] = Field(
            "otsu", description="NDWI water threshold, or 'otsu' for an automatic one from both dates."
        )

    def bands(self, params: Params) -> tuple[str, ...]:
        return ("B03", "B08")

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        valid = before.valid & after.valid
        nb, na = compute_index("ndwi", _bands_of(before)), compute_index("ndwi", _bands_of(after))
        if params.threshold == "otsu":
            t = otsu(np.concatenate([nb[valid], na[valid]]))
        else:
            t = float(params.threshold)
        wb, wa = nb > t, na > t
        classes = np.full(valid.shape, NO_CHANGE_CLASS, dtype=np.uint8)
        classes[valid & wa & ~wb] = classify.WATER_GAIN
        classes[valid & wb & ~wa] = classify.WATER_LOSS
        statistic = np.where(valid, na - nb, np.nan).astype(np.float32)
        return ChangeResult(
            classes=classes,
            statistic=statistic,
            statistic_name="dndwi",
            class_table=S2_CLASSES,
            grid=before.grid,
            metadata={"ndwi_threshold": t},
        )
