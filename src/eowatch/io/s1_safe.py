"""Sentinel-1 Level-1 GRD products as the archive serves them: a SAFE folder, a zipped
SAFE or its ``manifest.safe``, in radar geometry (digital numbers on the ground-range
image grid, calibration and noise tables in XML beside them).

What is read, per polarisation (the product specification's names, S1-RS-MDA-52-7441):

* product annotation: first line time and azimuth time interval, range pixel spacing,
  image size, orbit state vectors, geolocation grid, slant-to-ground range polynomials
  (``coordinateConversion``), pass and incidence angle;
* calibration annotation: the sigma0 / beta0 / gamma LUT vectors;
* noise annotation: range noise vectors (``noiseRangeVector``, or ``noiseVector`` before
  IPF 2.9) and, where present, azimuth noise blocks (``noiseAzimuthVector``).

The manifest gives the mission, mode, product type, polarisations, pass, relative orbit
and footprint. SLC, OCN and RAW products are refused with what is supported.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError, InputReadError
from .remote import gdal_href, read_bytes
from .safe_files import SafeFiles, zip_members

__all__ = [
    "GrdProduct",
    "GrdBand",
    "Annotation",
    "LutVectors",
    "AzimuthNoiseBlock",
    "is_s1_product",
    "open_grd",
    "read_grd",
    "ItemFiles",
    "ProductFiles",
    "parse_time",
]

_MANIFEST = re.compile(r"^manifest\.safe$", re.IGNORECASE)
_S1_NAME = re.compile(r"^S1[A-D]_(IW|EW|SM|S[1-6]|WV)_([A-Z_]{4})_", re.IGNORECASE)
#: GDAL's subdataset names of the product (SENTINEL1_CALIB:SIGMA0:<manifest>:IW_VV ...).
_SUBDATASET = re.compile(r"^SENTINEL1(?:_CALIB)?:", re.IGNORECASE)
#: The polarisation in an annotation's name: s1b-iw-grd-vv-2021...xml (SAFE), iw-vv.xml (Earth Search).
_POLARISATION = re.compile(r"(?:^|-)(vv|vh|hh|hv)(?:-|\.xml$)", re.IGNORECASE)
_SUPPORTED = "Level-1 GRD products (GRDH, GRDM, GRDF; IW, EW or SM)"


def parse_time(text: str) -> datetime:
    """An annotation time (``2021-12-23T05:11:22.594441``, UTC) as an aware datetime."""
    return datetime.fromisoformat(text.strip().rstrip("Z")).replace(tzinfo=UTC)


def is_s1_product(text: str) -> bool:
    """Whether ``text`` names a Sentinel-1 SAFE product (folder, zip, manifest or GDAL subdataset)."""
    if _SUBDATASET.match(text):
        return True
    path = Path(text)
    if _S1_NAME.match(path.name) and path.suffix.lower() in (".safe", ".zip"):
        return True
    if _MANIFEST.match(path.name):
        return path.is_file() and (path.parent / "annotation").is_dir()
    if path.is_dir():
        return (path / "manifest.safe").is_file() and (path / "annotation").is_dir()
    if path.suffix.lower() == ".zip" and path.is_file():
        names = zip_members(path)
        return any(n.endswith("manifest.safe") for n in names) and any("/annotation/" in n for n in names)
    return False


@dataclass(frozen=True)
class LutVectors:
    """Values given on a sparse (line, pixel) grid: one vector per annotated line, each
    with its own pixel positions, interpolated bilinearly between them (product spec)."""

    lines: NDArray[np.float64]  # (n,)
    pixels: tuple[NDArray[np.float64], ...]  # n vectors of pixel positions
    values: tuple[NDArray[np.float64], ...]  # n vectors of values


@dataclass(frozen=True)
class AzimuthNoiseBlock:
    """One block of an azimuth noise vector: its image extent and values along lines."""

    first_line: int
    last_line: int
    first_sample: int
    last_sample: int
    lines: NDArray[np.float64]
    values: NDArray[np.float64]


@dataclass(frozen=True)
class Annotation:
    """What the product annotation of one polarisation says about its geometry."""

    first_line_time: datetime
    azimuth_time_interval: float  # s
    range_pixel_spacing: float  # m
    azimuth_pixel_spacing: float  # m
    width: int  # samples
    height: int  # lines
    radar_frequency: float  # Hz
    incidence_mid_swath: float  # degrees
    orbit_times: NDArray[np.float64]  # (k,) s after first_line_time
    orbit_positions: NDArray[np.float64]  # (k, 3) ECEF m
    orbit_velocities: NDArray[np.float64]  # (k, 3) m/s
    #: geolocation grid: (n, 7) line, pixel, lat, lon, height, incidence angle, slant range time
    grid: NDArray[np.float64]
    #: slant -> ground range conversions: azimuth times (m,) s after first_line_time, sr0 (m,),
    #: srgr coefficients (m, d), ground range = sum c_k (R - sr0)^k (m)
    srgr_times: NDArray[np.float64]
    srgr_origins: NDArray[np.float64]
    srgr_coefficients: NDArray[np.float64]
    ellipsoid: tuple[float, float] = (6378137.0, 6356752.314245)


@dataclass
class GrdBand:
    """One polarisation: its measurement raster and the tables that calibrate it."""

    polarisation: str  # "vv", "vh", "hh", "hv"
    measurement: str  # what GDAL opens
    annotation: Annotation
    calibration: dict[str, LutVectors]  # "sigma0", "beta0", "gamma0" -> LUT (A)
    noise_range: LutVectors
    noise_azimuth: tuple[AzimuthNoiseBlock, ...]
    ipf: str = ""


@dataclass
class GrdProduct:
    """A Sentinel-1 GRD product: its identity from the manifest and its bands."""

    id: str
    href: str
    mission: str
    mode: str
    product_type: str  # "GRD"
    resolution_class: str  # "H", "M", "F"
    orbit_pass: str  # "ascending" / "descending"
    relative_orbit: int | None
    absolute_orbit: int | None
    start: datetime
    stop: datetime
    footprint: list[tuple[float, float]]  # (lon, lat) ring from the manifest
    bands: dict[str, GrdBand] = field(default_factory=dict)
    ipf: str = ""

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        lons, lats = zip(*self.footprint, strict=True)
        return min(lons), min(lats), max(lons), max(lats)

    def properties(self) -> dict[str, object]:
        """STAC properties (sar, sat, processing extensions) of the product."""
        pols = [p.upper() for p in self.bands]
        return {
            "platform": f"sentinel-{self.mission[1:].lower()}",
            "constellation": "sentinel-1",
            "sar:instrument_mode": self.mode,
            "sar:product_type": self.product_type,
            "sar:resolution_class": self.resolution_class,
            "sar:polarizations": pols,
            "sar:frequency_band": "C",
            "sat:orbit_state": self.orbit_pass,
            "sat:relative_orbit": self.relative_orbit,
            "sat:absolute_orbit": self.absolute_orbit,
            "start_datetime": self.start.isoformat(),
            "end_datetime": self.stop.isoformat(),
            "processing:software": {"Sentinel-1 IPF": self.ipf} if self.ipf else {},
        }


class ProductFiles(Protocol):
    """Where a product's files are: a SAFE folder or zip (``SafeFiles``), or the assets of a
    STAC Item (``ItemFiles``), addressed by their path inside the SAFE."""

    @property
    def anchor(self) -> str: ...

    @property
    def name(self) -> str: ...

    def read(self, rel: str) -> bytes: ...

    def exists(self, rel: str) -> bool: ...

    def listing(self, pattern: str) -> list[str]: ...

    def href(self, rel: str) -> str: ...


@dataclass(frozen=True)
class ItemFiles:
    """A product's files as the assets of a STAC Item: their SAFE paths -> hrefs."""

    name: str
    hrefs: dict[str, str]
    anchor: str = "manifest.safe"

    def read(self, rel: str) -> bytes:
        return read_bytes(self.hrefs[rel], f"cannot read {rel} of {self.name}")

    def exists(self, rel: str) -> bool:
        return rel in self.hrefs

    def listing(self, pattern: str) -> list[str]:
        return sorted(k for k in self.hrefs if re.fullmatch(pattern, k))

    def href(self, rel: str) -> str:
        return gdal_href(self.hrefs[rel])


