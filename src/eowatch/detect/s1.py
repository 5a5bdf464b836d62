"""Sentinel-1 presets: log-ratio, the omnibus test, floods and bright targets.

Every preset reads backscatter as linear power intensity (``eowatch.io.load``
converts dB and GRD amplitude DN), works in dB only where a rule is stated in
dB, and returns direction classes shared by all Sentinel-1 presets:

* ``1 increase`` - backscatter went up (new structure, vehicle, ship, crop growth),
* ``2 decrease`` - backscatter went down (flooding, clearing, removal),
* ``3 mixed`` (omnibus only) - channels changed in opposite directions.

Change polygons of ``increase`` / ``decrease`` classes carry ``direction``.
The ``s1-flood`` class is named ``decrease`` for that reason: a flood is mapped
as a decrease of backscatter to the open-water level (its description says so).

Inputs are checked before reading (``prepare``, ``check_pair``):

* units - ``units="auto"`` takes them from metadata (asset units, a ``units``
  tag, the STAC collection: Planetary Computer ``sentinel-1-rtc`` = linear
  gamma0, Earth Search ``sentinel-1-grd`` = uncalibrated amplitude DN), else from
  the values (:func:`~eowatch.kernels.sar.looks_like_db` on a decimated
  sample). A declared ``"db"`` or ``"linear"`` that the values contradict is an
  ``InputError`` naming the fix.
* pairing - same relative orbit (``sat:relative_orbit``), same pass
  (``sat:orbit_state``) and common polarisations, else ``PairingError``;
  ``allow_mismatched_orbits=True`` waives the orbit and pass rules. Inputs
  without that metadata (local files) are accepted and the unchecked rules are
  recorded in the product's STAC Item (``eowatch:pairing``).

A preset object is created per run (``get_preset``); ``check_pair`` records the
polarisations common to the inputs on it, which ``bands`` then reads when the
polarisation parameter is ``"auto"``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import rasterio
from numpy.typing import NDArray
from pydantic import Field, field_validator
from rasterio.enums import Resampling
from rasterio.windows import Window
from scipy import ndimage

from ..errors import InputError, InputReadError, PairingError
from ..io.cog import _write as write_cog_blocks  # the block writer behind write_cog (windowed products)
from ..io.cog import write_cog
from ..io.sources import Acquisition, BandAsset
from ..io.windows import SceneSpec, plan_blocks
from ..kernels import omnibus as omni
from ..kernels.sar import acd_composite, bright_target_change, estimate_enl, log_ratio, looks_like_db, to_db
from ..kernels.speckle import gamma_map_filter, lee_filter, refined_lee_filter
from ..kernels.thresholds import kittler_illingworth, otsu
from ..model import NO_CHANGE_CLASS, NO_DATA_CLASS, ChangeClass, ChangeResult, Scene
from .base import FitSummary, Preset, PresetParams, WindowOutput
from .registry import register

__all__ = [
    "S1_CLASSES",
    "S1Params",
    "LogRatioPreset",
    "OmnibusPreset",
    "FloodPreset",
    "BrightTargetPreset",
    "detect_units",
    "UNCALIBRATED_NOTE",
    "DEFAULT_ENL",
]

INCREASE, DECREASE, MIXED = 1, 2, 3
S1_CLASSES = (
    ChangeClass(
        INCREASE, "increase", (0, 220, 255), "backscatter increase (new structure, object, vegetation)"
    ),
    ChangeClass(DECREASE, "decrease", (255, 40, 40), "backscatter decrease (flooding, clearing, removal)"),
)
OMNIBUS_CLASSES = (
    *S1_CLASSES,
    ChangeClass(MIXED, "mixed", (255, 200, 0), "polarisations changed in opposite directions"),
)
FLOOD_CLASSES = (
    ChangeClass(
        DECREASE,
        "decrease",
        (30, 90, 255),
        "flood: backscatter decreased to the open-water level (dark after, darker than before)",
    ),
)

#: STAC property written for Earth Search ``sentinel-1-grd`` (amplitude DN) inputs.
UNCALIBRATED_NOTE = "uncalibrated GRD DN² intensity"
#: Equivalent number of looks of Sentinel-1 IW GRDH (used when it can neither be
#: estimated from the data nor read from ``sar:looks_equivalent_number``).
DEFAULT_ENL = 4.4
_CO_POL_FIRST = ("vv", "hh", "vh", "hv")
_SAMPLE_SIZE = 256
_MIN_SAMPLE = 100

Pol = Literal["vv", "vh", "hh", "hv"]
SpeckleFilter = Literal["lee", "refined-lee", "gamma-map", "none"]
ThresholdMethod = Literal["kittler-illingworth", "otsu"]
PositiveFloat = Annotated[float, Field(gt=0)]

_FILTERS: dict[str, Callable[..., NDArray[np.float32]]] = {
    "lee": lee_filter,
    "refined-lee": refined_lee_filter,
    "gamma-map": gamma_map_filter,
}


# -- parameters -----------------------------------------------------------------


class S1Params(PresetParams):
    """Parameters every Sentinel-1 preset shares."""

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


class _SinglePolParams(S1Params):
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


# -- units ----------------------------------------------------------------------

_UNIT_WORDS = {
    "db": "db",
    "decibel": "db",
    "decibels": "db",
    "linear": "linear",
    "power": "linear",
    "intensity": "linear",
    "natural": "linear",
    "dn": "dn",
    "amplitude": "dn",
}


def _metadata_units(acq: Acquisition, asset: BandAsset) -> tuple[str | None, str]:
    """Units stated by the input itself, and where that statement comes from."""
    if asset.units in ("linear", "db", "dn"):
        return asset.units, "asset"
    word = str(acq.properties.get("units") or acq.properties.get("unit") or "").strip().lower()
    if word in _UNIT_WORDS:
        return _UNIT_WORDS[word], "raster tag 'units'"
    href = asset.href.lower()
    if ".rtc." in href or acq.id.lower().endswith("_rtc"):
        return "linear", "STAC sentinel-1-rtc (linear gamma0)"
    if "sentinel-s1-l1c" in href or (
        str(acq.properties.get("sar:product_type", "")).upper() == "GRD" and "/measurement/" in href
    ):
        return "dn", "STAC sentinel-1-grd (GRD amplitude DN)"
    return None, ""


def _sample(asset: BandAsset) -> NDArray[np.float64]:
    """A decimated sample (at most 256 x 256, from overviews where present) of
    ``asset`` as scaled values, NaN where nodata. I/O edge of the unit check."""
    try:
        with rasterio.open(asset.href) as ds:
            f = max(1, math.ceil(max(ds.height, ds.width) / _SAMPLE_SIZE))
            shape = (max(1, ds.height // f), max(1, ds.width // f))
            raw = ds.read(asset.band_index, out_shape=shape, resampling=Resampling.nearest)
            nodata = asset.nodata if asset.nodata is not None else ds.nodata
    except rasterio.errors.RasterioError as exc:
        raise InputReadError(f"cannot read {asset.href} to check its units: {exc}") from exc
    x = raw.astype(np.float64)
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        x[raw == nodata] = np.nan
    return x * asset.scale + asset.offset


def _value_units(values: NDArray[np.floating]) -> str | None:
    """What the values look like: 'db', 'linear', 'dn' (large non-negative
    numbers: amplitude DN), or None when too few values are valid to tell."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < _MIN_SAMPLE:
        return None
    if float(np.mean(v < 0)) < 0.01 and float(np.median(v)) > 40.0:
        return "dn"
    return "db" if looks_like_db(v) else "linear"


