"""Resolve what a user gives as an input into an ``Acquisition``: one date's
band files, with the metadata needed to read them as physical values.

Accepted inputs:

* a Sentinel-2 product: SAFE folder, zipped SAFE, its ``MTD_MSIL1C.xml`` /
  ``MTD_MSIL2A.xml`` or a GDAL ``SENTINEL2_L2A:`` subdataset (``eowatch.io.s2_safe``);
* a folder of single-band rasters (Sentinel-2 granule ``IMG_DATA``, whose product
  metadata above is then read for the radiometry; OSCD city folders, any ``*_B04.tif``
  naming; Sentinel-1 ``*vv*.tif`` / ``*vh*.tif``);
* one multi-band raster whose band descriptions name the bands (or a
  13-band Sentinel-2 stack in the standard order);
* a STAC Item (JSON file or URL) with band assets, Earth Search (``red``,
  ``nir``, ``scl``...) or Planetary Computer (``B04``, ``SCL``, ``vv``) naming;
* a STAC Catalog holding one Item (``catalog.json``, or a folder holding it:
  what an OGC application package's stage-in hands over).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from ..errors import InputError, InputReadError
from .remote import gdal_href, is_remote, open_raster, read_failure, read_stac

__all__ = ["BandAsset", "Acquisition", "resolve_input", "acquisition_from_item", "S2_BANDS", "S1_BANDS"]

S2_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
S1_BANDS = ("vv", "vh", "hh", "hv")
# Earth Search v1 asset keys and STAC common names -> Sentinel-2 band ids.
_COMMON_NAMES = {
    "coastal": "B01",
    "blue": "B02",
    "green": "B03",
    "red": "B04",
    "rededge1": "B05",
    "rededge2": "B06",
    "rededge3": "B07",
    "nir": "B08",
    "nir08": "B8A",
    "nir09": "B09",
    "cirrus": "B10",
    "swir16": "B11",
    "swir22": "B12",
    "scl": "SCL",
}
_S2_FILE = re.compile(r"(?:^|[_\-.])(B(?:0?[1-9]|1[0-2]|8A))(?:[_\-.]|$)", re.IGNORECASE)
_SCL_FILE = re.compile(r"(?:^|[_\-.])SCL(?:[_\-.]|$)", re.IGNORECASE)
_S1_FILE = re.compile(r"(?:^|[_\-.])(vv|vh|hh|hv)(?:[_\-.]|$)", re.IGNORECASE)
# raster:bands "unit" of radar assets -> BandAsset.units (anything else: read as stated elsewhere).
_RASTER_UNITS = {"db": "db", "decibel": "db", "linear": "linear", "dn": "dn"}
_DATE = re.compile(r"(20\d{2})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2}))?")
_RASTER_SUFFIXES = {".tif", ".tiff", ".jp2", ".vrt", ".img"}


@dataclass(frozen=True)
class BandAsset:
    """Where one band is and how to turn its numbers into physical values."""

    href: str
    band_index: int = 1
    scale: float = 1.0
    offset: float = 0.0
    nodata: float | None = None
    #: What the (scaled) values are: "reflectance" (optical), "linear" power,
    #: "db", or "dn" (uncalibrated GRD amplitude). Read as linear power for SAR.
    units: str = "reflectance"
    #: The raw number of a saturated pixel (Sentinel-2: 65535), read as no valid data.
    saturated: float | None = None


@dataclass
class Acquisition:
    """One date: band assets plus the metadata that travels into provenance."""

    id: str
    sensor: str  # "sentinel-2" or "sentinel-1"
    assets: dict[str, BandAsset]
    datetime: datetime | None = None
    href: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    def require(self, bands: tuple[str, ...] | list[str]) -> None:
        """Raise a ``MissingBandError`` naming every band that is missing."""
        from ..errors import MissingBandError

        missing = [b for b in bands if b not in self.assets]
        if missing:
            raise MissingBandError(
                f"{self.id or self.href}: missing band(s) {missing} (found {sorted(self.assets)}). "
                "Add the missing band files/assets or choose a preset that does not need them."
            )


def _s2_band_id(text: str) -> str:
    """'B2' -> 'B02', 'b8a' -> 'B8A'."""
    t = text.upper()
    return t if t == "B8A" else f"B{int(t[1:]):02d}"


def _parse_date(text: str) -> datetime | None:
    m = _DATE.search(text)
    if not m:
        return None
    y, mo, d, hh, mm, ss = (int(g) if g else 0 for g in m.groups())
    try:
        return datetime(y, mo, d, hh, mm, ss, tzinfo=UTC)
    except ValueError:
        return None


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://", "s3://", "/vsi"))


def resolve_input(source: str | Path, sensor: str | None = None) -> Acquisition:
    """Turn a folder, raster file or STAC Item (path or URL) into an ``Acquisition``."""
    from .s1_ard import resolve_s1_product  # the product modules build on this one
    from .s1_safe import is_s1_product
    from .s2_safe import is_s2_product, resolve_s2_product

    text = str(source)
    if text.lower().split("?")[0].endswith(".json"):
        return _from_stac_item(text)
    if is_s1_product(text):
        return resolve_s1_product(text)
    if is_s2_product(text):
        return resolve_s2_product(text)
    if _is_url(text):
        return _from_multiband(text, sensor)
    path = Path(text)
    if not path.exists():
        raise InputReadError(f"input {path} does not exist; give a band folder, a raster file or a STAC Item")
    if path.is_dir() and (path / "catalog.json").is_file():
        return _from_stac_item(str(path / "catalog.json"))
    if path.is_dir():
        return _from_folder(path, sensor)
    return _from_multiband(text, sensor)


def _from_folder(folder: Path, sensor: str | None) -> Acquisition:
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in _RASTER_SUFFIXES)
    s2: dict[str, BandAsset] = {}
    s1: dict[str, BandAsset] = {}
    for f in files:
        if m := _S2_FILE.search(f.name):
            s2.setdefault(_s2_band_id(m.group(1)), BandAsset(str(f), nodata=0.0, scale=1e-4))
        elif _SCL_FILE.search(f.name):
            s2.setdefault("SCL", BandAsset(str(f), nodata=0.0))
        elif m := _S1_FILE.search(f.name):
            s1.setdefault(m.group(1).lower(), BandAsset(str(f)))
    if sensor == "sentinel-1" or (not sensor and s1 and not s2):
        assets, kind = s1, "sentinel-1"
    else:
        assets, kind = s2, "sentinel-2"
    if not assets and (s1 or s2):  # bands of the other sensor
        found, wanted = (
            ("Sentinel-1", "Sentinel-2 ('*_B04.tif')") if s1 else ("Sentinel-2", "Sentinel-1 ('*_vv.tif')")
        )
        raise InputError(
            f"{folder} holds {found} bands but the preset needs {wanted} bands; choose a {found} preset "
            "(see `eowatch presets`) or give a folder of the preset's sensor"
        )
    if not assets:
        raise InputError(
            f"no band rasters found in {folder}; expected files named like '*_B04.tif' (Sentinel-2) "
            "or '*_vv.tif' (Sentinel-1)"
        )
    when = _folder_date(folder, files)
    properties: dict[str, Any] = {}
    if kind == "sentinel-2":
        assets, properties = _folder_radiometry(folder, assets)
    return Acquisition(
        id=f"{folder.parent.name}-{folder.name}",
        sensor=kind,
        assets=assets,
        datetime=when,
        href=str(folder),
        properties=properties,
    )


def _folder_radiometry(
    folder: Path, assets: dict[str, BandAsset]
) -> tuple[dict[str, BandAsset], dict[str, Any]]:
    """Band files of a SAFE's ``IMG_DATA`` take the product's radiometry; others are read as
    DN / 10000 (what OSCD and pre-2022 products hold), and the product says so."""
    from .s2_metadata import Radiometry, parse_product_metadata, saturation_marked
    from .s2_safe import find_product_xml

    level = "L2A" if "SCL" in assets else "L1C"
    xml = find_product_xml(folder)
    if xml is None:
        # Without metadata the level is a guess (an SCL file beside the bands): recorded as such.
        guess = {"processing:level": level, "eowatch:level_guessed": True}
        return saturation_marked(assets), {**guess, "eowatch:radiometry": Radiometry().as_dict()}
    meta = parse_product_metadata(xml.read_bytes(), str(xml))
    return meta.radiometry.apply(assets), meta.properties()


def _folder_date(folder: Path, files: list[Path]) -> datetime | None:
    # OSCD keeps the dates in the parent's dates.txt: date_1 for imgs_1, date_2 for imgs_2.
    dates_txt = folder.parent / "dates.txt"
    m = re.search(r"(\d+)$", folder.name)
    if dates_txt.exists() and m:
        for line in dates_txt.read_text().splitlines():
            if line.strip().startswith(f"date_{m.group(1)}:"):
                return _parse_date(line.split(":", 1)[1])
    for f in files:
        if when := _parse_date(f.name):
            return when
    return None


def _from_multiband(href: str, sensor: str | None) -> Acquisition:
    with open_raster(href, "cannot open raster") as ds:
        descriptions = [(d or "").strip() for d in ds.descriptions]
        count, nodata, tags = ds.count, ds.nodata, ds.tags()
    names: list[str | None] = []
    for d in descriptions:
        if d.lower() in S1_BANDS:
            names.append(d.lower())
        elif _S2_FILE.fullmatch(d) or re.fullmatch(r"B(0?[1-9]|1[0-2]|8A)", d, re.IGNORECASE):
            names.append(_s2_band_id(d))
        else:
            names.append(None)
    if not any(names) and count == len(S2_BANDS):
        names = list(
            ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
        )
    if (
        not any(names)
        and count == 1
        and (m := _S2_FILE.search(Path(href).name) or _S1_FILE.search(Path(href).name))
    ):
        g = m.group(1)
        names = [g.lower() if g.lower() in S1_BANDS else _s2_band_id(g)]
    if not any(names):
        raise InputError(
            f"cannot tell which band is which in {href} ({count} bands, descriptions {descriptions}); "
            "set band descriptions (e.g. 'B04', 'VV') or give one file per band in a folder"
        )
    is_s1 = any(n in S1_BANDS for n in names if n)
    kind = sensor or ("sentinel-1" if is_s1 else "sentinel-2")
    scale = 1.0 if is_s1 else 1e-4
    fill = nodata if nodata is not None else (None if is_s1 else 0.0)
    assets = {n: BandAsset(href, i + 1, scale=scale, nodata=fill) for i, n in enumerate(names) if n}
    return Acquisition(
        id=Path(href).stem,
        sensor=kind,
        assets=assets,
        datetime=_parse_date(Path(href).name),
        href=href,
        properties={k.lower(): v for k, v in tags.items() if k.lower() in {"units", "unit", "polarisation"}},
    )


def _from_stac_item(href: str) -> Acquisition:
    import pystac

    try:
        obj = read_stac(href)
        # A catalogue (stage-in of an application package) is followed to its one Item.
        items = list(obj.get_items(recursive=True)) if isinstance(obj, pystac.Catalog) else [obj]
    except Exception as exc:  # pystac raises many kinds (IO, HTTP, JSON, STAC errors)
        if is_remote(href) and isinstance(exc, OSError | requests.RequestException):
            raise read_failure(href, exc, "cannot read STAC Item") from exc
        raise InputReadError(
            f"cannot read STAC Item {href}: {exc}. Give a STAC Item JSON path or URL."
        ) from exc
    if len(items) != 1 or not isinstance(items[0], pystac.Item):
        raise InputError(
            f"STAC {href} holds {len(items)} Items; one date is one Item: give a catalogue with exactly one "
            "Item, or the Item itself"
        )
    item = items[0]
    return acquisition_from_item(item, href if isinstance(obj, pystac.Item) else item.get_self_href() or href)


def acquisition_from_item(item: Any, href: str = "") -> Acquisition:
    """Map a ``pystac.Item``'s band assets onto canonical band names."""
    from .s1_ard import is_grd_item, resolve_s1_item

    if is_grd_item(item):  # Sentinel-1 GRD in radar geometry: geocoded by eowatch.io.s1_ard
        return resolve_s1_item(item, href or (item.get_self_href() or ""))
    props = dict(item.properties)
    collection = (item.collection_id or "").lower()
    is_s1 = "sentinel-1" in collection or "sar:polarizations" in props
    candidates: dict[str, tuple[tuple[int, int], BandAsset, dict[str, Any]]] = {}
    for key, asset in item.assets.items():
        d = asset.to_dict()
        name = _asset_band(key, d)
        if name is None:
            continue
        rb = _raster_fields(d)
        nodata = _float(rb["nodata"]) if "nodata" in rb else (0.0 if not is_s1 else None)  # "nan" is text
        abs_href = gdal_href(asset.get_absolute_href() or asset.href)
        # Prefer cloud-optimised GeoTIFFs over JPEG2000 copies, https over s3, and a band's
        # native resolution over the resampled copies (CDSE: B04_10m, B04_20m, B04_60m).
        rank = (("geotiff" in (asset.media_type or "")) * 2 + abs_href.startswith("http"), -_asset_res(key))
        if name not in candidates or rank > candidates[name][0]:
            units = _RASTER_UNITS.get(str(rb.get("unit", "")).lower(), "reflectance")
            where = f"STAC Item {item.id} asset {key}"
            scale, offset = _raster_number(rb, "scale", 1.0, where), _raster_number(rb, "offset", 0.0, where)
            candidates[name] = (rank, BandAsset(abs_href, 1, scale, offset, nodata, units), rb)
    if not candidates:
        raise InputError(
            f"STAC Item {item.id} has no band assets eowatch recognises (keys {list(item.assets)})"
        )
    assets = {k: v for k, (_, v, _) in candidates.items()}
    if not is_s1:
        assets, props = _item_radiometry(candidates, props)
    return Acquisition(
        id=item.id,
        sensor="sentinel-1" if is_s1 else "sentinel-2",
        assets=assets,
        datetime=item.datetime,
        href=href or (item.get_self_href() or ""),
        properties=props,
    )


