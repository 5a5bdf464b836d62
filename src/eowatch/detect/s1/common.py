"""What the Sentinel-1 presets share: parameters, direction classes, the ENL and the
speckle filter of a window, automatic thresholds and confidence ramps.

Every preset reads backscatter as linear power intensity (``eowatch.io.load``
converts dB and GRD amplitude DN; ``eowatch.io.sar_units`` finds which), works in dB
only where a rule is stated in dB, and returns direction classes:

* ``1 increase`` - backscatter went up (new structure, vehicle, ship, crop growth),
* ``2 decrease`` - backscatter went down (flooding, clearing, removal),
* ``3 mixed`` (omnibus only) - channels changed in opposite directions.

What each preset fits on the sample: the ENL of each date (``estimate_enl``: the median
local ENL of the 10 % most homogeneous 7x7 blocks) and automatic thresholds (Otsu /
Kittler-Illingworth histograms of the filtered dB values or log-ratios). Both are
distribution statistics: the default sample (64 full-resolution windows on a stratified
8 x 8 lattice, 2 M pixels) holds ~40 000 7x7 blocks for the ENL and a 256-bin histogram
with ~8 000 pixels per bin on average, so sampling moves a threshold by a fraction of a
bin (0.1-0.3 dB on a 30 dB range); a scene of at most ``scene_sample_px`` pixels is its
own sample. The sample windows are stacked row after row and filtered together: a filter
mixes two sample windows only on the ``window // 2`` rows where they meet (< 2 % of a
177-row window), which a histogram does not see. Speckle filters (and the flood density
filter) read a halo around each window (``halo``) that covers their reach, so every kept
pixel sees exactly the neighbourhood it has in the whole scene.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, field_validator

from ...errors import InputError
from ...kernels.sar import estimate_enl
from ...kernels.speckle import gamma_map_filter, lee_filter, refined_lee_filter
from ...kernels.thresholds import kittler_illingworth, otsu
from ...model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeClass, Scene
from ..base import Preset, PresetParams, SampleDesign

__all__ = [
    "INCREASE",
    "DECREASE",
    "MIXED",
    "S1_CLASSES",
    "DEFAULT_ENL",
    "CO_POL_FIRST",
    "S1Params",
    "SinglePolParams",
    "S1Fit",
    "S1_SAMPLE",
    "SinglePolPreset",
]

INCREASE, DECREASE, MIXED = 1, 2, 3
S1_CLASSES = (
    ChangeClass(
        INCREASE, "increase", (0, 220, 255), "backscatter increase (new structure, object, vegetation)"
    ),
    ChangeClass(DECREASE, "decrease", (255, 40, 40), "backscatter decrease (flooding, clearing, removal)"),
)
#: Equivalent number of looks of Sentinel-1 IW GRDH (used when it can neither be
#: estimated from the data nor read from ``sar:looks_equivalent_number``).
DEFAULT_ENL = 4.4
#: Polarisations in order of preference (co-polarisations first).
CO_POL_FIRST = ("vv", "hh", "vh", "hv")
#: Speckle filters need contiguous windows (not decimated tiles).
S1_SAMPLE = SampleDesign(lattice=8, pixelwise=False)
_MIN_SAMPLE = 100

Pol = Literal["vv", "vh", "hh", "hv"]
SpeckleFilter = Literal["lee", "refined-lee", "gamma-map", "none"]
ThresholdMethod = Literal["kittler-illingworth", "otsu"]
PositiveFloat = Annotated[float, Field(gt=0)]
Enl = tuple[float, str]  # value, where it came from

_FILTERS: dict[str, Callable[..., NDArray[np.float32]]] = {
    "lee": lee_filter,
    "refined-lee": refined_lee_filter,
    "gamma-map": gamma_map_filter,
}


class S1Params(PresetParams):
    """Parameters every Sentinel-1 preset shares (the first two are read by the input
    rules: ``eowatch.io.sar_units`` and ``eowatch.catalog.pairing``)."""

    units: Literal["auto", "db", "linear"] = Field(
        "auto",
        description="Units of the input values: 'auto' (metadata, else the values), 'db' or 'linear' power. "
        "A declaration the values contradict is an error.",
    )
    allow_mismatched_orbits: bool = Field(
        False,
        description="Compare acquisitions from different relative orbits or pass directions "
        "(geometry differs: expect false changes on slopes and at layover/shadow).",
    )
    cloud_mask: Literal["auto", "scl", "s2cloudless", "none"] = Field(
        "none", description="Not used by radar (clouds are transparent to C-band)."
    )

    def wanted_polarisations(self) -> list[str]:
        """Polarisations the parameters name (none: choose from the inputs)."""
        return []


class SinglePolParams(S1Params):
    polarisation: Literal["auto", "vv", "vh", "hh", "hv"] = Field(
        "auto", description="Band analysed: 'auto' = the co-polarisation (VV, else HH) common to both dates."
    )
    speckle_filter: SpeckleFilter = Field(
        "refined-lee", description="Speckle filter applied to each date's intensity before comparing."
    )
    window: int = Field(7, ge=3, le=31, description="Speckle filter window (odd, pixels).")
    enl: PositiveFloat | Literal["auto"] = Field(
        "auto",
        description="Equivalent number of looks for the filter: a number, or 'auto' = estimated per date "
        f"from homogeneous areas (else sar:looks_equivalent_number, else {DEFAULT_ENL}).",
    )

    @field_validator("window")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"window must be odd (e.g. {v + 1}); got {v}")
        return v

    def wanted_polarisations(self) -> list[str]:
        return [] if self.polarisation == "auto" else [self.polarisation]


@dataclass(frozen=True)
class S1Fit:
    """What an S1 preset fits on the sample: the band(s), the ENL per date (or of the
    series), thresholds and provenance metadata."""

    pols: list[str]
    enl: dict[str, Enl]
    thresholds: dict[str, float | None] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def common_polarisations(available: Sequence[str]) -> list[str]:
    return [p for p in CO_POL_FIRST if p in available]


def single_band(params: SinglePolParams, available: Sequence[str]) -> tuple[str, ...]:
    """The band a single-polarisation preset reads: the one asked for, else the first
    co-polarisation every input has."""
    wanted = params.wanted_polarisations()
    if wanted:
        return tuple(wanted)
    common = common_polarisations(available)
    if not common:
        raise InputError(f"no Sentinel-1 polarisation band (VV, VH, HH, HV) among {list(available)}")
    return (common[0],)


def masked(scene: Scene, band: str) -> NDArray[np.float64]:
    """One band as float64 intensity, NaN outside the scene's valid mask."""
    return np.where(scene.valid, scene.band(band), np.nan).astype(np.float64)


