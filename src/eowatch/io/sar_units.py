"""Units of Sentinel-1 inputs: what the values of each polarisation band are
(linear power, dB, or uncalibrated GRD amplitude DN), from metadata or the values.

``units="auto"`` takes them from metadata (asset units, a ``units`` tag, the STAC
collection: Planetary Computer ``sentinel-1-rtc`` = linear gamma0, Earth Search
``sentinel-1-grd`` = uncalibrated amplitude DN), else from the values
(:func:`~eowatch.kernels.sar.looks_like_db` on a decimated sample). A declared
``"db"`` or ``"linear"`` that the values contradict is an ``InputError`` naming the
fix. ``with_units`` records the answer on the acquisition (``BandAsset.units``, read
as linear power by ``eowatch.io.load``, and ``eowatch:units`` for provenance).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling

from ..errors import InputError
from ..kernels.sar import looks_like_db
from .remote import open_raster, read_failure
from .sources import Acquisition, BandAsset

__all__ = [
    "detect_units",
    "with_units",
    "is_uncalibrated",
    "calibration_properties",
    "SAR_POLARISATIONS",
    "UNCALIBRATED_NOTE",
    "GRD_PROCESSING",
]

#: Sentinel-1 polarisations, co-polarisations first (the default band of single-band presets).
SAR_POLARISATIONS = ("vv", "hh", "vh", "hv")
#: Acquisition property of GRD products geocoded by eowatch: how (``eowatch.io.s1_ard``).
GRD_PROCESSING = "eowatch:s1_processing"
#: STAC property written for Earth Search ``sentinel-1-grd`` (amplitude DN) inputs.
UNCALIBRATED_NOTE = "uncalibrated GRD DN² intensity"
_SAMPLE_SIZE = 256
_MIN_SAMPLE = 100

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
        with open_raster(asset.href, "cannot read (to check its units)") as ds:
            f = max(1, math.ceil(max(ds.height, ds.width) / _SAMPLE_SIZE))
            shape = (max(1, ds.height // f), max(1, ds.width // f))
            raw = ds.read(asset.band_index, out_shape=shape, resampling=Resampling.nearest)
            nodata = asset.nodata if asset.nodata is not None else ds.nodata
    except rasterio.errors.RasterioError as exc:
        raise read_failure(asset.href, exc, "cannot read (to check its units)") from exc
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


def with_units(acq: Acquisition, declared: str = "auto") -> Acquisition:
    """``acq`` with the units of each polarisation band found (``detect_units``) and
    recorded in ``eowatch:units``."""
    assets = dict(acq.assets)
    found: dict[str, dict[str, str]] = {}
    for band in (p for p in SAR_POLARISATIONS if p in acq.assets):
        units, source = detect_units(acq, band, declared)
        assets[band] = dataclasses.replace(acq.assets[band], units=units)
        found[band] = {"units": units, "source": source}
    return dataclasses.replace(acq, assets=assets, properties={**acq.properties, "eowatch:units": found})


def is_uncalibrated(acq: Acquisition) -> bool:
    """True when ``with_units`` found GRD amplitude DN in any band of ``acq``."""
    return any(u.get("units") == "dn" for u in acq.properties.get("eowatch:units", {}).values())


def calibration_properties(before: Acquisition, after: Acquisition) -> dict[str, Any]:
    """STAC Item properties saying what the backscatter of both dates was."""
    units = {
        "before": before.properties.get("eowatch:units"),
        "after": after.properties.get("eowatch:units"),
    }
    uncalibrated = any(u.get("units") == "dn" for side in units.values() if side for u in side.values())
    processing = {
        "before": before.properties.get(GRD_PROCESSING),
        "after": after.properties.get(GRD_PROCESSING),
    }
    if processing["before"] or processing["after"]:  # GRD products calibrated by eowatch.io.s1_ard
        calibration = " / ".join(
            sorted(
                {
                    f"{p['calibration']} calibrated by eowatch from GRD, thermal noise removed"
                    for p in processing.values()
                    if p
                }
            )
        )
    else:
        calibration = UNCALIBRATED_NOTE if uncalibrated else "calibrated backscatter as provided"
    props: dict[str, Any] = {"eowatch:units": units, "eowatch:calibration": calibration}
    if processing["before"] or processing["after"]:
        props[GRD_PROCESSING] = processing
    if uncalibrated:
        props["eowatch:calibration_note"] = (
            "Earth Search sentinel-1-grd assets are GRD amplitude digital numbers; they were squared to "
            "intensity without sigma0 calibration or noise removal. Log-ratios are meaningful between "
            "dates of the same orbit, absolute dB thresholds (water, bright targets) are not."
        )
    return props
