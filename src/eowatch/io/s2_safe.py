"""Sentinel-2 products as the archive serves them: a SAFE folder, a zipped SAFE (read in
place through GDAL's ``/vsizip/``, never unpacked), the product's ``MTD_MSIL1C.xml`` /
``MTD_MSIL2A.xml``, or a GDAL ``SENTINEL2_L1C:`` / ``SENTINEL2_L2A:`` subdataset name.

Every form goes through the product metadata (``eowatch.io.s2_metadata``): the band
files it lists (the finest resolution of each band), its radiometry (quantification
value and offsets) and the granule's sun and view angles. A GDAL subdataset names the
product's metadata file and one resolution; eowatch reads the product's own band files
at their native resolutions, as for the other forms, so all four give the same values.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

from ..errors import InputError, InputReadError, MissingBandError
from .s2_metadata import ProductMetadata, TileAngles, parse_product_metadata, parse_tile_angles
from .safe_files import SafeFiles
from .sources import Acquisition, BandAsset

__all__ = ["is_s2_product", "resolve_s2_product", "find_product_xml"]

_MTD = re.compile(r"^MTD_(MSIL1C|MSIL2A|SAFL1B|MSIL1B)\.xml$", re.IGNORECASE)
_SUBDATASET = re.compile(r"^SENTINEL2_L(1B|1C|2A)(?:_TILE)?:", re.IGNORECASE)
# "..._B8A_20m" / "..._B02" / "..._SCL_20m": band and (L2A) resolution of an IMAGE_FILE entry.
_IMAGE_BAND = re.compile(r"_(B0[1-9]|B1[0-2]|B8A|SCL)(?:_(\d+)m)?$", re.IGNORECASE)
_BAND_SUFFIX = ".jp2"


def is_s2_product(text: str) -> bool:
    """Whether ``text`` names a Sentinel-2 product in one of the forms above."""
    if _SUBDATASET.match(text):
        return True
    path = Path(text)
    if _MTD.match(path.name):
        return True
    if path.suffix.lower() == ".zip":
        return True
    return path.is_dir() and any(_MTD.match(p.name) for p in path.iterdir())


def resolve_s2_product(text: str) -> Acquisition:
    """The acquisition of a SAFE folder, zip, MTD XML path or ``SENTINEL2_*:`` subdataset."""
    files = _ProductFiles.of(text)
    meta = parse_product_metadata(files.read(files.mtd), files.mtd)
    assets = _band_assets(files, meta)
    properties = meta.properties()
    if (angles := _tile_angles(files, meta)) is not None:
        properties.update(angles.properties())
    product_id = meta.product_uri.removesuffix(".SAFE") or PurePosixPath(files.root).name.removesuffix(
        ".SAFE"
    )
    return Acquisition(
        id=product_id,
        sensor="sentinel-2",
        assets=assets,
        datetime=meta.datetime,
        href=text,
        properties=properties,
    )


def find_product_xml(folder: Path) -> Path | None:
    """The product metadata of a band folder inside a SAFE (``<SAFE>/GRANULE/<granule>/
    IMG_DATA[/R10m]``); None for folders elsewhere (only the SAFE layout ties bands to
    a product's metadata)."""
    parts = folder.resolve().parts
    if "GRANULE" not in parts:
        return None
    root = Path(*parts[: len(parts) - 1 - parts[::-1].index("GRANULE")])
    for candidate in ("MTD_MSIL2A.xml", "MTD_MSIL1C.xml"):
        if (root / candidate).is_file():
            return root / candidate
    return None


class _ProductFiles(SafeFiles):
    """A Sentinel-2 product's files; ``anchor`` is its product metadata (``MTD_MSIL*.xml``)."""

    @property
    def mtd(self) -> str:
        return self.anchor

    @classmethod
    def of(cls, text: str) -> _ProductFiles:
        if m := _SUBDATASET.match(text):
            if m.group(1).upper() == "1B":
                raise InputError(f"{text}: Level-1B products are not supported; give the L1C or L2A product")
            # SENTINEL2_L2A:<path to MTD>:<resolution>:<EPSG_x>; the path may hold ':' (/vsizip/C:/...).
            parts = text[m.end() :].split(":")
            named = ":".join(parts[:-2]) if len(parts) >= 3 else parts[0]
            return cls.of(named.strip('"'))
        if text.startswith("/vsizip/"):
            archive, _, inner = text[len("/vsizip/") :].partition(".zip")
            return cls._of_zip(Path(archive + ".zip"), inner.strip("/"))
        path = Path(text)
        if not path.exists():
            raise InputReadError(
                f"Sentinel-2 product {path} does not exist; give a SAFE folder, zip or MTD file"
            )
        if path.suffix.lower() == ".zip":
            return cls._of_zip(path, "")
        if path.is_file():
            if not _MTD.match(path.name):
                raise InputError(f"{path} is not a Sentinel-2 product metadata file (MTD_MSIL1C/2A.xml)")
            return cls(str(path.parent), path.name)
        mtd = [p.name for p in path.iterdir() if _MTD.match(p.name)]
        if not mtd:
            raise InputError(
                f"{path} holds no MTD_MSIL1C.xml / MTD_MSIL2A.xml; is it a Sentinel-2 SAFE folder?"
            )
        return cls(str(path), sorted(mtd)[0])

    @classmethod
    def _of_zip(cls, archive: Path, inner: str) -> _ProductFiles:
        files = SafeFiles.zipped(archive, _MTD, inner, "Sentinel-2 product metadata (MTD_MSIL1C/2A.xml)")
        return cls(files.root, files.anchor, files.archive, files.members)

    def granule_metadata(self) -> list[str]:
        """The granules' ``MTD_TL.xml``, relative to the SAFE root."""
        return self.listing(r"GRANULE/[^/]+/MTD_TL\.xml")


def _band_assets(files: _ProductFiles, meta: ProductMetadata) -> dict[str, BandAsset]:
    """The finest-resolution file of every band the product lists, scaled by its radiometry."""
    best: dict[str, tuple[int, str]] = {}
    for entry in meta.image_files:
        m = _IMAGE_BAND.search(entry)
        if not m:
            continue  # TCI, AOT, WVP
        band = m.group(1).upper()
        resolution = int(m.group(2) or 0)
        if band not in best or resolution < best[band][0]:
            best[band] = (resolution, entry + _BAND_SUFFIX)
    if not best:
        raise InputError(f"{files.name}: the product metadata lists no band files (IMAGE_FILE)")
    missing = {band: rel for band, (_, rel) in best.items() if not files.exists(rel)}
    if missing:
        raise MissingBandError(
            f"{files.name} is incomplete: band(s) {sorted(missing)} listed in {files.mtd} are missing "
            f"({', '.join(sorted(missing.values()))}); download the complete product again"
        )
    return meta.radiometry.apply(
        {band: BandAsset(files.href(rel), nodata=0.0) for band, (_, rel) in sorted(best.items())}
    )


def _tile_angles(files: _ProductFiles, meta: ProductMetadata) -> TileAngles | None:
    """The angles of the product's granule (one granule per product since 2016)."""
    granules = files.granule_metadata()
    if not granules:
        return None
    return parse_tile_angles(files.read(granules[0]), granules[0])
