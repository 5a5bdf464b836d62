"""Sentinel-2 products as served today, read every way a user has them.

The metadata are real (``tests/data/s2_metadata``: a baseline-05.10 L2A product, a
baseline-05.09 L1C product, an L1C granule's angles). The band rasters are written by
the tests with made-up digital numbers (small, on the product's real file layout and
UTM zone), so that the expected reflectance is known.
"""

from __future__ import annotations

import gzip
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from eowatch.errors import InputError, InputReadError, MissingBandError
from eowatch.io.load import read_band, reference_grid
from eowatch.io.s2_metadata import parse_product_metadata, parse_tile_angles
from eowatch.io.sources import acquisition_from_item, resolve_input

DATA = Path(__file__).resolve().parents[1] / "data" / "s2_metadata"
L2A_MTD = DATA / "MTD_MSIL2A.xml"
L1C_MTD = DATA / "MTD_MSIL1C.xml"
PRODUCT = "S2B_MSIL2A_20231217T135659_N0510_R067_T21JUK_20231217T175625"
CRS = "EPSG:32721"  # tile 21JUK
SIZE_10M = 60  # pixels of a 10 m band (600 m): 20 m bands 30, 60 m bands 10


def _dn(shape: tuple[int, int], seed: int, shifted: bool = True) -> np.ndarray:
    """Made-up DN of a baseline >= 04.00 product: reflectance 0.02..0.5 plus 1000
    (``shifted=False``: without the 1000, as harmonised copies hold them)."""
    rng = np.random.default_rng(seed)
    return (rng.uniform(0.02, 0.5, shape) * 10000 + (1000 if shifted else 0)).astype(np.uint16)


def _write_band(path: Path, resolution: int, seed: int, dtype: str = "uint16", shifted: bool = True) -> None:
    n = SIZE_10M * 10 // resolution
    data = _dn((n, n), seed, shifted) if dtype == "uint16" else np.full((n, n), 4, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="JP2OpenJPEG", width=n, height=n, count=1, dtype=dtype, crs=CRS,
                   transform=Affine(resolution, 0, 300000, 0, -resolution, 7200040), nodata=0)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def build_safe(
    root: Path, mtd: Path = L2A_MTD, skip: tuple[str, ...] = (), shifted: bool = True, date: str | None = None
) -> Path:
    """A SAFE folder with the real MTD and every band file it lists (made-up pixels);
    ``date`` (YYYYMMDD) renames the product as another acquisition of the same tile."""
    text = mtd.read_text()
    uri = re.search(r"<PRODUCT_URI>([^<]+)</PRODUCT_URI>", text)
    assert uri
    name = uri.group(1)
    if date:
        renamed = re.sub(r"_(\d{8})T", f"_{date}T", name, count=1)
        text, name = text.replace(name, renamed), renamed
    safe = root / name
    safe.mkdir(parents=True)
    (safe / mtd.name).write_text(text)
    entries = re.findall(r"<IMAGE_FILE>([^<]+)</IMAGE_FILE>", text)
    for i, entry in enumerate(entries):
        m = re.search(r"_(B\d\d|B8A|SCL)(?:_(\d+)m)?$", entry)
        if not m or any(entry.endswith(s) for s in skip):
            continue
        band, res = m.group(1), int(m.group(2) or {"B01": 60, "B09": 60, "B10": 60}.get(m.group(1), 10))
        if band in {"B05", "B06", "B07", "B8A", "B11", "B12"} and not m.group(2):
            res = 20
        dtype = "uint8" if band == "SCL" else "uint16"
        _write_band(safe / f"{entry}.jp2", res, seed=i, dtype=dtype, shifted=shifted)
    granule = safe / Path(entries[0]).parents[2]
    (granule / "MTD_TL.xml").write_bytes(gzip.decompress((DATA / "MTD_TL_L1C_T05VPH.xml.gz").read_bytes()))
    return safe


def zip_safe(safe: Path) -> Path:
    archive = safe.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for path in sorted(safe.rglob("*")):
            z.write(path, path.relative_to(safe.parent).as_posix())
    return archive


@pytest.fixture(scope="module")
def safe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_safe(tmp_path_factory.mktemp("s2safe"))