def open_grd(text: str) -> GrdProduct:
    """The product named by ``text`` (SAFE folder, zip, manifest.safe, GDAL subdataset)."""
    files = _files_of(text)
    root = files.root
    safe_name = PurePosixPath(root).name if root not in ("", ".") else Path(files.name).stem
    return read_grd(files, safe_name.removesuffix(".SAFE"), text)


def read_grd(files: ProductFiles, product_id: str, href: str) -> GrdProduct:
    """The product whose files ``files`` gives (its manifest, annotations and measurements)."""
    manifest = _xml(files, files.anchor)
    product = _from_manifest(manifest, product_id, files.name, href)
    annotations = files.listing(r"annotation/[^/]+\.xml")
    if not annotations:
        raise InputError(
            f"{files.name}: the SAFE holds no product annotation (annotation/s1*.xml); download the "
            "complete product again"
        )
    for rel in annotations:
        name = PurePosixPath(rel).name
        named = _POLARISATION.search(name)
        if named is None:
            continue  # not a polarisation's product annotation
        pol = named.group(1).lower()
        calibration, noise = (
            f"annotation/calibration/calibration-{name}",
            f"annotation/calibration/noise-{name}",
        )
        missing = [r for r in (calibration, noise) if not files.exists(r)]
        if missing:
            raise InputError(
                f"{files.name} is incomplete: {', '.join(missing)} missing; eowatch needs the calibration "
                "and noise annotation of every polarisation: download the complete product again"
            )
        measurement = f"measurement/{name.removesuffix('.xml')}.tiff"
        product.bands[pol] = GrdBand(
            polarisation=pol,
            measurement=files.href(measurement) if files.exists(measurement) else "",
            annotation=_annotation(_xml(files, rel)),
            calibration=_calibration(_xml(files, calibration)),
            noise_range=_noise_range(_xml(files, noise)),
            noise_azimuth=_noise_azimuth(_xml(files, noise)),
            ipf=product.ipf,
        )
    return product