def _item_radiometry(
    candidates: dict[str, tuple[tuple[int, int], BandAsset, dict[str, Any]]], props: dict[str, Any]
) -> tuple[dict[str, BandAsset], dict[str, Any]]:
    """Sentinel-2 band assets scaled by the Item's radiometry (``eowatch.io.s2_metadata``)."""
    from .s2_metadata import item_angles, item_radiometry

    rad = item_radiometry(props, {b: rb for b, (_, _, rb) in candidates.items() if b != "SCL"})
    scaled = rad.apply({b: asset for b, (_, asset, _) in candidates.items()})
    product_type = str(props.get("s2:product_type") or props.get("product:type") or "").upper()
    level = {"S2MSI2A": "L2A", "S2MSI1C": "L1C"}.get(product_type) or (
        "L2A" if "SCL" in candidates else "L1C"
    )
    angles = item_angles(props)
    return scaled, {**props, **angles, "processing:level": level, "eowatch:radiometry": rad.as_dict()}


def _asset_band(key: str, asset: dict[str, Any]) -> str | None:
    k = key.lower()
    if k in S1_BANDS:
        return k
    if k in _COMMON_NAMES:
        return _COMMON_NAMES[k]
    if k.endswith("-jp2") and k[:-4] in _COMMON_NAMES:
        return _COMMON_NAMES[k[:-4]]
    if re.fullmatch(r"b(0[1-9]|1[0-2]|8a)", k):
        return _s2_band_id(k)
    by_res = re.fullmatch(r"(b(?:0[1-9]|1[0-2]|8a)|scl)_(?:10|20|60)m", k)  # CDSE
    if by_res:
        return "SCL" if by_res.group(1) == "scl" else _s2_band_id(by_res.group(1))
    bands = asset.get("eo:bands") or asset.get("bands") or []  # STAC 1.0 / 1.1
    if len(bands) == 1 and re.fullmatch(r"B(0[1-9]|1[0-2]|8A)", str(bands[0].get("name", ""))):
        return str(bands[0]["name"])
    return None