def test_baseline_05_metadata_declares_offsets_and_quantification():
    l2a = parse_product_metadata(L2A_MTD.read_bytes())
    assert (l2a.level, l2a.baseline) == ("L2A", "05.10")
    assert l2a.radiometry.scale == pytest.approx(1e-4)
    assert l2a.radiometry.offsets == {b: pytest.approx(-0.1) for b in l2a.radiometry.offsets}
    assert len(l2a.radiometry.offsets) == 13
    l1c = parse_product_metadata(L1C_MTD.read_bytes(), "MTD_MSIL1C.xml")
    assert (l1c.level, l1c.baseline) == ("L1C", "05.09")
    assert l1c.radiometry.offset("B10") == pytest.approx(-0.1)


def test_tile_angles_are_the_granule_means():
    angles = parse_tile_angles(gzip.decompress((DATA / "MTD_TL_L1C_T05VPH.xml.gz").read_bytes()))
    # Mean_Sun_Angle of the real granule (October, Alaska: low sun from the south).
    assert angles.sun_zenith == pytest.approx(70.1129343050133)
    assert angles.sun_azimuth == pytest.approx(175.411210815166)
    assert angles.view_zenith is not None and 0 < angles.view_zenith < 12  # MSI's field of view
    props = angles.properties()
    assert props["view:sun_elevation"] == pytest.approx(90 - 70.1129343050133)


def test_one_product_read_four_ways_gives_identical_radiometry_and_values(safe):
    """SAFE folder, zipped SAFE (/vsizip/), MTD path and GDAL subdataset: same bands, same
    scale/offset, same reflectance."""
    archive = zip_safe(safe)
    forms = {
        "folder": str(safe),
        "zip": str(archive),
        "mtd": str(safe / "MTD_MSIL2A.xml"),
        "subdataset": f"SENTINEL2_L2A:{safe / 'MTD_MSIL2A.xml'}:10m:EPSG_32721",
    }
    acqs = {name: resolve_input(text) for name, text in forms.items()}
    assert acqs["zip"].assets["B04"].href.startswith("/vsizip/")
    reference = acqs["folder"]
    assert reference.id == PRODUCT and reference.datetime is not None
    assert reference.properties["s2:processing_baseline"] == "05.10"
    assert reference.properties["eowatch:radiometry"]["source"] == "MTD_MSIL2A.xml"
    assert "view:sun_azimuth" in reference.properties
    assert set(reference.assets) == {f"B{i:02d}" for i in range(1, 13) if i != 10} | {"B8A", "SCL"}
    # a saturated pixel (65535) is no valid data in every band, except in the SCL's classes
    assert {b: a.saturated for b, a in reference.assets.items()} == {
        b: (None if b == "SCL" else 65535) for b in reference.assets
    }
    grid = reference_grid(reference)
    expected = None
    for name, acq in acqs.items():
        assert set(acq.assets) == set(reference.assets), name
        for band, asset in acq.assets.items():
            ref = reference.assets[band]
            assert (asset.scale, asset.offset, asset.nodata, asset.saturated) == (
                ref.scale,
                ref.offset,
                ref.nodata,
                ref.saturated,
            ), (
                name,
                band,
            )
        values, _ = read_band(acq.assets["B04"], grid)
        if expected is None:
            expected = values
        np.testing.assert_array_equal(values, expected, err_msg=name)
    # (DN - 1000) / 10000: the made-up reflectance range, not 0.1 too high.
    assert 0.019 < float(expected.min()) and float(expected.max()) < 0.501