def _describe(values: NDArray[np.floating]) -> str:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return f"{100 * float(np.mean(v < 0)):.0f} % negative, median {float(np.median(v)):.3g}"


def detect_units(
    acq: Acquisition, band: str, declared: str = "auto", sample: NDArray[np.floating] | None = None
) -> tuple[str, str]:
    """Units of one band of ``acq`` ('db', 'linear' or 'dn') and how they were found.

    ``declared`` 'db' / 'linear' is checked against the metadata and the values
    (``sample``, read from the file when not given); a contradiction raises an
    ``InputError`` that names the units the data have and the fix.
    """
    asset = acq.assets[band]
    meta, source = _metadata_units(acq, asset)
    name = f"{acq.id or acq.href} band {band.upper()}"
    if meta == "dn" and declared != "auto":
        raise InputError(
            f"{name} is an uncalibrated GRD amplitude (DN) product ({source}), not {declared!r} backscatter; "
            "use units='auto' (it is read as DN² intensity and marked uncalibrated) or give calibrated data"
        )
    if declared == "auto" and meta is not None:
        return meta, source
    values = _sample(asset) if sample is None else np.asarray(sample, dtype=np.float64)
    seen = _value_units(values)
    if declared == "auto":
        if seen is None:
            return "linear", "default (too few valid values to tell)"
        return seen, f"values ({_describe(values)})"
    if seen is not None and seen != declared:
        looks = {"db": "dB", "linear": "linear power", "dn": "amplitude DN (not backscatter)"}[seen]
        fix = {"db": "units='db'", "linear": "units='linear'", "dn": "units='auto'"}[seen]
        raise InputError(
            f"{name} was declared {declared!r} but its values look like {looks} ({_describe(values)}); "
            f"declare {fix} or leave units='auto'"
        )
    return declared, "declared"


# -- helpers --------------------------------------------------------------------


def _pols(acq: Acquisition) -> list[str]:
    return [p for p in _CO_POL_FIRST if p in acq.assets]


def _is_uncalibrated(acq: Acquisition) -> bool:
    """True when ``prepare`` found GRD amplitude DN in any band of ``acq``."""
    return any(u.get("units") == "dn" for u in acq.properties.get("eowatch:units", {}).values())


def _primary(bands: Sequence[str], wanted: str) -> str:
    if wanted != "auto":
        return wanted
    for p in _CO_POL_FIRST:
        if p in bands:
            return p
    raise InputError(f"no Sentinel-1 polarisation band (VV, VH, HH, HV) among {list(bands)}")


def _masked(scene: Scene, band: str) -> NDArray[np.float64]:
    """One band as float64 intensity, NaN outside the scene's valid mask."""
    return np.where(scene.valid, scene.band(band), np.nan).astype(np.float64)