def _files_of(text: str) -> SafeFiles:
    if m := _SUBDATASET.match(text):
        # SENTINEL1_CALIB:SIGMA0:<path to manifest.safe>:IW_VV (the path may hold ':').
        parts = text[m.end() :].split(":")
        return _files_of(":".join(parts[1:-1] if text.upper().startswith("SENTINEL1_CALIB") else parts[:-1]))
    if text.startswith("/vsizip/"):
        archive, _, inner = text[len("/vsizip/") :].partition(".zip")
        return SafeFiles.zipped(Path(archive + ".zip"), _MANIFEST, inner.strip("/"), "manifest.safe")
    path = Path(text)
    if not path.exists():
        raise InputReadError(
            f"Sentinel-1 product {path} does not exist; give a SAFE folder, zip or manifest.safe"
        )
    if path.suffix.lower() == ".zip":
        return SafeFiles.zipped(path, _MANIFEST, "", "manifest.safe")
    if path.is_file():
        return SafeFiles(str(path.parent), path.name)
    if not (path / "manifest.safe").is_file():
        raise InputError(f"{path} holds no manifest.safe; is it a Sentinel-1 SAFE folder?")
    return SafeFiles(str(path), "manifest.safe")


def _xml(files: ProductFiles, rel: str) -> ET.Element:
    try:
        return ET.fromstring(files.read(rel))
    except ET.ParseError as exc:
        raise InputReadError(
            f"{files.name}: {rel} is not valid XML ({exc}); download the product again"
        ) from exc


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _find_text(root: ET.Element, name: str) -> str | None:
    """The text of the first element whose local name is ``name`` (manifest namespaces vary)."""
    for e in root.iter():
        if _local(e.tag) == name:
            return (e.text or "").strip()
    return None


