"""Sentinel-1 GRD products as inputs: the acquisition of a product in radar geometry, the
map grid of a set of them, and their analysis-ready backscatter on that grid.

A GRD acquisition (``resolve_s1_product``) carries the product's polarisations with
``units="grd"`` and ``eowatch:radar_geometry``; nothing reads its pixels as they are.
``geocode_acquisitions`` turns each into calibrated, noise-removed backscatter (linear
power) on one grid (``ard_grid``: the requested CRS, else the UTM zone of the AOI or of
the products' overlap; the requested resolution, else 10 m, the GRDH pixel spacing) and
returns the acquisitions of those COGs, so every preset reads them like any other
calibrated input. The COGs are kept in a cache folder keyed by product, grid and options:
a monitoring task that sees the same product again reuses them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds, transform_geom
from rasterio.windows import Window
from shapely.geometry import Polygon, box, mapping, shape
from shapely.geometry.base import BaseGeometry

from ..errors import AOIError, InputError, NoOverlapError
from ..kernels.sar import estimate_enl
from ..model import Grid
from .load import snap_grid, utm_epsg
from .remote import gdal_href
from .s1_geocode import DemView, GeocodeOptions, geocode_bands, multilook_factor
from .s1_safe import GrdProduct, ItemFiles, open_grd, read_grd
from .sar_units import GRD_PROCESSING, SAR_POLARISATIONS
from .sources import Acquisition, BandAsset

__all__ = [
    "resolve_s1_product",
    "resolve_s1_item",
    "is_grd_item",
    "is_radar_geometry",
    "product_of",
    "ard_grid",
    "geocode_acquisitions",
    "check_dem_coverage",
    "calibration_options",
    "write_ard_item",
    "DEFAULT_RESOLUTION",
    "NOMINAL_ENL",
]

RADAR_GEOMETRY = "eowatch:radar_geometry"
#: Output spacing without --resolution: the GRDH pixel spacing.
DEFAULT_RESOLUTION = 10.0
#: Equivalent number of looks of the product as delivered (Sentinel-1 Product Definition,
#: S1-RS-MDA-52-7440, table of GRD resolutions and ENL), by mode and resolution class.
NOMINAL_ENL = {("IW", "H"): 4.4, ("IW", "M"): 81.8, ("EW", "H"): 2.7, ("EW", "M"): 10.7, ("SM", "H"): 3.9}
_ENL_SAMPLE = 1024


#: STAC Items of GRD acquisitions by their acquisition href, read when geocoded.
_ITEMS: dict[str, Any] = {}


@lru_cache(maxsize=16)
def product_of(href: str) -> GrdProduct:
    """The parsed product behind an acquisition's ``href`` (a SAFE, or a STAC Item resolved
    here), parsed once per process."""
    if href in _ITEMS:
        return _item_product(_ITEMS[href], href)
    return open_grd(href)


def is_grd_item(item: Any) -> bool:
    """A Sentinel-1 GRD Item in radar geometry: measurement and annotation assets
    (Earth Search ``sentinel-1-grd``, CDSE; stactools-sentinel1 asset names)."""
    return str(item.properties.get("sar:product_type", "")).upper() == "GRD" and any(
        key.startswith("schema-product-") for key in item.assets
    )


def resolve_s1_item(item: Any, href: str = "") -> Acquisition:
    """The acquisition of a GRD STAC Item (in radar geometry); its annotation is read only
    when it is geocoded."""
    key = href or f"stac:{item.collection_id}/{item.id}"
    _ITEMS[key] = item
    pols = [p for p in SAR_POLARISATIONS if p in item.assets]
    if not pols:
        raise InputError(f"STAC Item {item.id} has no measurement asset (vv, vh, hh or hv)")
    assets = {
        p: BandAsset(
            gdal_href(item.assets[p].get_absolute_href() or item.assets[p].href), units="grd", nodata=0.0
        )
        for p in pols
    }
    properties: dict[str, Any] = {**item.properties, RADAR_GEOMETRY: True}
    return Acquisition(item.id, "sentinel-1", assets, item.datetime, key, properties)


def _item_product(item: Any, href: str) -> GrdProduct:
    """The product of a GRD Item, from its manifest, annotation and measurement assets."""
    hrefs: dict[str, str] = {}
    for key in ("safe-manifest", "safe_manifest"):
        if key in item.assets:
            hrefs["manifest.safe"] = item.assets[key].get_absolute_href() or item.assets[key].href
    for pol in (p for p in SAR_POLARISATIONS if f"schema-product-{p}" in item.assets):
        annotation = item.assets[f"schema-product-{pol}"].get_absolute_href() or ""
        calibration = item.assets.get(f"schema-calibration-{pol}")
        if calibration is not None and "/calibration/calibration-" in (calibration.href or ""):
            # the SAFE layout puts the product annotation beside calibration/ (Earth Search's
            # schema-product asset is the RFI annotation in products since IPF 3.4)
            annotation = (calibration.get_absolute_href() or "").replace("/calibration/calibration-", "/")
        name = PurePosixPath(annotation.split("?")[0]).name
        hrefs[f"annotation/{name}"] = annotation
        for kind in ("calibration", "noise"):
            asset = item.assets.get(f"schema-{kind}-{pol}")
            if asset is not None:
                hrefs[f"annotation/calibration/{kind}-{name}"] = asset.get_absolute_href() or asset.href
        if pol in item.assets:
            hrefs[f"measurement/{name.removesuffix('.xml')}.tiff"] = (
                item.assets[pol].get_absolute_href() or ""
            )
    if "manifest.safe" not in hrefs:
        raise InputError(
            f"STAC Item {item.id} has no safe-manifest asset; eowatch needs the product's manifest"
        )
    _check_requester_pays(item, hrefs.values())
    product_id = str(item.properties.get("s1:product_identifier") or item.id)
    return read_grd(ItemFiles(f"STAC Item {item.id}", hrefs), product_id, href)


def _check_requester_pays(item: Any, hrefs: Any) -> None:
    """Refuse, before any read, assets in a requester-pays bucket without AWS credentials;
    with them, tell GDAL to accept the charge (and the bucket's region)."""
    s3 = [h for h in hrefs if h.startswith("s3://")]
    props = item.properties
    # storage extension v1 (properties) or v2 (pystac migrates v1 to "storage:schemes")
    schemes = [dict(props)] + [dict(v) for v in (props.get("storage:schemes") or {}).values()]
    paying = [s for s in schemes if s.get("requester_pays") or s.get("storage:requester_pays")]
    if not s3 or not paying:
        return
    bucket = s3[0][len("s3://") :].split("/")[0]
    region = paying[0].get("region") or paying[0].get("storage:region")
    has_credentials = bool(os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")) or (
        Path("~/.aws/credentials").expanduser().is_file()
    )
    if not has_credentials:
        raise InputError(
            f"STAC Item {item.id}: its assets are in the requester-pays bucket s3://{bucket} (Earth Search "
            "sentinel-1-grd), readable only with AWS credentials, the transfer billed to that account: set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_REQUEST_PAYER=requester, "
            "or use another provider of the product (CDSE)"
        )
    from rasterio.env import set_gdal_config

    set_gdal_config("AWS_REQUEST_PAYER", os.environ.get("AWS_REQUEST_PAYER", "requester"))
    if region:
        set_gdal_config("AWS_REGION", os.environ.get("AWS_REGION", str(region)))


def resolve_s1_product(text: str) -> Acquisition:
    """The acquisition of a GRD SAFE folder, zip or manifest (in radar geometry)."""
    product = product_of(text)
    missing = [p.upper() for p, b in product.bands.items() if not b.measurement]
    if missing:
        raise InputError(
            f"{product.id} holds no measurement TIFF for {', '.join(missing)} (a metadata-only download?); "
            "download the complete GRD product"
        )
    assets = {p: BandAsset(b.measurement, units="grd", nodata=0.0) for p, b in product.bands.items()}
    properties: dict[str, Any] = {**product.properties(), RADAR_GEOMETRY: True}
    return Acquisition(product.id, "sentinel-1", assets, product.start, text, properties)


def is_radar_geometry(acq: Acquisition) -> bool:
    return bool(acq.properties.get(RADAR_GEOMETRY))


def _footprint(product: GrdProduct) -> BaseGeometry:
    """The product's footprint (lon/lat) from its geolocation grid's outer points."""
    grid = next(iter(product.bands.values())).annotation.grid
    lines, pixels = grid[:, 0], grid[:, 1]
    edge = (
        (lines == lines.min()) | (lines == lines.max()) | (pixels == pixels.min()) | (pixels == pixels.max())
    )
    pts = grid[edge]
    centre = pts[:, [1, 0]].mean(axis=0)
    order = np.argsort(np.arctan2(pts[:, 0] - centre[1], pts[:, 1] - centre[0]))
    return Polygon(pts[order][:, [3, 2]]).convex_hull


def ard_grid(
    acqs: Sequence[Acquisition], aoi: BaseGeometry | None, crs: str | None, resolution: float | None
) -> Grid:
    """The map grid of GRD acquisitions: where the first and last overlap (and the AOI),
    in ``crs`` (default: the UTM zone of the AOI's or the overlap's centre) at
    ``resolution`` (default 10 m), aligned on multiples of the resolution."""
    first, last = (_footprint(product_of(a.href)) for a in (acqs[0], acqs[-1]))
    overlap = first.intersection(last)
    if overlap.is_empty or overlap.area == 0:
        raise NoOverlapError(
            f"{acqs[0].id} and {acqs[-1].id} do not overlap; choose products over the same area"
        )
    area = overlap
    if aoi is not None:
        area = overlap.intersection(aoi)
        if area.is_empty or area.area == 0:
            raise AOIError(
                f"the AOI {tuple(round(v, 5) for v in aoi.bounds)} lies outside the common footprint of "
                f"{acqs[0].id} and {acqs[-1].id}; check the AOI (lon/lat order) or the products"
            )
    centre = area.centroid
    dst = CRS.from_user_input(crs) if crs else CRS.from_epsg(utm_epsg(centre.x, centre.y))
    res = resolution or (DEFAULT_RESOLUTION if not dst.is_geographic else DEFAULT_RESOLUTION / 111_320)
    bounds = shape(transform_geom("EPSG:4326", dst, mapping(area))).bounds
    return snap_grid(Affine(res, 0, 0, 0, -res, 0), dst, bounds)


def calibration_options(calibration: str, dem: str | None) -> GeocodeOptions:
    """The geocoding of ``calibration`` ("auto", "sigma0", "beta0", "gamma0", "gamma0-rtc")
    with ``dem`` (None: ellipsoid); "auto" is gamma0 RTC with a DEM, sigma0 without."""
    if calibration == "auto":
        calibration = "gamma0-rtc" if dem else "sigma0"
    if calibration == "gamma0-rtc":
        return GeocodeOptions("gamma0", dem, rtc=True)
    return GeocodeOptions(calibration, dem)


def geocode_acquisitions(
    acqs: Sequence[Acquisition],
    grid: Grid,
    folder: Path,
    calibration: str = "auto",
    dem: str | None = None,
    workers: int = 1,
) -> list[Acquisition]:
    """Every radar-geometry acquisition as calibrated backscatter COGs on ``grid`` (others
    as they are), written under ``folder`` (reused when already there)."""
    options = calibration_options(calibration, dem)
    if dem:
        check_dem_coverage(dem, grid)
    return [_geocoded(a, grid, folder, options, workers) if is_radar_geometry(a) else a for a in acqs]


def _geocoded(
    acq: Acquisition, grid: Grid, folder: Path, options: GeocodeOptions, workers: int
) -> Acquisition:
    product = product_of(acq.href)
    resolution = abs(grid.transform.a) if not grid.crs.is_geographic else abs(grid.transform.a) * 111_320
    key = json.dumps(
        {
            "id": product.id,
            "files": [_stamp(b.measurement) for b in product.bands.values()],  # a new download is redone
            "grid": [grid.crs.to_string(), list(grid.transform)[:6], grid.width, grid.height],
            "cal": [options.calibration, options.rtc],
            "dem": options.dem and os.path.abspath(options.dem),
        },
        sort_keys=True,
    )
    target = folder / f"{product.id}_{hashlib.sha256(key.encode()).hexdigest()[:10]}"
    meta_path = target / "ard.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
    else:
        bands = list(product.bands.values())
        dests = [target / f"{band.polarisation}.tif" for band in bands]
        tags = {"units": "linear", "calibration": _quantity(options)}
        geocode_bands(bands, grid, resolution, options, dests, tags, workers)
        files = {band.polarisation: str(dest) for band, dest in zip(bands, dests, strict=True)}
        factor = multilook_factor(bands[0], resolution)
        meta = {"assets": files, "properties": _provenance(product, options, factor, files)}
        tmp = meta_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, meta_path)  # written last: a cache entry without it is redone
    properties = {k: v for k, v in acq.properties.items() if k != RADAR_GEOMETRY}
    properties.update(meta["properties"])
    assets = {p: BandAsset(href, units="linear") for p, href in meta["assets"].items()}
    return replace(acq, assets=assets, properties=properties)