def _metadata_enl(scene: Scene) -> float | None:
    try:
        v = float(scene.properties.get("sar:looks_equivalent_number"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def _enl(images: Sequence[NDArray[np.floating]], scene: Scene, given: float | str) -> tuple[float, str]:
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


def _despeckle(
    x: NDArray[np.float64], scene: Scene, params: Any, enl: tuple[float, str] | None = None
) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """Speckle-filtered intensity (NaN stays NaN) and how it was filtered; ``enl``
    (value, source) is estimated from ``x`` unless given (a windowed run's fit)."""
    if params.speckle_filter == "none":
        return x, {"filter": "none"}
    value, source = enl if enl is not None else _enl([x], scene, params.enl)
    out = _FILTERS[params.speckle_filter](x, params.window, value).astype(np.float64)
    return out, _speckle_info(params, value, source)


def _speckle_info(params: Any, enl: float, source: str) -> dict[str, Any]:
    return {
        "filter": params.speckle_filter,
        "window": params.window,
        "enl": round(enl, 3),
        "enl_source": source,
    }


def _speckle_halo(params: Any) -> int:
    """How far a speckle filter reaches: ``window // 2`` for Lee and Gamma-MAP (box
    window) and for refined Lee too (its 3x3 sub-window means of side ``s`` lie
    ``s - 1`` apart: ``(s - 1) + (s - 1) / 2 = (3 s - 3) / 2 = window // 2``)."""
    return 0 if params.speckle_filter == "none" else params.window // 2


def _threshold(values: NDArray[np.floating], method: str) -> float | None:
    """Automatic threshold of ``values`` (None when too few distinct values)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < _MIN_SAMPLE:
        return None
    try:
        return kittler_illingworth(v) if method == "kittler-illingworth" else otsu(v)
    except ValueError:
        return None


def _classes_from(
    inc: NDArray[np.bool_], dec: NDArray[np.bool_], valid: NDArray[np.bool_]
) -> NDArray[np.uint8]:
    out = np.full(valid.shape, NO_CHANGE_CLASS, dtype=np.uint8)
    out[inc & valid] = INCREASE
    out[dec & valid] = DECREASE
    out[~valid] = NO_DATA_CLASS
    return out


def _density(mask: NDArray[np.bool_], valid: NDArray[np.bool_], window: int) -> NDArray[np.float32]:
    """Fraction of the valid pixels of each ``window`` x ``window`` neighbourhood
    where ``mask`` is set (NaN-aware mean; NaN where no pixel is valid)."""
    num = ndimage.uniform_filter((mask & valid).astype(np.float32), window, mode="reflect")
    den = ndimage.uniform_filter(valid.astype(np.float32), window, mode="reflect")
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = num / den
    return np.where(den > 1e-6, frac, np.nan).astype(np.float32)


# -- windowed runs ---------------------------------------------------------------------
#
# The block engine (``eowatch.blockwise``) fits global statistics on a sample and
# applies them window by window. What each S1 preset fits on the sample: the ENL
# of each date (``estimate_enl``: the median local ENL of the 10 % most homogeneous
# 7x7 blocks) and the automatic thresholds (Otsu / Kittler-Illingworth histograms of
# the filtered dB values or log-ratios). Both are distribution statistics: the
# default sample (64 full-resolution windows on a stratified 8 x 8 lattice, 2 M
# pixels) holds ~40 000 7x7 blocks for the ENL and a 256-bin histogram with
# ~8 000 pixels per bin on average, so sampling moves a threshold by a fraction
# of a bin (0.1-0.3 dB on a 30 dB range); a scene of at most ``scene_sample_px``
# pixels is its own sample, and then windowed == whole-scene. The sample windows
# are stacked row after row and filtered together: a filter mixes two sample
# windows only on the ``window // 2`` rows where they meet (< 2 % of a 177-row
# window), which a histogram does not see.
# Speckle filters and the flood density filter read a halo around each window
# (``halo``) that covers their reach, so every kept pixel sees exactly the
# neighbourhood it has in the whole scene.


@dataclass
class _S1Fit:
    """What a windowed S1 run fits on the sample: the band(s), the ENL per date
    (or of the series), thresholds and provenance metadata."""

    pols: list[str]
    enl: dict[str, tuple[float, str]]
    thresholds: dict[str, float | None]
    metadata: dict[str, Any] = field(default_factory=dict)


def _fit_speckle(before: Scene, after: Scene, params: Any) -> tuple[str, dict[str, tuple[float, str]]]:
    """The analysed polarisation and each date's filter ENL, from the sample."""
    pol = _primary(before.bands, params.polarisation)
    if params.speckle_filter == "none":
        return pol, {}
    return pol, {
        role: _enl([_masked(scene, pol)], scene, params.enl)
        for role, scene in (("before", before), ("after", after))
    }


def _filtered(
    before: Scene, after: Scene, params: Any, pol: str, enl: dict[str, tuple[float, str]]
) -> tuple[NDArray[np.float64], NDArray[np.float64], dict[str, Any]]:
    """Both dates' filtered intensities and how each was filtered (ENL estimated per
    date unless ``enl`` gives it)."""
    b, fb = _despeckle(_masked(before, pol), before, params, enl.get("before"))
    a, fa = _despeckle(_masked(after, pol), after, params, enl.get("after"))
    return b, a, {"before": fb, "after": fa}


def _one_minus(p: NDArray[np.floating]) -> NDArray[np.float32]:
    """Omnibus confidence 1 - p from the p-value statistic."""
    return (1.0 - np.asarray(p, dtype=np.float64)).astype(np.float32)


def _one_minus_power(neg_log10_p: NDArray[np.floating]) -> NDArray[np.float32]:
    """Omnibus confidence 1 - p from the -log10 p statistic."""
    return (1.0 - 10.0 ** -np.asarray(neg_log10_p, dtype=np.float64)).astype(np.float32)


def _decrease_confidence(lr: NDArray[np.floating], threshold: float | None) -> NDArray[np.float32]:
    """Flood confidence of a windowed run, from the log-ratio (the whole-scene run's
    candidate density is not kept): 0.5 at the decrease threshold, 1 at twice as far
    below it (scale: the threshold's magnitude, at least 1 dB)."""
    if threshold is None:
        return np.full(np.shape(lr), np.nan, dtype=np.float32)
    scale = max(abs(threshold), 1.0)
    return np.clip(0.5 + (threshold - np.asarray(lr, dtype=np.float64)) / (2.0 * scale), 0.0, 1.0).astype(
        np.float32
    )


def _change_confidence(diff: NDArray[np.floating], min_change_db: float) -> NDArray[np.float32]:
    """Bright-target confidence: |change| over twice the smallest change reported (NaN stays NaN)."""
    return np.clip(np.abs(np.asarray(diff, dtype=np.float64)) / (2.0 * min_change_db), 0.0, 1.0).astype(
        np.float32
    )


def _write_acd_windowed(
    dest: Path,
    acqs: Sequence[Acquisition],
    band: str,
    result: ChangeResult,
    vmin: float,
    vmax: float,
    descriptions: list[str],
    tags: dict[str, str],
) -> None:
    """The ACD composite of a windowed run, read, scaled to uint8 and written one
    1024-px window at a time into a tiled GeoTIFF, then copied to a COG (``io.cog``'s
    block writer): full resolution, no whole-scene float array. Pixels that are no
    data in the change map (either date's nodata, outside the AOI) are 0."""
    grid = result.grid
    readers = [SceneSpec(acq, grid, (band,)).open() for acq in acqs]

    def blocks() -> Iterator[tuple[Window, NDArray[np.uint8]]]:
        for block in plan_blocks(grid, 1024):
            dbs = [to_db(_masked(reader.read(block)[0], band)) for reader in readers]
            rgb = acd_composite(dbs[0], dbs[1], vmin, vmax)
            rows = slice(block.row, block.row + block.height)
            cols = slice(block.col, block.col + block.width)
            rgb[:, result.classes[rows, cols] == NO_DATA_CLASS] = 0
            yield Window(block.col, block.row, block.width, block.height), rgb

    try:
        write_cog_blocks(
            dest,
            grid,
            np.dtype(np.uint8),
            3,
            blocks(),
            nodata=None,
            colormap=None,
            band_descriptions=descriptions,
            tags=tags,
            resampling="average",
            blocksize=512,
            compress="DEFLATE",
        )
    finally:
        for reader in readers:
            reader.close()


# -- the shared preset behaviour -----------------------------------------------------


class _S1Preset(Preset):
    sensor = "sentinel-1"
    Params = S1Params

    def __init__(self) -> None:
        self._common: list[str] | None = None
        self._pairing: dict[str, Any] = {}
        self._acqs: list[Acquisition] = []  # the prepared inputs (a windowed run's products read them)

    # inputs

    def prepare(self, acq: Acquisition, params: Any) -> Acquisition:
        """Set each polarisation band's units (see the module docstring)."""
        assets = dict(acq.assets)
        found: dict[str, dict[str, str]] = {}
        for band in _pols(acq):
            units, source = detect_units(acq, band, params.units)
            assets[band] = dataclasses.replace(acq.assets[band], units=units)
            found[band] = {"units": units, "source": source}
        return dataclasses.replace(acq, assets=assets, properties={**acq.properties, "eowatch:units": found})

    def check_pair(self, before: Acquisition, after: Acquisition, params: Any) -> None:
        """Same relative orbit, pass and common polarisations, else ``PairingError``."""
        self.check_series([before, after], params)

    def check_series(self, acqs: Sequence[Acquisition], params: Any) -> None:
        """The pairing rules across every acquisition of a series (first vs each other)."""
        first = acqs[0]
        hard: list[str] = []
        waivable: list[str] = []
        unchecked: list[str] = []
        for key, label in (("sat:relative_orbit", "relative orbit"), ("sat:orbit_state", "pass direction")):
            values = [a.properties.get(key) for a in acqs]
            known = {str(v).lower() for v in values if v is not None}
            if len(known) > 1:
                listing = ", ".join(f"{a.id}: {v}" for a, v in zip(acqs, values, strict=True))
                waivable.append(f"different {label}s ({listing})")
            if any(v is None for v in values):
                lacking = [a.id for a, v in zip(acqs, values, strict=True) if v is None]
                unchecked.append(f"{label} (no {key} metadata on {lacking})")
        common = [p for p in _CO_POL_FIRST if all(p in a.assets for a in acqs)]
        if not common:
            listing = "; ".join(f"{a.id}: {[p.upper() for p in _pols(a)] or 'none'}" for a in acqs)
            hard.append(f"no common polarisation ({listing})")
        wanted = self._wanted_pols(params)
        missing = [p for p in wanted if p not in common] if common else []
        if missing:
            hard.append(
                f"polarisation(s) {[p.upper() for p in missing]} asked for are not in every input "
                f"(common: {[p.upper() for p in common]})"
            )
        calibrated = {a.id: _is_uncalibrated(a) for a in acqs}
        if len(set(calibrated.values())) > 1:
            hard.append(
                "mixing uncalibrated GRD amplitude DN with calibrated backscatter "
                f"(uncalibrated: {[k for k, v in calibrated.items() if v]})"
            )
        if waivable and not params.allow_mismatched_orbits:
            hard.append(
                "; ".join(waivable) + " - choose acquisitions from the same relative orbit and pass, "
                "or set allow_mismatched_orbits=true to compare them anyway"
            )
        if hard:
            raise PairingError(
                f"cannot compare {', '.join(a.id for a in acqs)}: "
                + "; ".join(hard)
                + ". Sentinel-1 dates are comparable only with the same orbit geometry and polarisations."
            )
        self._common = common
        self._acqs = list(acqs)
        self._pairing = {
            "relative_orbit": [first.properties.get("sat:relative_orbit")]
            + [a.properties.get("sat:relative_orbit") for a in acqs[1:]],
            "orbit_state": [a.properties.get("sat:orbit_state") for a in acqs],
            "common_polarisations": [p.upper() for p in common],
            "unchecked": unchecked,
            "mismatch_allowed": waivable,
        }

    def _wanted_pols(self, params: Any) -> list[str]:
        pol = getattr(params, "polarisation", "auto")
        if pol != "auto":
            return [pol]
        pols = getattr(params, "polarisations", "auto")
        return [] if pols == "auto" else list(pols)

    def bands(self, params: Any) -> tuple[str, ...]:
        wanted = self._wanted_pols(params)
        if wanted:
            return tuple(wanted)
        common = self._common or ["vv"]
        return (common[0],)

    # products

    def item_properties(self, before: Acquisition, after: Acquisition) -> dict[str, Any]:
        units = {
            "before": before.properties.get("eowatch:units"),
            "after": after.properties.get("eowatch:units"),
        }
        uncalibrated = any(u.get("units") == "dn" for side in units.values() if side for u in side.values())
        props: dict[str, Any] = {
            "eowatch:units": units,
            "eowatch:calibration": UNCALIBRATED_NOTE
            if uncalibrated
            else "calibrated backscatter as provided",
        }
        if uncalibrated:
            props["eowatch:calibration_note"] = (
                "Earth Search sentinel-1-grd assets are GRD amplitude digital numbers; they were squared to "
                "intensity without sigma0 calibration or noise removal. Log-ratios are meaningful between "
                "dates of the same orbit, absolute dB thresholds (water, bright targets) are not."
            )
        if self._pairing:
            props["eowatch:pairing"] = self._pairing
        return props

    def extra_products(
        self, before: Scene, after: Scene, result: ChangeResult
    ) -> tuple[dict[str, Any], dict[str, tuple[str, str, str]]]:
        """The ACD colour composite and, for series, the omnibus change maps."""
        from ..products.item import MEDIA_TYPES

        band = str(result.metadata.get("polarisation") or _primary(before.bands, "auto"))
        writers: dict[str, Any] = {}
        assets: dict[str, tuple[str, str, str]] = {}
        vmin, vmax = -25.0, 0.0

        descriptions = [
            f"red: before {band.upper()} dB",
            f"green: after {band.upper()} dB",
            f"blue: after {band.upper()} dB",
        ]
        tags = {"acd_scale_db": f"{vmin} to {vmax} -> 0 to 255"}
        # A windowed run passes one-pixel header scenes: read the inputs again, window by window.
        windowed = before.data.shape[1:] != result.grid.shape and len(self._acqs) == 2

        def write_acd(folder: Path) -> None:
            dest = Path(folder) / "acd_composite.tif"
            if windowed:
                _write_acd_windowed(dest, self._acqs, band, result, vmin, vmax, descriptions, tags)
                return
            rgb = acd_composite(to_db(_masked(before, band)), to_db(_masked(after, band)), vmin, vmax)
            write_cog(dest, rgb, result.grid, resampling="average", band_descriptions=descriptions, tags=tags)

        writers["acd_composite"] = write_acd
        assets["acd_composite"] = (
            "acd_composite.tif",
            f"ACD composite {band.upper()} (red = before, green/blue = after; {vmin:g}..{vmax:g} dB)",
            MEDIA_TYPES["cog"],
        )
        for key, (filename, title, nodata, descriptions) in _series_layers(result).items():
            layer = result.extra_layers[key]

            def write_layer(
                folder: Path,
                layer: NDArray[Any] = layer,
                filename: str = filename,
                nodata: float = nodata,
                descriptions: list[str] = descriptions,
            ) -> None:
                write_cog(
                    Path(folder) / filename, layer, result.grid, nodata=nodata, band_descriptions=descriptions
                )

            writers[key] = write_layer
            assets[key] = (filename, title, MEDIA_TYPES["cog"])
        return writers, assets


def _series_layers(result: ChangeResult) -> dict[str, tuple[str, str, float, list[str]]]:
    """File, title, nodata and band descriptions of each omnibus series layer in ``result``."""
    layers: dict[str, tuple[str, str, float, list[str]]] = {}
    specs = {
        "first_change": ("first_change.tif", "Interval of the first change (0 = none, -1 = no data)"),
        "last_change": ("last_change.tif", "Interval of the last change (0 = none, -1 = no data)"),
        "frequency": ("change_frequency.tif", "Number of changes (-1 = no data)"),
    }
    for key, (filename, title) in specs.items():
        if key in result.extra_layers:
            layers[key] = (filename, title, -1, [key])
    if "direction" in result.extra_layers:
        n = result.extra_layers["direction"].shape[0]
        layers["direction"] = (
            "change_direction.tif",
            "Direction per interval (0 none, 1 increase, 2 decrease, 3 mixed, 255 no data)",
            NO_DATA_CLASS,
            [f"interval {i}: date {i} -> date {i + 1}" for i in range(1, n + 1)],
        )
    return layers


# -- presets --------------------------------------------------------------------------


@register
class LogRatioPreset(_S1Preset):
    """Log-ratio of speckle-filtered intensities with automatic thresholds.

    ``threshold_mode='split'`` (default) computes one threshold on the positive
    log-ratios (increases) and one on the magnitudes of the negative ones
    (decreases), so an asymmetric scene (a flood: many strong decreases, few
    increases) gets a threshold fitted to each tail; ``'absolute'`` computes
    one threshold on ``|log-ratio|`` and takes the direction from the sign.
    Thresholds never go below ``min_change_db``.
    """

    name = "s1-logratio"
    summary = (
        "Log-ratio (dB) of speckle-filtered intensities, Kittler-Illingworth or Otsu thresholds per side; "
        "classes increase / decrease."
    )

    class Params(_SinglePolParams):
        threshold: ThresholdMethod = Field("kittler-illingworth", description="Automatic threshold method.")
        threshold_mode: Literal["split", "absolute"] = Field(
            "split",
            description="'split': separate thresholds for increases and decreases; "
            "'absolute': one threshold on |log-ratio|.",
        )
        min_change_db: float = Field(
            3.0, ge=0, description="Smallest change reported, in dB (a floor under the automatic thresholds)."
        )

    windowed = True

    def halo(self, params: Params) -> int:
        return _speckle_halo(params)

    @staticmethod
    def _log_ratio(
        before: Scene, after: Scene, params: Params, pol: str, enl: dict[str, tuple[float, str]]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_], dict[str, Any]]:
        b, a, speckle = _filtered(before, after, params, pol, enl)
        lr = log_ratio(b, a).astype(np.float64)
        return lr, before.valid & after.valid & np.isfinite(lr), speckle

    @staticmethod
    def _thresholds(lr: NDArray[np.float64], ok: NDArray[np.bool_], params: Params) -> tuple[float, float]:
        if params.threshold_mode == "split":
            t_inc = _threshold(lr[ok & (lr > 0)], params.threshold)
            t_dec = _threshold(-lr[ok & (lr < 0)], params.threshold)
        else:
            t_inc = t_dec = _threshold(np.abs(lr[ok]), params.threshold)
        t_inc = max(t_inc if t_inc is not None else 0.0, params.min_change_db)
        t_dec = max(t_dec if t_dec is not None else 0.0, params.min_change_db)
        return t_inc, t_dec

    @staticmethod
    def _classes(
        lr: NDArray[np.float64], ok: NDArray[np.bool_], t_inc: float, t_dec: float
    ) -> NDArray[np.uint8]:
        with np.errstate(invalid="ignore"):
            return _classes_from(ok & (lr > t_inc), ok & (lr < -t_dec), ok)

    @staticmethod
    def _confidence(lr: NDArray[np.floating], t_inc: float, t_dec: float) -> NDArray[np.float32]:
        with np.errstate(invalid="ignore"):
            scale = np.where(lr > 0, t_inc, t_dec)
            return np.clip(np.abs(lr) / (2.0 * np.maximum(scale, 1e-6)), 0.0, 1.0).astype(np.float32)

    def _metadata(self, params: Params, pol: str, speckle: dict[str, Any], t_inc: float, t_dec: float) -> Any:
        return {
            "polarisation": pol,
            "speckle": speckle,
            "threshold": params.threshold,
            "threshold_mode": params.threshold_mode,
            "increase_threshold_db": t_inc,
            "decrease_threshold_db": -t_dec,
            "signed_statistic": True,
        }

    def fit(self, before: Scene, after: Scene, params: Params) -> _S1Fit:
        pol, enl = _fit_speckle(before, after, params)
        lr, ok, speckle = self._log_ratio(before, after, params, pol, enl)
        t_inc, t_dec = self._thresholds(lr, ok, params)
        return _S1Fit([pol], enl, {"increase": t_inc, "decrease": t_dec}, {"speckle": speckle})

    def apply_window(self, before: Scene, after: Scene, params: Params, model: _S1Fit) -> WindowOutput:
        lr, ok, _ = self._log_ratio(before, after, params, model.pols[0], model.enl)
        t_inc, t_dec = float(model.thresholds["increase"]), float(model.thresholds["decrease"])  # type: ignore[arg-type]
        return WindowOutput(self._classes(lr, ok, t_inc, t_dec), np.where(ok, lr, np.nan).astype(np.float32))

    def summary_of(self, model: _S1Fit, params: Params) -> FitSummary:
        t_inc, t_dec = float(model.thresholds["increase"]), float(model.thresholds["decrease"])  # type: ignore[arg-type]
        return FitSummary(
            "log_ratio_db",
            S1_CLASSES,
            self._metadata(params, model.pols[0], model.metadata["speckle"], t_inc, t_dec),
            lambda lr: self._confidence(lr, t_inc, t_dec),
        )

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        pol = _primary(before.bands, params.polarisation)
        lr, ok, speckle = self._log_ratio(before, after, params, pol, {})
        t_inc, t_dec = self._thresholds(lr, ok, params)
        return ChangeResult(
            classes=self._classes(lr, ok, t_inc, t_dec),
            statistic=np.where(ok, lr, np.nan).astype(np.float32),
            statistic_name="log_ratio_db",
            class_table=S1_CLASSES,
            grid=before.grid,
            confidence=np.where(ok, self._confidence(lr, t_inc, t_dec), np.nan).astype(np.float32),
            metadata=self._metadata(params, pol, speckle, t_inc, t_dec),
        )


@register
class OmnibusPreset(_S1Preset):
    """The omnibus likelihood-ratio test (Conradsen et al. 2016) on the
    unfiltered intensities of every common polarisation (dual- or single-pol).

    A pair gives classes increase / decrease / mixed at level ``alpha``. A series
    (``eowatch.series.detect_series``, k > 2 dates) gives, per pixel, the
    direction of its last change as class, and the change maps first change,
    last change, frequency and per-interval direction as extra COG layers.
    The statistic is the p-value of the test over all dates (or -log10 p).
    """

    name = "s1-omnibus"
    summary = (
        "Omnibus likelihood-ratio test (Conradsen 2016, sequential form): p-values at significance alpha, "
        "pairs or series; classes increase / decrease / mixed."
    )

    class Params(S1Params):
        polarisations: tuple[Pol, ...] | Literal["auto"] = Field(
            "auto", description="Polarisations tested together: 'auto' = every one common to all dates."
        )
        alpha: float = Field(0.01, gt=0, lt=1, description="Significance level (false-alarm rate per test).")
        enl: PositiveFloat | Literal["auto"] = Field(
            "auto",
            description="Equivalent number of looks of the (unfiltered) intensities: a number, or 'auto' = "
            f"median estimate over dates and bands (else sar:looks_equivalent_number, else {DEFAULT_ENL}).",
        )
        statistic: Literal["p-value", "-log10p"] = Field(
            "p-value", description="Statistic layer: the p-value of the omnibus test, or -log10 of it."
        )

        @field_validator("polarisations", mode="before")
        @classmethod
        def _split(cls, v: object) -> object:
            if isinstance(v, str) and v != "auto":
                return tuple(s.strip().lower() for s in re.split(r"[,+ ]+", v) if s.strip())
            if isinstance(v, list | tuple):
                return tuple(str(s).lower() for s in v)
            return v

    def bands(self, params: Params) -> tuple[str, ...]:
        wanted = self._wanted_pols(params)
        return tuple(wanted or self._common or ["vv", "vh"])

    windowed = True  # pairs; series (k > 2 dates) go through run_series on whole scenes

    @staticmethod
    def _series_pols(scenes: Sequence[Scene], params: Params) -> list[str]:
        pols: list[str] = (
            list(params.polarisations)
            if params.polarisations != "auto"
            else [p for p in _CO_POL_FIRST if all(p in s.bands for s in scenes)]
        )
        if not pols:
            raise InputError(
                "no polarisation is common to every date; give dates with the same polarisations"
            )
        return pols

    @staticmethod
    def _pair_output(
        res: omni.OmnibusResult, params: Params
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.float64]]:
        """Classes, statistic and p-value of a two-date test."""
        classes = res.direction[0].copy()
        classes[~res.valid] = NO_DATA_CLASS
        p = res.p_overall.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = p if params.statistic == "p-value" else -np.log10(np.maximum(p, 1e-300))
        return classes.astype(np.uint8), np.where(res.valid, stat, np.nan).astype(np.float32), p

    def fit(self, before: Scene, after: Scene, params: Params) -> _S1Fit:
        pols = self._series_pols([before, after], params)
        images = [_masked(s, p) for s in (before, after) for p in pols]
        return _S1Fit(
            pols, {"series": _enl(images, before, params.enl)}, {}, {"scenes": [before.id, after.id]}
        )

    def apply_window(self, before: Scene, after: Scene, params: Params, model: _S1Fit) -> WindowOutput:
        series = np.stack([np.stack([_masked(s, p) for p in model.pols]) for s in (before, after)])
        res = omni.omnibus_change(series, model.enl["series"][0], params.alpha)
        classes, statistic, _ = self._pair_output(res, params)
        return WindowOutput(classes, statistic)

    def summary_of(self, model: _S1Fit, params: Params) -> FitSummary:
        enl, source = model.enl["series"]
        metadata = {
            "polarisation": model.pols[0],
            "polarisations": model.pols,
            "enl": round(enl, 3),
            "enl_source": source,
            "alpha": params.alpha,
            "dates": 2,
            "higher_is_change": params.statistic != "p-value",
            "scenes": model.metadata["scenes"],
        }
        if params.statistic == "p-value":
            return FitSummary("omnibus_p_value", OMNIBUS_CLASSES, metadata, _one_minus)
        return FitSummary("omnibus_neg_log10_p", OMNIBUS_CLASSES, metadata, _one_minus_power)

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        return self.run_series([before, after], params)

    def run_series(self, scenes: Sequence[Scene], params: Params) -> ChangeResult:
        """Test ``k >= 2`` co-registered scenes (in time order) together."""
        if len(scenes) < 2:
            raise InputError(f"the omnibus test needs at least 2 dates; got {len(scenes)}")
        pols = self._series_pols(scenes, params)
        series = np.stack([np.stack([_masked(s, p) for p in pols]) for s in scenes])
        enl, enl_source = _enl(
            [series[i, j] for i in range(len(scenes)) for j in range(len(pols))], scenes[0], params.enl
        )
        res = omni.omnibus_change(series, enl, params.alpha)
        k = len(scenes)
        valid = res.valid
        classes, statistic, p = self._pair_output(res, params)
        if k > 2:
            idx = np.clip(res.last_change.astype(np.int64) - 1, 0, k - 2)
            classes = np.take_along_axis(res.direction, idx[np.newaxis], axis=0)[0]
            classes = np.where(res.last_change > 0, classes, NO_CHANGE_CLASS).astype(np.uint8)
            classes[~valid] = NO_DATA_CLASS
        extra: dict[str, NDArray[Any]] = {}
        if k > 2:
            extra = {
                "first_change": res.first_change,
                "last_change": res.last_change,
                "frequency": res.frequency,
                "direction": res.direction,
            }
        metadata = {
            "polarisation": pols[0],
            "polarisations": pols,
            "enl": round(enl, 3),
            "enl_source": enl_source,
            "alpha": params.alpha,
            "dates": k,
            "higher_is_change": params.statistic != "p-value",
            "scenes": [s.id for s in scenes],
        }
        return ChangeResult(
            classes=classes.astype(np.uint8),
            statistic=statistic,
            statistic_name="omnibus_p_value" if params.statistic == "p-value" else "omnibus_neg_log10_p",
            class_table=OMNIBUS_CLASSES,
            grid=scenes[0].grid,
            confidence=np.where(valid, 1.0 - p, np.nan).astype(np.float32),
            extra_layers=extra,
            metadata=metadata,
        )


