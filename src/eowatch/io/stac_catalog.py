"""Static STAC catalogues on disk, the currency of OGC EO application packages
(OGC 20-089): stage-in hands a tool a folder holding ``catalog.json`` -> Item ->
assets, and the tool hands back a folder of the same shape.

* :func:`wrap_input` turns any input eowatch reads (band folder, multi-band
  raster) into such a catalogue: one Item whose band assets are copied beside
  it (a multi-band raster is split into one GeoTIFF per band, as STAC assets
  are one band each) and described so that :func:`resolve_input` reads them
  back to the same values (``eo:bands`` names, ``raster:bands`` scale, offset,
  nodata and unit).
* :func:`write_output_catalog` links product folders (their ``item.json``) from
  a ``catalog.json`` at the top of an output folder, with relative links.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import rasterio
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from ..errors import InputError
from .sources import Acquisition, BandAsset, resolve_input

__all__ = ["wrap_input", "write_output_catalog", "STAC_VERSION"]

STAC_VERSION = "1.0.0"
# The sar extension is not declared: it requires fields (instrument mode, product type)
# a plain raster does not tell; ``sar:polarizations`` alone is what eowatch reads.
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
]
# Sentinel-2 band id -> (asset key, STAC common name), as Earth Search names them.
_S2_ASSETS = {
    "B01": ("coastal", "coastal"),
    "B02": ("blue", "blue"),
    "B03": ("green", "green"),
    "B04": ("red", "red"),
    "B05": ("rededge1", "rededge"),
    "B06": ("rededge2", "rededge"),
    "B07": ("rededge3", "rededge"),
    "B08": ("nir", "nir"),
    "B8A": ("nir08", "nir08"),
    "B09": ("nir09", "nir09"),
    "B10": ("cirrus", "cirrus"),
    "B11": ("swir16", "swir16"),
    "B12": ("swir22", "swir22"),
    "SCL": ("scl", None),
}
# Raster "units" tags eowatch understands (see detect/s1.py) -> the raster:bands unit it reads back.
_UNIT_WORDS = {
    "db": "db", "decibel": "db", "decibels": "db", "linear": "linear", "power": "linear", "dn": "dn",
}  # fmt: skip
_GEOTIFF = "image/tiff; application=geotiff"


def wrap_input(
    source: str | Path, out_dir: Path, item_id: str | None = None, sensor: str | None = None
) -> Path:
    """Write ``out_dir/catalog.json`` -> ``out_dir/<id>/<id>.json`` (one Item) with
    the band files of ``source`` beside the Item. Returns the catalogue's path."""
    acq = resolve_input(source, sensor)
    if acq.datetime is None:
        raise InputError(
            f"{source}: no acquisition date found (file names, dates.txt); a STAC Item needs one. "
            "Put the date (YYYYMMDD) in the file names or the folder's dates.txt"
        )
    item_id = item_id or acq.id
    item_dir = out_dir / item_id
    if item_dir.exists():
        shutil.rmtree(item_dir)
    item_dir.mkdir(parents=True)
    assets = {}
    for band, asset in sorted(acq.assets.items()):
        key, described = _describe(acq, band, asset)
        described["href"] = f"./{_copy_band(asset, band, item_dir)}"
        assets[key] = described
    item = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": _EXTENSIONS,
        "id": item_id,
        **_footprint(next(iter(acq.assets.values())).href),
        "properties": _properties(acq),
        "links": [
            {"rel": "root", "href": "../catalog.json", "type": "application/json"},
            {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
        ],
        "assets": assets,
    }
    (item_dir / f"{item_id}.json").write_text(json.dumps(item, indent=1))
    catalog = _catalog(f"{item_id}-catalog", f"{acq.sensor} acquisition {item_id}, wrapped by eowatch")
    link = {"rel": "item", "href": f"./{item_id}/{item_id}.json", "type": "application/geo+json"}
    catalog["links"].append(link)
    path = out_dir / "catalog.json"
    path.write_text(json.dumps(catalog, indent=1))
    return path


def write_output_catalog(out_dir: Path, product_folders: list[Path]) -> Path:
    """Add each product folder's ``item.json`` to ``out_dir/catalog.json`` (created
    when missing; links are relative so the folder can be moved or uploaded whole)."""
    path = out_dir / "catalog.json"
    fresh = _catalog("eowatch-results", "eowatch change products")
    catalog = json.loads(path.read_text()) if path.exists() else fresh
    linked = {link["href"] for link in catalog["links"] if link.get("rel") == "item"}
    for folder in product_folders:
        rel = f"./{Path(folder).resolve().relative_to(out_dir.resolve()).as_posix()}/item.json"
        if rel not in linked:
            catalog["links"].append({"rel": "item", "href": rel, "type": "application/geo+json"})
    path.write_text(json.dumps(catalog, indent=1))
    return path


def _catalog(catalog_id: str, description: str) -> dict[str, Any]:
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": catalog_id,
        "description": description,
        "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}],
    }


def _describe(acq: Acquisition, band: str, asset: BandAsset) -> tuple[str, dict[str, Any]]:
    """The asset key and STAC fields that make ``resolve_input`` read ``asset`` back as it is now."""
    raster: dict[str, Any] = {"scale": asset.scale, "offset": asset.offset}
    if asset.nodata is not None:
        # JSON has no NaN: the raster extension spells it "nan".
        raster["nodata"] = "nan" if math.isnan(asset.nodata) else asset.nodata
    fields: dict[str, Any] = {"type": _GEOTIFF, "roles": ["data"], "title": band}
    if acq.sensor == "sentinel-1":
        word = str(acq.properties.get("units") or acq.properties.get("unit") or "").lower()
        unit = asset.units if asset.units in ("linear", "db", "dn") else _UNIT_WORDS.get(word)
        if unit:
            raster["unit"] = "dB" if unit == "db" else unit
        return band, {**fields, "sar:polarizations": [band.upper()], "raster:bands": [raster]}
    key, common = _S2_ASSETS[band]
    eo = {"name": band, **({"common_name": common} if common else {})}
    return key, {**fields, "eo:bands": [eo], "raster:bands": [raster]}


def _copy_band(asset: BandAsset, band: str, item_dir: Path) -> str:
    """Copy one band next to the Item; a band of a multi-band raster becomes its own GeoTIFF."""
    with rasterio.open(asset.href) as ds:
        if ds.count == 1:
            name = Path(asset.href).name
            shutil.copyfile(asset.href, item_dir / name)
            return name
        profile = {**ds.profile, "count": 1}
        data, tags = ds.read(asset.band_index), ds.tags()
    name = f"{Path(asset.href).stem}_{band}.tif"
    with rasterio.open(item_dir / name, "w", **profile) as out:
        out.write(data, 1)
        out.update_tags(**tags)
        out.set_band_description(1, band)
    return name


def _footprint(href: str) -> dict[str, Any]:
    with rasterio.open(href) as ds:
        crs, bounds = ds.crs, ds.bounds
    geometry = transform_geom(crs, "EPSG:4326", mapping(box(*bounds)))
    return {"geometry": geometry, "bbox": list(shape(geometry).bounds)}


def _properties(acq: Acquisition) -> dict[str, Any]:
    assert acq.datetime is not None
    props: dict[str, Any] = {
        "datetime": acq.datetime.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "constellation": acq.sensor,
    }
    if acq.sensor == "sentinel-1":
        props["sar:polarizations"] = sorted(b.upper() for b in acq.assets)
    for key in ("processing:level", "sat:relative_orbit", "sat:orbit_state"):
        if key in acq.properties:
            props[key] = acq.properties[key]
    return props