def _metadata_enl(scene: Scene) -> float | None:
    try:
        v = float(scene.properties.get("sar:looks_equivalent_number"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def enl_of(images: Sequence[NDArray[np.floating]], scene: Scene, given: float | str) -> Enl:
    """The ENL to use: given, else the median estimate over ``images``, else
    metadata, else the IW GRDH default."""
    if given != "auto":
        return float(given), "given"
    estimates = [e for e in (estimate_enl(x) for x in images) if np.isfinite(e) and e > 0]
    if estimates:
        return float(np.median(estimates)), "estimated"
    meta = _metadata_enl(scene)
    if meta is not None:
        return meta, "sar:looks_equivalent_number"
    return DEFAULT_ENL, "default (too few homogeneous areas to estimate)"


def speckle_info(params: SinglePolParams, enl: Enl) -> dict[str, Any]:
    return {
        "filter": params.speckle_filter,
        "window": params.window,
        "enl": round(enl[0], 3),
        "enl_source": enl[1],
    }


def speckle_halo(params: SinglePolParams) -> int:
    """How far a speckle filter reaches: ``window // 2`` for Lee and Gamma-MAP (box
    window) and for refined Lee too (its 3x3 sub-window means of side ``s`` lie
    ``s - 1`` apart: ``(s - 1) + (s - 1) / 2 = (3 s - 3) / 2 = window // 2``)."""
    return 0 if params.speckle_filter == "none" else params.window // 2


def fit_speckle(sample: Sequence[Scene], params: SinglePolParams) -> tuple[str, dict[str, Enl]]:
    """The analysed polarisation and each date's filter ENL, from the sample."""
    before, after = sample
    pol = single_band(params, before.bands)[0]
    if params.speckle_filter == "none":
        return pol, {}
    return pol, {
        role: enl_of([masked(s, pol)], s, params.enl) for role, s in (("before", before), ("after", after))
    }


def speckle_metadata(params: SinglePolParams, enl: dict[str, Enl]) -> dict[str, Any]:
    """How each date was filtered, for provenance."""
    if params.speckle_filter == "none" or not enl:
        return {"before": {"filter": "none"}, "after": {"filter": "none"}}
    return {role: speckle_info(params, e) for role, e in enl.items()}


def filtered(
    window: Sequence[Scene], params: SinglePolParams, pol: str, enl: dict[str, Enl]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Both dates' speckle-filtered intensities (NaN stays NaN) with the fitted ENL."""
    out = []
    for role, scene in zip(("before", "after"), window, strict=True):
        x = masked(scene, pol)
        if params.speckle_filter != "none":
            x = _FILTERS[params.speckle_filter](x, params.window, enl[role][0]).astype(np.float64)
        out.append(x)
    return out[0], out[1]


def automatic_threshold(values: NDArray[np.floating], method: str) -> float | None:
    """Automatic threshold of ``values`` (None when too few distinct values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < _MIN_SAMPLE:
        return None
    try:
        return kittler_illingworth(v) if method == "kittler-illingworth" else otsu(v)
    except ValueError:
        return None


def direction_classes(
    inc: NDArray[np.bool_], dec: NDArray[np.bool_], valid: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    out = np.full(valid.shape, NO_CHANGE_CLASS, dtype=np.uint8)
    out[inc & valid] = INCREASE
    out[dec & valid] = DECREASE
    out[~valid] = NO_DATA_CLASS
    return out


SP = TypeVar("SP", bound=SinglePolParams)


class SinglePolPreset(Preset[SP, S1Fit]):
    """A pair preset on one speckle-filtered polarisation (log-ratio, flood, bright targets)."""

    sensor = "sentinel-1"
    sample_design = S1_SAMPLE

    def bands(self, params: SP, available: Sequence[str]) -> tuple[str, ...]:
        return single_band(params, available)

    def halo(self, params: SP) -> int:
        return speckle_halo(params)