def _stac11_item(safe: Path, radiometry_on_assets: bool) -> pystac.Item:
    """An Item in the layout of the Copernicus Data Space STAC (STAC 1.1: an asset per band
    and resolution, ``B04_10m``, ``B04_20m``...; ``bands``, ``raster:scale``/``raster:offset``
    and ``nodata`` on the asset; ``processing:version`` and ``product:type``), pointing at
    the SAFE's own band files. Written here, not recorded: no CDSE response is available offline."""
    assets = {}
    for jp2 in sorted(safe.glob("GRANULE/*/IMG_DATA/R*m/*.jp2")):
        m = re.search(r"_(B\d\d|B8A|SCL)_(\d+)m\.jp2$", jp2.name)
        if not m:
            continue
        band, res = m.groups()
        asset = {"href": str(jp2), "type": "image/jp2", "roles": ["data"], "gsd": int(res),
                 "bands": [{"name": band}], "nodata": 0}  # fmt: skip
        if radiometry_on_assets and band != "SCL":
            asset |= {"raster:scale": 0.0001, "raster:offset": -0.1}
        assets[f"{band}_{res}m"] = asset
    return pystac.Item.from_dict({
        "type": "Feature", "stac_version": "1.1.0", "id": PRODUCT, "collection": "sentinel-2-l2a",
        "geometry": None, "links": [], "assets": assets,
        "properties": {"datetime": "2023-12-17T13:56:59.024Z", "processing:version": "05.10",
                       "product:type": "S2MSI2A", "view:sun_azimuth": 80.0, "view:sun_elevation": 60.0},
    })  # fmt: skip


@pytest.mark.parametrize("radiometry_on_assets", [True, False], ids=["raster-fields", "baseline-only"])
def test_cdse_item_reads_like_the_safe(safe, radiometry_on_assets):
    """A CDSE-layout Item of the product: each band from its native resolution file, with
    the SAFE's scale and offset (stated on the assets, or derived from ``processing:version``)."""
    from_item = acquisition_from_item(_stac11_item(safe, radiometry_on_assets))
    from_safe = resolve_input(safe)
    assert set(from_item.assets) == set(from_safe.assets)
    assert from_item.properties["processing:level"] == "L2A"
    for band, asset in from_item.assets.items():
        ref = from_safe.assets[band]
        assert Path(asset.href).name == Path(ref.href).name, band  # B04_10m, B05_20m, B01_60m, SCL_20m
        assert (asset.scale, asset.offset, asset.nodata) == pytest.approx(
            (ref.scale, ref.offset, ref.nodata)
        ), band
    grid = reference_grid(from_safe)
    np.testing.assert_array_equal(
        read_band(from_item.assets["B11"], grid)[0], read_band(from_safe.assets["B11"], grid)[0]
    )


def test_band_folder_inside_a_safe_takes_the_product_radiometry(safe):
    r10m = next(safe.glob("GRANULE/*/IMG_DATA/R10m"))
    acq = resolve_input(r10m)
    assert acq.assets["B04"].offset == pytest.approx(-0.1)
    assert acq.properties["eowatch:radiometry"]["source"].endswith("MTD_MSIL2A.xml")


def test_band_folder_without_metadata_says_what_it_assumed(paris):
    acq = resolve_input(paris / "imgs_1")
    assert acq.assets["B04"].offset == 0.0
    assert acq.properties["eowatch:radiometry"]["source"].startswith("assumed")


@pytest.mark.filterwarnings("ignore:Could not parse bucket")  # pystac migrating storage v1 fields
def test_stac_items_give_the_same_reflectance_rule(shared_data):
    """Earth Search Collection-1 items declare the shift; the old ``sentinel-2-l2a`` items
    with ``boa_offset_applied`` serve COGs already shifted (offset 0)."""
    c1 = json.loads((shared_data / "stac/earth_search_v1/sentinel-2-c1-l2a_items.json").read_text())
    old = json.loads((shared_data / "stac/earth_search_v1/sentinel-2-l2a_items.json").read_text())
    pc = json.loads((shared_data / "stac/planetary_computer/sentinel-2-l2a_items.json").read_text())
    a_c1 = acquisition_from_item(pystac.Item.from_dict(c1["features"][0]))
    a_old = acquisition_from_item(pystac.Item.from_dict(old["features"][0]))
    a_pc = acquisition_from_item(pystac.Item.from_dict(pc[0]))
    l1c = json.loads((shared_data / "stac/earth_search_v1/sentinel-2-l1c_items.json").read_text())
    a_l1c = acquisition_from_item(pystac.Item.from_dict(l1c["features"][0]))
    assert a_l1c.properties["processing:level"] == "L1C" and a_l1c.assets["B04"].offset == pytest.approx(-0.1)
    assert a_l1c.assets["B04"].href.startswith("/vsis3/")  # the L1C JPEG2000 in the requester-pays bucket
    assert a_c1.assets["B04"].offset == pytest.approx(-0.1)
    assert a_old.properties["earthsearch:boa_offset_applied"] is True and a_old.assets["B04"].offset == 0.0
    assert a_pc.properties["s2:processing_baseline"] == "05.10" and a_pc.assets[
        "B04"
    ].offset == pytest.approx(-0.1)
    assert a_pc.properties["view:sun_elevation"] == pytest.approx(90 - 75.1644683744649)
    assert {a.properties["processing:level"] for a in (a_c1, a_old, a_pc)} == {"L2A"}