def _quantity(options: GeocodeOptions) -> str:
    return "gamma0 RTC (terrain flattened)" if options.rtc else options.calibration


def _stamp(path: str) -> list[float] | str:
    """Size and modification time of a local file (its path when not local)."""
    try:
        st = os.stat(path)
    except OSError:
        return path
    return [st.st_size, st.st_mtime]


def _provenance(
    product: GrdProduct, options: GeocodeOptions, factor: int, assets: dict[str, str]
) -> dict[str, Any]:
    enl = NOMINAL_ENL.get((product.mode, product.resolution_class))
    source = "nominal (S1 Product Definition)"
    if factor > 1 or enl is None:  # multilooked: measured on the result
        enl, source = _measured_enl(next(iter(assets.values()))), "measured on the geocoded image"
    dem = options.dem
    props: dict[str, Any] = {
        GRD_PROCESSING: {
            "input": "GRD",
            "calibration": _quantity(options),
            "thermal_noise_removed": True,
            "geometry": "terrain (range-Doppler with DEM)" if dem else "ellipsoid (geolocation grid heights)",
            "dem": dem,
            "multilook": [factor, factor],
            "resampling": "bilinear after multilook",
        },
        "sar:looks_range": factor,
        "sar:looks_azimuth": factor,
        "eowatch:enl_source": source,
    }
    if enl is not None and math.isfinite(enl):
        props["sar:looks_equivalent_number"] = round(float(enl), 3)
    return props