@register
class FloodPreset(_S1Preset):
    """Flood mapping by a backscatter decrease to the open-water level.

    Per date: speckle filter (refined Lee 7x7, ENL estimated per date) and dB.
    A pixel is a flood candidate where the after date is dark (below an
    automatic threshold of the after dB values: water) *and* the log-ratio is
    below an automatic threshold of the log-ratios (relatively darker than
    the rest of the scene; the threshold is not forced below 0 dB, as that
    loses 0.05 F1 on OMBRIA where the two dates' stretches differ). Flood is
    where more than ``density_fraction`` of the valid pixels of the
    ``density_window`` neighbourhood are candidates (removes speckle noise,
    fills ragged edges). With ``exclude_permanent_water`` pixels dark in both
    dates (below the same water threshold) are never flood; it is off by
    default because it drops OMBRIA's pooled F1 from 0.61 to 0.39 (the
    reference masks include such pixels). Scored on
    OMBRIA (``eowatch.evaluation.ombria``): pooled F1 0.61.
    """

    name = "s1-flood"
    summary = (
        "Flood: after-date open water (automatic threshold) with a log-ratio decrease, on refined-Lee "
        "filtered dB; neighbourhood density filter; optional permanent-water exclusion."
    )

    class Params(_SinglePolParams):
        threshold: ThresholdMethod = Field(
            "otsu", description="Automatic threshold for both the water level and the decrease."
        )
        density_window: int = Field(
            15, ge=1, le=101, description="Neighbourhood of the density filter (pixels)."
        )
        density_fraction: float = Field(
            0.2,
            ge=0,
            lt=1,
            description="Flood where more than this fraction of the neighbourhood is candidate.",
        )
        exclude_permanent_water: bool = Field(
            False, description="Pixels dark (below the water threshold) in both dates are not flood."
        )

    windowed = True

    def halo(self, params: Params) -> int:
        # The density filter counts candidates up to density_window // 2 away, and each
        # of those needs its own speckle-filter neighbourhood.
        return _speckle_halo(params) + (params.density_window // 2 if params.density_window > 1 else 0)

    @staticmethod
    def _db(
        before: Scene, after: Scene, params: Params, pol: str, enl: dict[str, tuple[float, str]]
    ) -> tuple[
        NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_], dict[str, Any]
    ]:
        """Filtered before / after dB, their log-ratio, where it is valid, and the filtering."""
        b, a, speckle = _filtered(before, after, params, pol, enl)
        bdb, adb = to_db(b).astype(np.float64), to_db(a).astype(np.float64)
        lr = adb - bdb
        return bdb, adb, lr, before.valid & after.valid & np.isfinite(lr), speckle

    @staticmethod
    def _map(
        bdb: NDArray[np.float64],
        adb: NDArray[np.float64],
        lr: NDArray[np.float64],
        ok: NDArray[np.bool_],
        t_water: float | None,
        t_lr: float | None,
        params: Params,
    ) -> tuple[NDArray[np.bool_], NDArray[np.float32], NDArray[np.bool_]]:
        """Flood, the candidate density and permanent water, given both thresholds."""
        if t_water is None or t_lr is None:
            candidate = np.zeros(ok.shape, dtype=bool)
            permanent = candidate
        else:
            with np.errstate(invalid="ignore"):
                candidate = ok & (adb < t_water) & (lr < t_lr)
                permanent = ok & (bdb < t_water) & (adb < t_water)
        if params.exclude_permanent_water:
            candidate &= ~permanent
        if params.density_window > 1:
            frac = _density(candidate, ok, params.density_window)
        else:
            frac = candidate.astype(np.float32)
        with np.errstate(invalid="ignore"):
            flood = ok & (frac > params.density_fraction)
        if params.exclude_permanent_water:
            flood &= ~permanent
        return flood, frac, permanent

    @staticmethod
    def _metadata(
        params: Params, pol: str, speckle: dict[str, Any], t_water: Any, t_lr: Any, permanent: float
    ) -> dict[str, Any]:
        return {
            "polarisation": pol,
            "speckle": speckle,
            "threshold": params.threshold,
            "water_threshold_db": t_water,
            "decrease_threshold_db": t_lr,
            "permanent_water_fraction": round(permanent, 6),
            "signed_statistic": True,
        }

    def fit(self, before: Scene, after: Scene, params: Params) -> _S1Fit:
        pol, enl = _fit_speckle(before, after, params)
        bdb, adb, lr, ok, speckle = self._db(before, after, params, pol, enl)
        t_water, t_lr = _threshold(adb[ok], params.threshold), _threshold(lr[ok], params.threshold)
        _, _, permanent = self._map(bdb, adb, lr, ok, t_water, t_lr, params)
        # The permanent-water fraction is the sample's (the whole scene's when it is its own sample).
        fraction = float(permanent[ok].mean()) if ok.any() else 0.0
        return _S1Fit(
            [pol], enl, {"water": t_water, "decrease": t_lr}, {"speckle": speckle, "permanent": fraction}
        )

    def apply_window(self, before: Scene, after: Scene, params: Params, model: _S1Fit) -> WindowOutput:
        bdb, adb, lr, ok, _ = self._db(before, after, params, model.pols[0], model.enl)
        t = model.thresholds
        flood, _, _ = self._map(bdb, adb, lr, ok, t["water"], t["decrease"], params)
        return WindowOutput(
            _classes_from(np.zeros_like(flood), flood, ok), np.where(ok, lr, np.nan).astype(np.float32)
        )

    def summary_of(self, model: _S1Fit, params: Params) -> FitSummary:
        t = model.thresholds
        m = model.metadata
        return FitSummary(
            "log_ratio_db",
            FLOOD_CLASSES,
            self._metadata(params, model.pols[0], m["speckle"], t["water"], t["decrease"], m["permanent"]),
            partial(_decrease_confidence, threshold=t["decrease"]),
        )

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        pol = _primary(before.bands, params.polarisation)
        bdb, adb, lr, ok, speckle = self._db(before, after, params, pol, {})
        t_water = _threshold(adb[ok], params.threshold)
        t_lr = _threshold(lr[ok], params.threshold)
        flood, frac, permanent = self._map(bdb, adb, lr, ok, t_water, t_lr, params)
        classes = _classes_from(np.zeros_like(flood), flood, ok)
        fraction = float(permanent[ok].mean()) if ok.any() else 0.0
        return ChangeResult(
            classes=classes,
            statistic=np.where(ok, lr, np.nan).astype(np.float32),
            statistic_name="log_ratio_db",
            class_table=FLOOD_CLASSES,
            grid=before.grid,
            confidence=np.where(ok, frac, np.nan).astype(np.float32),
            metadata=self._metadata(params, pol, speckle, t_water, t_lr, fraction),
        )