def _asset_res(key: str) -> int:
    """The resolution in an asset key such as ``B04_20m`` (0 without one)."""
    m = re.search(r"_(\d+)m$", key)
    return int(m.group(1)) if m else 0


def _raster_fields(asset: dict[str, Any]) -> dict[str, Any]:
    """An asset's scale, offset, nodata and unit: STAC 1.0's ``raster:bands`` or, in
    STAC 1.1 (CDSE), fields on the asset or its single ``bands`` entry."""
    if asset.get("raster:bands"):
        return dict(asset["raster:bands"][0])
    bands = asset.get("bands") or [{}]
    merged = {**(bands[0] if len(bands) == 1 else {}), **asset}
    fields = {k: merged[f"raster:{k}"] for k in ("scale", "offset") if f"raster:{k}" in merged}
    return fields | {k: merged[k] for k in ("nodata", "unit") if k in merged}


def _raster_number(fields: dict[str, Any], name: str, default: float, where: str) -> float:
    """An asset's ``scale`` or ``offset`` (``default`` when absent or 0/empty), refused when not a number."""
    value = fields.get(name)
    if not value:
        return default
    number = _float(value)
    if number is None:
        raise InputError(f"{where}: raster {name} {value!r} is not a number; correct the Item's metadata")
    return number


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
