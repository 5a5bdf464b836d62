"""Full-size benchmark inputs, built once from real imagery and cached.

* Sentinel-2: the bundled real Paris pair (OSCD, L1C DN) tiled to an MGRS tile
  (10 m: ``size`` px, 20 m: ``size // 2``, 60 m: ``size // 6``) on the UTM grid
  of T31UDQ, one tiled 512 x 512 DEFLATE COG with overviews per band, like the
  archive's L1C/L2A COGs; folders ``inputs/imgs_1`` and ``inputs/imgs_2``.
* OTB: the same four 10 m bands (B02 B03 B04 B08) stacked per date as a VRT
  (no copy: OTB reads the COGs through GDAL).
* Sentinel-1: the real Sen1Floods11 VV/VH scene of ``eowatch demo-s1`` (before,
  and after with its documented injected changes; a third, later date is the
  after of another speckle draw), tiled to ``size`` px on a UTM 10 m grid,
  two-band float32 dB COGs tagged ``units=dB`` like the demo.

Tiling mirrors alternate copies so tile edges meet without seams that would
read as change. Files that exist with the expected size, tiling and
compression are reused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray

REPO = Path(__file__).resolve().parents[1]
PARIS = REPO / "data" / "oscd-paris"
S2_RES = {"B01": 60, "B02": 10, "B03": 10, "B04": 10, "B05": 20, "B06": 20, "B07": 20, "B08": 10,
          "B8A": 20, "B09": 60, "B10": 60, "B11": 20, "B12": 20}  # fmt: skip
S2_DATES = {"imgs_1": "20161130", "imgs_2": "20171107"}
S2_ORIGIN = (399960.0, 5400000.0)  # T31UDQ upper-left corner (EPSG:32631)
S1_ORIGIN = (699960.0, 4300020.0)  # a UTM 30N tile corner near the Sen1Floods11 scene (EPSG:32630)
S1_NAMES = {
    "before": "s1bench_20190917_before.tif",
    "after": "s1bench_20190929_after.tif",
    "later": "s1bench_20191011_later.tif",
}
#: Speckle seed of the later date's demo build.
S1_LATER_SEED = 20191011
OTB_BANDS = ("B02", "B03", "B04", "B08")
COG = {"driver": "COG", "blocksize": 512, "compress": "DEFLATE", "overview_resampling": "average"}


@dataclass(frozen=True)
class BenchInputs:
    s2_before: Path
    s2_after: Path
    otb_before: Path
    otb_after: Path
    s1_before: Path
    s1_after: Path
    s1_later: Path


def mirror_tile(chip: NDArray[Any], size: int) -> NDArray[Any]:
    """Repeat a (bands, h, w) chip to (bands, size, size), mirroring every other copy."""
    h, w = chip.shape[-2:]
    row = np.concatenate([chip if i % 2 == 0 else chip[..., ::-1] for i in range(-(-size // w))], axis=-1)
    full = np.concatenate([row if j % 2 == 0 else row[..., ::-1, :] for j in range(-(-size // h))], axis=-2)
    return np.ascontiguousarray(full[..., :size, :size])


def _usable(path: Path, size: int) -> bool:
    """An earlier build with the expected size, 512 px tiles, DEFLATE and overviews."""
    if not path.exists():
        return False
    try:
        with rasterio.open(path) as ds:
            return (
                ds.width == ds.height == size
                and ds.block_shapes[0] == (512, 512)
                and str(ds.compression).lower().endswith("deflate")
                and bool(ds.overviews(1))
            )
    except rasterio.errors.RasterioIOError:
        return False


def _write_cog(path: Path, data: NDArray[Any], crs: str, transform: Affine, **extra: Any) -> None:
    descriptions = extra.pop("descriptions", None)
    tags = extra.pop("tags", {})
    count, height, width = data.shape
    profile = dict(COG, width=width, height=height, count=count, dtype=data.dtype.name, crs=crs,
                   transform=transform, **extra)  # fmt: skip
    tmp = path.with_name(f".{path.name}.part")
    with rasterio.open(tmp, "w", **profile) as ds:
        ds.write(data)
        if descriptions:
            ds.descriptions = descriptions
        if tags:
            ds.update_tags(**tags)
    tmp.replace(path)  # a killed build never leaves a file that looks complete


def build_s2(inputs: Path, bands: list[str], size: int) -> tuple[Path, Path]:
    folders = []
    for date_dir, date in S2_DATES.items():
        out = inputs / date_dir
        out.mkdir(parents=True, exist_ok=True)
        for band in bands:
            res = S2_RES[band]
            band_size = size * 10 // res
            dest = out / f"T31UDQ_{date}_{band}.tif"
            if _usable(dest, band_size):
                continue
            with rasterio.open(next((PARIS / date_dir).glob(f"*_{band}.tif"))) as ds:
                chip = ds.read(1)[None]
            transform = Affine(res, 0, S2_ORIGIN[0], 0, -res, S2_ORIGIN[1])
            _write_cog(dest, mirror_tile(chip, band_size), "EPSG:32631", transform, nodata=0, predictor=2)
        folders.append(out)
    return folders[0], folders[1]


def _vrt(dest: Path, band_files: list[Path]) -> Path:
    """A band-separate VRT stacking single-band rasters of one grid."""
    with rasterio.open(band_files[0]) as ds:
        w, h, t, crs, dtype = ds.width, ds.height, ds.transform, ds.crs.to_wkt(), ds.dtypes[0]
    gdal_type = {"uint16": "UInt16", "float32": "Float32"}[dtype]
    bands = "".join(
        f'<VRTRasterBand dataType="{gdal_type}" band="{i}"><NoDataValue>0</NoDataValue><SimpleSource>'
        f'<SourceFilename relativeToVRT="0">{f}</SourceFilename><SourceBand>1</SourceBand>'
        f'<SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{gdal_type}" BlockXSize="512" '
        f'BlockYSize="512"/><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/></SimpleSource></VRTRasterBand>\n'
        for i, f in enumerate(band_files, start=1)
    )
    gt = ", ".join(repr(v) for v in t.to_gdal())
    srs = crs.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    dest.write_text(
        f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">\n<SRS>{srs}</SRS>\n'
        f"<GeoTransform>{gt}</GeoTransform>\n{bands}</VRTDataset>\n"
    )
    return dest


def build_otb_stacks(inputs: Path, before: Path, after: Path) -> tuple[Path, Path]:
    out = inputs / "otb"
    out.mkdir(parents=True, exist_ok=True)
    return tuple(  # type: ignore[return-value]
        _vrt(out / f"{folder.name}_4band.vrt", [next(folder.glob(f"*_{b}.tif")) for b in OTB_BANDS])
        for folder in (before, after)
    )


def build_s1(inputs: Path, size: int) -> tuple[Path, Path, Path]:
    from eowatch.demo_s1 import build_s1_demo

    out = inputs / f"s1_{size}px"
    paths = (out / S1_NAMES["before"], out / S1_NAMES["after"], out / S1_NAMES["later"])
    if all(_usable(p, size) for p in paths):
        return paths
    demo = build_s1_demo(out / "demo-chip")  # the real scene + documented injected changes, 512 x 512
    later = build_s1_demo(out / "demo-chip-later", seed=S1_LATER_SEED)
    for src, dest in zip((demo.before, demo.after, later.after), paths, strict=True):
        with rasterio.open(src) as ds:
            chip, descriptions, tags = ds.read(), ds.descriptions, ds.tags()
        transform = Affine(10, 0, S1_ORIGIN[0], 0, -10, S1_ORIGIN[1])
        _write_cog(dest, mirror_tile(chip, size), "EPSG:32630", transform, nodata=float("nan"),
                   predictor="YES", descriptions=descriptions, tags=tags)  # fmt: skip
    return paths


def build_all(inputs: Path, s2_bands: list[str], size: int, s1_size: int) -> BenchInputs:
    """All inputs; the Sentinel-1 pair only when ``s1_size`` > 0."""
    before, after = build_s2(inputs, s2_bands, size)
    otb_before, otb_after = build_otb_stacks(inputs, before, after)
    s1_before, s1_after, s1_later = build_s1(inputs, s1_size) if s1_size else (Path(), Path(), Path())
    return BenchInputs(before, after, otb_before, otb_after, s1_before, s1_after, s1_later)