def _measured_enl(href: str) -> float:
    with rasterio.open(href) as ds:
        h, w = min(ds.height, _ENL_SAMPLE), min(ds.width, _ENL_SAMPLE)
        window = Window((ds.width - w) // 2, (ds.height - h) // 2, w, h)
        return estimate_enl(ds.read(1, window=window))


def check_dem_coverage(dem: str, grid: Grid, shape_px: int = 256) -> None:
    """Refuse a DEM that leaves part of ``grid`` without heights, saying how much."""
    with DemView(dem, grid) as view:
        heights = view.overview((min(shape_px, grid.height), min(shape_px, grid.width)))
    missing = float(np.mean(~np.isfinite(heights)))
    if missing > 0.001:
        left, bottom, right, top = transform_bounds(grid.crs, "EPSG:4326", *grid.bounds)
        area_km2 = missing * box(*grid.bounds).area / 1e6 if not grid.crs.is_geographic else float("nan")
        raise InputError(
            f"the DEM {dem} does not cover {missing:.0%} of the area to geocode (about {area_km2:,.0f} km2 "
            f"of lon {left:.4f}..{right:.4f}, lat {bottom:.4f}..{top:.4f}); give a DEM covering it (e.g. the "
            "Copernicus GLO-30 tiles of the area), or a smaller --aoi"
        )


def write_ard_item(acq: Acquisition, grid: Grid) -> Path:
    """A STAC Item (``item.json``) beside a geocoded acquisition's COGs, so that the ARD is an
    input like any other (``eowatch detect --before <folder>/item.json``)."""
    import pystac

    folder = Path(next(iter(acq.assets.values())).href).parent
    footprint = box(*transform_bounds(grid.crs, "EPSG:4326", *grid.bounds, densify_pts=21))
    properties = {k: v for k, v in acq.properties.items() if k not in ("start_datetime", "end_datetime")}
    properties.update(
        {
            "proj:code": grid.crs.to_string(),
            "proj:shape": [grid.height, grid.width],
            "proj:transform": list(grid.transform)[:6],
        }
    )
    item = pystac.Item(acq.id, mapping(footprint), list(footprint.bounds), acq.datetime, properties)
    for pol, asset in acq.assets.items():
        item.add_asset(
            pol,
            pystac.Asset(
                f"./{Path(asset.href).name}",
                pol.upper(),
                media_type=pystac.MediaType.COG,
                roles=["data"],
                extra_fields={"raster:bands": [{"unit": "linear", "nodata": "nan", "data_type": "float32"}]},
            ),
        )
    dest = folder / "item.json"
    item.set_self_href(str(dest))
    item.save_object(include_self_link=False, dest_href=str(dest))
    return dest
