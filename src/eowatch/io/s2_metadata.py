"""Sentinel-2 product metadata: processing level and baseline, radiometry (quantification
value and per-band offsets) and sun/view angles, from the product's own XML
(``MTD_MSIL1C.xml`` / ``MTD_MSIL2A.xml``, the granule's ``MTD_TL.xml``) or a STAC Item.

Radiometry. Since processing baseline 04.00 (25 January 2022) the digital numbers of
L1C and L2A products are shifted by a band-dependent constant (``RADIO_ADD_OFFSET`` for
L1C, ``BOA_ADD_OFFSET`` for L2A, so far always -1000) to encode negative values:
reflectance = (DN + offset) / QUANTIFICATION_VALUE (ESA, Sentinel-2 Products
Specification Document, PSD 14.9; sentiwiki "S2 Products"). DN 0 stays "no data".
Every source of the same scene must give the same reflectance, so the offset is read
where the product declares it:

* SAFE / MTD XML: the lists above and ``(BOA_)QUANTIFICATION_VALUE``;
* STAC Items: ``raster:bands`` scale/offset, except Earth Search's ``sentinel-2-l2a``
  items with ``earthsearch:boa_offset_applied: true``, whose COGs were already shifted
  (the collection documents offset 0; the items' -0.1 is a known catalogue error,
  Element84/earth-search#71); Planetary Computer items carry no ``raster:bands``: the
  baseline decides (>= 04.00: -1000 DN).

A declared offset that the pixels contradict (harmonised data whose metadata still
declares the shift) is caught by :func:`check_offset_not_applied`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from ..errors import InputError
from .sources import BandAsset

__all__ = [
    "SATURATED_DN",
    "saturation_marked",
    "BAND_IDS",
    "Radiometry",
    "ProductMetadata",
    "TileAngles",
    "parse_product_metadata",
    "parse_tile_angles",
    "item_radiometry",
    "item_angles",
    "check_offset_not_applied",
    "PROVENANCE_KEYS",
]

#: ``band_id`` / ``bandId`` of the product XML -> band name (PSD order).
BAND_IDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
#: The first baseline whose digital numbers carry the radiometric offset.
OFFSET_BASELINE = 4.0
#: The offset of baselines >= 04.00 when a source does not state it (every product so far).
DEFAULT_OFFSET_DN = -1000.0
#: Acquisition properties that go into a product's provenance of each input.
PROVENANCE_KEYS = (
    "processing:level",
    "s2:processing_baseline",
    "eowatch:radiometry",
    "view:sun_azimuth",
    "view:sun_elevation",
    "view:incidence_angle",
    "view:azimuth",
)
#: More than this share of pixels below zero after the declared offset: it was applied already.
_NEGATIVE_SHARE_MAX = 0.05


@dataclass(frozen=True)
class Radiometry:
    """How one product's digital numbers become reflectance: ``DN * scale + offsets[band]``."""

    scale: float = 1e-4
    offsets: Mapping[str, float] = field(default_factory=dict)  # reflectance units (e.g. -0.1)
    source: str = "assumed: DN / 10000, no offset"

    def offset(self, band: str) -> float:
        return float(self.offsets.get(band, 0.0))

    def as_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "offsets": dict(self.offsets), "source": self.source}

    def apply(self, assets: Mapping[str, BandAsset]) -> dict[str, BandAsset]:
        """``assets`` scaled by this radiometry (the SCL classes are not reflectance), their
        saturated pixels marked (``saturation_marked``)."""
        scaled = {
            band: asset if band == "SCL" else replace(asset, scale=self.scale, offset=self.offset(band))
            for band, asset in assets.items()
        }
        return saturation_marked(scaled)


#: The number of a saturated pixel in every Sentinel-2 band file, L1C and L2A, all baselines
#: (the products' ``Special_Values``: NODATA 0, SATURATED 65535).
SATURATED_DN = 65535


def saturation_marked(assets: Mapping[str, BandAsset]) -> dict[str, BandAsset]:
    """``assets`` with ``SATURATED_DN`` read as no valid data (in L2A the SCL also flags
    saturated pixels, class 1; in L1C only the number does)."""
    return {band: a if band == "SCL" else replace(a, saturated=SATURATED_DN) for band, a in assets.items()}