def _from_manifest(root: ET.Element, product_id: str, name: str, href: str) -> GrdProduct:
    product_type = (_find_text(root, "productType") or "").upper()
    named = _S1_NAME.match(product_id)
    if not product_type and named:
        product_type = named.group(2).rstrip("_").upper()[:3]
    if product_type != "GRD":
        kind = product_type or "an unknown product type"
        raise InputError(
            f"{product_id or name} is a Sentinel-1 {kind} product; eowatch reads {_SUPPORTED}: "
            "download the GRD product of this acquisition (same sensing time, product type GRD)"
        )
    family = _find_text(root, "number") or ""
    mode = (_find_text(root, "mode") or (named.group(1) if named else "")).upper()
    resolution = product_id.split("_")[2][-1:].upper() if product_id.count("_") >= 2 else ""
    coords = _find_text(root, "coordinates") or ""
    footprint = []
    for pair in coords.split():
        lat, lon = (float(v) for v in pair.split(","))
        footprint.append((lon, lat))
    rel_orbits = [e for e in root.iter() if _local(e.tag) == "relativeOrbitNumber"]
    abs_orbits = [e for e in root.iter() if _local(e.tag) == "orbitNumber"]
    software = [e for e in root.iter() if _local(e.tag) == "software"]
    start, stop = _find_text(root, "startTime"), _find_text(root, "stopTime")
    if not (start and stop and footprint):
        raise InputError(
            f"{name}: manifest.safe lacks its sensing times or footprint; is the product complete?"
        )
    return GrdProduct(
        id=product_id,
        href=href,
        mission=f"S1{family}" if family else product_id[:3],
        mode=mode,
        product_type=product_type,
        resolution_class=resolution,
        orbit_pass=(_find_text(root, "pass") or "").lower(),
        relative_orbit=int(rel_orbits[0].text or 0) if rel_orbits else None,
        absolute_orbit=int(abs_orbits[0].text or 0) if abs_orbits else None,
        start=parse_time(start),
        stop=parse_time(stop),
        footprint=footprint,
        ipf=software[0].get("version", "") if software else "",
    )


def _floats(text: str | None) -> NDArray[np.float64]:
    return np.array((text or "").split(), dtype=np.float64)