def test_safe_with_a_missing_band_names_it(tmp_path):
    safe = build_safe(tmp_path, skip=("_B08_10m",))
    with pytest.raises(MissingBandError, match=r"\['B08'\].*B08_10m\.jp2"):
        resolve_input(safe)


def test_level_1b_is_refused(tmp_path):
    mtd = tmp_path / "MTD_MSIL2A.xml"
    mtd.write_text(L2A_MTD.read_text().replace("<PROCESSING_LEVEL>Level-2A", "<PROCESSING_LEVEL>Level-1B"))
    with pytest.raises(InputError, match="Level-1B products are not supported"):
        resolve_input(mtd)


def test_zip_that_is_not_a_sentinel2_product(tmp_path):
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("readme.txt", "hello")
    with pytest.raises(InputError, match="holds no Sentinel-2 product metadata"):
        resolve_input(archive)


def test_corrupt_jp2_is_a_read_error_naming_the_file(tmp_path):
    safe = build_safe(tmp_path)
    band = next(safe.glob("GRANULE/*/IMG_DATA/R10m/*_B04_10m.jp2"))
    band.write_bytes(band.read_bytes()[:200])  # truncated download
    acq = resolve_input(safe)
    with pytest.raises(InputReadError, match="B04_10m.jp2"):
        read_band(acq.assets["B04"], reference_grid(acq))


def _plan(before: object, after: object, **params: object) -> object:
    from eowatch.plan import DetectRequest, plan_pair
    from eowatch.settings import Settings

    return plan_pair(DetectRequest(before, after, "s2-cva", dict(params)), Settings())  # type: ignore[arg-type]


def test_offset_declared_but_already_applied_is_refused(tmp_path):
    """Harmonised DN (shift removed) under metadata that still declares it: 17 % of the
    made-up pixels would come out negative."""
    shifted = build_safe(tmp_path / "a")
    harmonised = build_safe(tmp_path / "b", shifted=False, date="20231227")
    _plan(str(shifted), str(build_safe(tmp_path / "c", date="20231227")))  # genuine products pass
    with pytest.raises(InputError, match="offset appears to be applied already"):
        _plan(str(shifted), str(harmonised))


def test_mixing_l1c_and_l2a_needs_the_flag_and_is_recorded(tmp_path):
    l2a, l1c = build_safe(tmp_path / "a"), build_safe(tmp_path / "b", mtd=L1C_MTD)
    with pytest.raises(InputError, match=r"mix processing levels .*allow_mixed_levels=true"):
        _plan(str(l2a), str(l1c))
    plan = _plan(str(l2a), str(l1c), allow_mixed_levels=True)
    assert plan.properties["eowatch:mixed_levels"] is True  # type: ignore[attr-defined]
    assert plan.properties["eowatch:processing_levels"] == ["L2A", "L1C"]  # type: ignore[attr-defined]


def test_item_with_a_non_numeric_scale_names_the_asset():
    item = pystac.Item.from_dict({
        "type": "Feature", "stac_version": "1.1.0", "id": "x", "collection": "sentinel-2-l2a",
        "geometry": None, "links": [], "properties": {"datetime": "2023-12-17T13:56:59Z"},
        "assets": {"B04_10m": {"href": "b04.jp2", "raster:scale": "abc", "bands": [{"name": "B04"}]}},
    })  # fmt: skip
    with pytest.raises(InputError, match=r"asset B04_10m: raster scale 'abc' is not a number"):
        acquisition_from_item(item)