@dataclass(frozen=True)
class ProductMetadata:
    """What the product-level XML says."""

    level: str  # "L1C" or "L2A"
    baseline: str | None
    radiometry: Radiometry
    product_uri: str
    datetime: datetime | None
    spacecraft: str | None
    #: Band files relative to the SAFE root, without extension, as listed (IMAGE_FILE).
    image_files: tuple[str, ...]

    def properties(self) -> dict[str, Any]:
        """STAC-style properties of the acquisition."""
        props: dict[str, Any] = {
            "processing:level": self.level,
            "eowatch:radiometry": self.radiometry.as_dict(),
            "constellation": "sentinel-2",
        }
        if self.baseline:
            props["s2:processing_baseline"] = self.baseline
        if self.spacecraft:
            props["platform"] = self.spacecraft.lower()
        return props


@dataclass(frozen=True)
class TileAngles:
    """Mean sun and viewing angles of a granule (degrees)."""

    sun_zenith: float
    sun_azimuth: float
    view_zenith: float | None
    view_azimuth: float | None

    def properties(self) -> dict[str, Any]:
        """The STAC ``view`` extension's fields."""
        props: dict[str, Any] = {
            "view:sun_azimuth": self.sun_azimuth,
            "view:sun_elevation": 90.0 - self.sun_zenith,
        }
        if self.view_zenith is not None:
            props["view:incidence_angle"] = self.view_zenith
        if self.view_azimuth is not None:
            props["view:azimuth"] = self.view_azimuth
        return props


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _texts(root: ET.Element, name: str) -> list[ET.Element]:
    """Every element called ``name`` whatever its namespace (the PSD versions differ)."""
    return [e for e in root.iter() if _local(e.tag) == name]


def _text(root: ET.Element, name: str) -> str | None:
    found = _texts(root, name)
    return (found[0].text or "").strip() if found else None


def _parse(xml: bytes, what: str) -> ET.Element:
    try:
        return ET.fromstring(xml)
    except ET.ParseError as exc:
        raise InputError(
            f"{what} is not valid XML ({exc}); the product is damaged: download it again"
        ) from exc


def parse_product_metadata(xml: bytes, name: str = "MTD_MSIL2A.xml") -> ProductMetadata:
    """The product-level metadata of an L1C or L2A product (``name`` is for messages)."""
    root = _parse(xml, name)
    level_text = (_text(root, "PROCESSING_LEVEL") or _local(root.tag)).upper()
    product_type = (_text(root, "PRODUCT_TYPE") or "").upper()
    if "1B" in level_text or product_type.endswith("1B"):
        raise InputError(
            f"{name}: Level-1B products are not supported (radiometry in sensor geometry, no map "
            "projection); give the Level-1C or Level-2A product of the acquisition"
        )
    if "2A" in level_text:
        level, offset_tag, quant_tag = "L2A", "BOA_ADD_OFFSET", "BOA_QUANTIFICATION_VALUE"
    elif "1C" in level_text:
        level, offset_tag, quant_tag = "L1C", "RADIO_ADD_OFFSET", "QUANTIFICATION_VALUE"
    else:
        raise InputError(
            f"{name}: unknown processing level {level_text!r}; eowatch reads Sentinel-2 Level-1C and Level-2A"
        )
    baseline = _text(root, "PROCESSING_BASELINE")
    quant = _number(_text(root, quant_tag), f"{name}: {quant_tag}")
    if quant is None:
        raise InputError(f"{name} states no {quant_tag}; the metadata file is incomplete: download it again")
    offsets: dict[str, float] = {}
    for element in _texts(root, offset_tag):
        band_id = int(element.get("band_id", "-1"))
        if not 0 <= band_id < len(BAND_IDS):
            raise InputError(f"{name}: {offset_tag} for unknown band_id {band_id}")
        offsets[BAND_IDS[band_id]] = float((element.text or "0").strip()) / quant
    if not offsets and _baseline_number(baseline) >= OFFSET_BASELINE:
        raise InputError(
            f"{name}: processing baseline {baseline} products shift their digital numbers, but no "
            f"{offset_tag} is stated; the metadata file is incomplete: download it again"
        )
    image_files = tuple((e.text or "").strip() for e in _texts(root, "IMAGE_FILE"))
    when = _text(root, "PRODUCT_START_TIME") or _text(root, "DATATAKE_SENSING_START")
    return ProductMetadata(
        level=level,
        baseline=baseline,
        radiometry=Radiometry(1.0 / quant, offsets, source=name),
        product_uri=_text(root, "PRODUCT_URI") or "",
        datetime=_datetime(when),
        spacecraft=_text(root, "SPACECRAFT_NAME"),
        image_files=image_files,
    )