@register
class BrightTargetPreset(_S1Preset):
    """The bright-target rule of satellite centres: change of more than
    ``min_change_db`` where the brighter date is above ``bright_db`` and both
    are above ``floor_db``. Increase = a target appeared, decrease = it left."""

    name = "s1-bright-targets"
    summary = (
        "Bright targets appearing/disappearing: |change| > 10 dB where one date is brighter than -13 dB, "
        "both above -40 dB."
    )

    class Params(_SinglePolParams):
        speckle_filter: SpeckleFilter = Field(
            "lee", description="Speckle filter applied before the rule (small window keeps point targets)."
        )
        window: int = Field(3, ge=3, le=31, description="Speckle filter window (odd, pixels).")
        min_change_db: float = Field(10.0, gt=0, description="Smallest |after - before| change, dB.")
        bright_db: float = Field(-13.0, description="The brighter date must exceed this, dB.")
        floor_db: float = Field(-40.0, description="Both dates must exceed this (noise floor, shadow), dB.")
        min_area_m2: float = Field(
            200.0, ge=0, description="Minimum mapping unit, m² (targets are small: a few 10 m pixels)."
        )

    windowed = True

    def halo(self, params: Params) -> int:
        return _speckle_halo(params)

    @staticmethod
    def _rule(
        before: Scene, after: Scene, params: Params, pol: str, enl: dict[str, tuple[float, str]]
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32], NDArray[np.float64], dict[str, Any]]:
        """Classes, statistic, |change| and the filtering of the bright-target rule."""
        b, a, speckle = _filtered(before, after, params, pol, enl)
        bdb, adb = to_db(b), to_db(a)
        codes = bright_target_change(bdb, adb, params.min_change_db, params.bright_db, params.floor_db)
        ok = before.valid & after.valid & (codes != NO_DATA_CLASS)
        diff = (adb.astype(np.float64) - bdb).astype(np.float64)
        classes = _classes_from(codes == INCREASE, codes == DECREASE, ok)
        return classes, np.where(ok, diff, np.nan).astype(np.float32), np.where(ok, diff, np.nan), speckle

    @staticmethod
    def _metadata(params: Params, pol: str, speckle: dict[str, Any]) -> dict[str, Any]:
        rule = {
            "min_change_db": params.min_change_db,
            "bright_db": params.bright_db,
            "floor_db": params.floor_db,
        }
        return {"polarisation": pol, "speckle": speckle, "signed_statistic": True, "rule": rule}

    def fit(self, before: Scene, after: Scene, params: Params) -> _S1Fit:
        pol, enl = _fit_speckle(before, after, params)
        speckle = {role: _speckle_info(params, *e) for role, e in enl.items()} or {
            "before": {"filter": "none"},
            "after": {"filter": "none"},
        }
        return _S1Fit([pol], enl, {}, {"speckle": speckle})

    def apply_window(self, before: Scene, after: Scene, params: Params, model: _S1Fit) -> WindowOutput:
        classes, statistic, _, _ = self._rule(before, after, params, model.pols[0], model.enl)
        return WindowOutput(classes, statistic)

    def summary_of(self, model: _S1Fit, params: Params) -> FitSummary:
        return FitSummary(
            "db_difference",
            S1_CLASSES,
            self._metadata(params, model.pols[0], model.metadata["speckle"]),
            partial(_change_confidence, min_change_db=params.min_change_db),
        )

    def run(self, before: Scene, after: Scene, params: Params) -> ChangeResult:
        pol = _primary(before.bands, params.polarisation)
        classes, statistic, diff, speckle = self._rule(before, after, params, pol, {})
        return ChangeResult(
            classes=classes,
            statistic=statistic,
            statistic_name="db_difference",
            class_table=S1_CLASSES,
            grid=before.grid,
            confidence=_change_confidence(diff, params.min_change_db),
            metadata=self._metadata(params, pol, speckle),
        )