def _annotation(root: ET.Element) -> Annotation:
    info = root.find("imageAnnotation/imageInformation")
    general = root.find("generalAnnotation/productInformation")
    if info is None or general is None:
        raise InputError("the product annotation lacks imageInformation / productInformation")
    t0 = parse_time(info.findtext("productFirstLineUtcTime", ""))

    def seconds(text: str | None) -> float:
        return (parse_time(text or "") - t0).total_seconds()

    orbits = root.findall("generalAnnotation/orbitList/orbit")
    if len(orbits) < 4:
        raise InputError(
            f"the product annotation has {len(orbits)} orbit state vectors; at least 4 are needed"
        )
    times = np.array([seconds(o.findtext("time")) for o in orbits])
    pos = np.array([[float(o.findtext(f"position/{a}", "nan")) for a in "xyz"] for o in orbits])
    vel = np.array([[float(o.findtext(f"velocity/{a}", "nan")) for a in "xyz"] for o in orbits])
    order = np.argsort(times)
    points = root.findall("geolocationGrid/geolocationGridPointList/geolocationGridPoint")
    grid = np.array(
        [
            [
                float(p.findtext(k, "nan"))
                for k in (
                    "line",
                    "pixel",
                    "latitude",
                    "longitude",
                    "height",
                    "incidenceAngle",
                    "slantRangeTime",
                )
            ]
            for p in points
        ]
    )
    conversions = root.findall("coordinateConversion/coordinateConversionList/coordinateConversion")
    if not conversions:
        raise InputError(
            "the product annotation has no slant-to-ground range conversion (coordinateConversion)"
        )
    processing = root.find("imageAnnotation/processingInformation")
    a = (
        float(processing.findtext("ellipsoidSemiMajorAxis", "6378137.0"))
        if processing is not None
        else 6378137.0
    )
    b = (
        float(processing.findtext("ellipsoidSemiMinorAxis", "6356752.314245"))
        if processing is not None
        else 6356752.314245
    )
    return Annotation(
        first_line_time=t0,
        azimuth_time_interval=float(info.findtext("azimuthTimeInterval", "nan")),
        range_pixel_spacing=float(info.findtext("rangePixelSpacing", "nan")),
        azimuth_pixel_spacing=float(info.findtext("azimuthPixelSpacing", "nan")),
        width=int(info.findtext("numberOfSamples", "0")),
        height=int(info.findtext("numberOfLines", "0")),
        radar_frequency=float(general.findtext("radarFrequency", "nan")),
        incidence_mid_swath=float(info.findtext("incidenceAngleMidSwath", "nan")),
        orbit_times=times[order],
        orbit_positions=pos[order],
        orbit_velocities=vel[order],
        grid=grid,
        srgr_times=np.array([seconds(c.findtext("azimuthTime")) for c in conversions]),
        srgr_origins=np.array([float(c.findtext("sr0", "nan")) for c in conversions]),
        srgr_coefficients=np.array([_floats(c.findtext("srgrCoefficients")) for c in conversions]),
        ellipsoid=(a, b),
    )


def _lut(vectors: list[ET.Element], value_tag: str) -> LutVectors:
    lines = np.array([float(v.findtext("line", "nan")) for v in vectors])
    return LutVectors(
        lines=lines,
        pixels=tuple(_floats(v.findtext("pixel")) for v in vectors),
        values=tuple(_floats(v.findtext(value_tag)) for v in vectors),
    )


def _calibration(root: ET.Element) -> dict[str, LutVectors]:
    vectors = root.findall("calibrationVectorList/calibrationVector")
    if not vectors:
        raise InputError("the calibration annotation holds no calibrationVector")
    return {
        name: _lut(vectors, tag)
        for name, tag in (("sigma0", "sigmaNought"), ("beta0", "betaNought"), ("gamma0", "gamma"))
    }


def _noise_range(root: ET.Element) -> LutVectors:
    vectors = root.findall("noiseRangeVectorList/noiseRangeVector")
    if vectors:
        return _lut(vectors, "noiseRangeLut")
    vectors = root.findall("noiseVectorList/noiseVector")  # before IPF 2.9: range noise only
    if not vectors:
        raise InputError("the noise annotation holds no noise vector (noiseRangeVector / noiseVector)")
    return _lut(vectors, "noiseLut")


def _noise_azimuth(root: ET.Element) -> tuple[AzimuthNoiseBlock, ...]:
    blocks = []
    for v in root.findall("noiseAzimuthVectorList/noiseAzimuthVector"):
        blocks.append(
            AzimuthNoiseBlock(
                first_line=int(v.findtext("firstAzimuthLine", "0")),
                last_line=int(v.findtext("lastAzimuthLine", "0")),
                first_sample=int(v.findtext("firstRangeSample", "0")),
                last_sample=int(v.findtext("lastRangeSample", "0")),
                lines=_floats(v.findtext("line")),
                values=_floats(v.findtext("noiseAzimuthLut")),
            )
        )
    return tuple(blocks)