def parse_tile_angles(xml: bytes, name: str = "MTD_TL.xml") -> TileAngles:
    """Mean sun angles and the mean of the per-band mean viewing angles of a granule."""
    root = _parse(xml, name)
    sun = _texts(root, "Mean_Sun_Angle")
    if not sun:
        raise InputError(f"{name} has no Mean_Sun_Angle; the granule metadata is incomplete")
    zenith = _number(_text(sun[0], "ZENITH_ANGLE"), f"{name}: sun zenith")
    azimuth = _number(_text(sun[0], "AZIMUTH_ANGLE"), f"{name}: sun azimuth")
    if zenith is None or azimuth is None:
        raise InputError(f"{name}: the mean sun angle lacks a zenith or an azimuth")
    views = _texts(root, "Mean_Viewing_Incidence_Angle")
    vz = [_number(_text(v, "ZENITH_ANGLE"), name) for v in views]
    va = [_number(_text(v, "AZIMUTH_ANGLE"), name) for v in views]
    view_zenith = float(np.mean([v for v in vz if v is not None])) if any(v is not None for v in vz) else None
    view_azimuth = _mean_direction([v for v in va if v is not None])
    return TileAngles(zenith, azimuth, view_zenith, view_azimuth)


def item_radiometry(
    properties: Mapping[str, Any], raster_bands: Mapping[str, Mapping[str, Any]]
) -> Radiometry:
    """The radiometry of a STAC Item (``raster_bands``: band name -> its first ``raster:bands``)."""
    # Earth Search / Planetary Computer: s2:processing_baseline; CDSE (STAC 1.1): processing:version.
    stated = properties.get("s2:processing_baseline") or properties.get("processing:version")
    baseline = _baseline_number(stated)
    if properties.get("earthsearch:boa_offset_applied") is True:
        scale = _first_scale(raster_bands)
        return Radiometry(scale, {}, "STAC Item: earthsearch:boa_offset_applied (offset already in the DN)")
    scaled = {b: rb for b, rb in raster_bands.items() if rb.get("scale") is not None}
    if scaled:
        offsets = {b: float(rb.get("offset") or 0.0) for b, rb in scaled.items()}
        return Radiometry(_first_scale(scaled), offsets, "STAC Item: raster:bands")
    if baseline >= OFFSET_BASELINE:
        offsets = {b: DEFAULT_OFFSET_DN * 1e-4 for b in raster_bands}
        return Radiometry(1e-4, offsets, "STAC Item: s2:processing_baseline >= 04.00 (offset -1000 DN)")
    return Radiometry(1e-4, {}, "STAC Item: s2:processing_baseline < 04.00 (no offset)")


def item_angles(properties: Mapping[str, Any]) -> dict[str, Any]:
    """The STAC ``view`` sun angles of an Item that states them only as Planetary
    Computer's ``s2:mean_solar_azimuth`` / ``s2:mean_solar_zenith`` (else nothing)."""
    if "view:sun_azimuth" in properties or "s2:mean_solar_azimuth" not in properties:
        return {}
    return {
        "view:sun_azimuth": float(properties["s2:mean_solar_azimuth"]),
        "view:sun_elevation": 90.0 - float(properties["s2:mean_solar_zenith"]),
    }


def check_offset_not_applied(name: str, band: str, reflectance: np.ndarray[Any, Any], offset: float) -> None:
    """Refuse a band whose declared negative ``offset`` leaves many pixels below zero: the
    digital numbers were already shifted (harmonised) while the metadata still declares
    the shift. Real products have reflectance below 0 only on a few very dark pixels
    (TOA never, BOA on some water); shifted twice, every dark surface goes negative."""
    values = reflectance[np.isfinite(reflectance)]
    if offset >= 0 or values.size == 0:
        return
    share = float(np.mean(values < 0))
    if share > _NEGATIVE_SHARE_MAX:
        raise InputError(
            f"{name}: the metadata declares an offset of {offset:g} for {band}, but {share:.0%} of the "
            f"pixels are negative with it: the offset appears to be applied already (harmonised data). "
            "Give the product as distributed, or the band files without their metadata (read as DN / 10000)"
        )


def _first_scale(raster_bands: Mapping[str, Mapping[str, Any]]) -> float:
    for rb in raster_bands.values():
        if rb.get("scale") is not None:
            return float(rb["scale"])
    return 1e-4


def _number(text: str | None, what: str) -> float | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError as exc:
        raise InputError(f"{what} is not a number ({text!r}); the metadata file is damaged") from exc


def _baseline_number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _datetime(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _mean_direction(degrees: list[float]) -> float | None:
    """The circular mean of azimuths (the detectors' azimuths straddle 0/360 on some tiles)."""
    if not degrees:
        return None
    rad = np.radians(degrees)
    return float(np.degrees(np.arctan2(np.sin(rad).mean(), np.cos(rad).mean())) % 360.0)
