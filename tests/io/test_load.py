from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine

from eowatch.aoi import parse_aoi
from eowatch.errors import AOIError, InputReadError, NoOverlapError
from eowatch.io.load import pair_grid, read_scene
from eowatch.io.sources import resolve_input
from tests.http_server import serve


def test_default_grid_is_the_before_b02_grid(paris):
    b, a = resolve_input(paris / "imgs_1"), resolve_input(paris / "imgs_2")
    grid = pair_grid(b, a)
    with rasterio.open(b.assets["B02"].href) as ds:
        assert grid.shape == ds.shape and grid.transform.almost_equals(ds.transform)


def test_20m_and_60m_bands_are_resampled_onto_10m(paris):
    b, a = resolve_input(paris / "imgs_1"), resolve_input(paris / "imgs_2")
    grid = pair_grid(b, a)
    scene = read_scene(b, grid, ("B04", "B11", "B01"))
    assert scene.data.shape == (3, *grid.shape)
    assert scene.valid.all()
    with rasterio.open(b.assets["B11"].href) as ds:
        native = ds.read(1).astype(np.float64) * 1e-4
    # Bilinear upsampling keeps the band's mean within 1 %.
    assert scene.band("B11").mean() == pytest.approx(native.mean(), rel=0.01)
    assert 0.0 < scene.band("B04").mean() < 0.5  # reflectance, not DN


def test_hongkong_sizes_differ_but_date2_lands_on_the_date1_grid(shared_data):
    city = shared_data / "s2_pairs/oscd/hongkong"
    b, a = resolve_input(city / "imgs_1"), resolve_input(city / "imgs_2")
    grid = pair_grid(b, a)
    assert grid.shape == (695, 540)
    after = read_scene(a, grid, ("B02",))
    assert after.data.shape == (1, 695, 540) and after.valid.all()


def test_aoi_clip_target_crs_and_resolution(paris):
    b, a = resolve_input(paris / "imgs_1"), resolve_input(paris / "imgs_2")
    aoi = parse_aoi("2.32,48.81,2.34,48.83")
    grid = pair_grid(b, a, aoi, crs="EPSG:32631", resolution=20)
    assert grid.crs.to_epsg() == 32631 and grid.resolution == (20, 20)
    assert grid.transform.c % 20 == 0 and grid.transform.f % 20 == 0  # aligned like gdalwarp -tap
    scene = read_scene(b, grid, ("B04",), aoi)
    assert 0.5 < scene.valid.mean() <= 1.0  # bbox cells outside the AOI polygon are invalid


def test_nodata_is_carried_through(raster_factory):
    data = np.full((20, 20), 1200, dtype=np.uint16)
    data[:5] = 0
    before = raster_factory("b/T_20200101_B04.tif", data)
    raster_factory("a/T_20200201_B04.tif", np.full((20, 20), 1500, dtype=np.uint16))
    b, a = resolve_input(before.parent), resolve_input(before.parent.parent / "a")
    scene = read_scene(b, pair_grid(b, a), ("B04",))
    assert not scene.valid[:5].any() and scene.valid[5:].all()
    assert scene.band("B04")[10, 10] == pytest.approx(0.12)


def test_no_overlap_and_aoi_outside(raster_factory):
    d = np.full((10, 10), 1000, dtype=np.uint16)
    raster_factory("b/X_20200101_B04.tif", d)
    raster_factory("a/X_20200201_B04.tif", d, transform=Affine(10, 0, 700000, 0, -10, 5400000))
    b = resolve_input(raster_factory("b2/X_20200101_B04.tif", d).parent)
    far = resolve_input(
        raster_factory("a2/X_20200201_B04.tif", d, transform=Affine(10, 0, 700000, 0, -10, 5400000)).parent
    )
    with pytest.raises(NoOverlapError, match="do not overlap"):
        pair_grid(b, far)
    with pytest.raises(AOIError, match="outside"):
        pair_grid(b, b, parse_aoi("10,10,11,11"))


def test_unreadable_band_file(tmp_path, paris):
    folder = tmp_path / "imgs"
    shutil.copytree(paris / "imgs_1", folder)
    target = next(folder.glob("*_B04.tif"))
    target.write_bytes(b"garbage")
    acq = resolve_input(folder)
    with pytest.raises(InputReadError, match="B04"):
        read_scene(acq, pair_grid(acq, acq), ("B04",))


def test_stac_item_over_http_reads_remote_cogs(tmp_path, paris):
    """A STAC Item served over HTTP whose assets are served over HTTP: read via GDAL /vsicurl/."""
    root = tmp_path / "site"
    shutil.copytree(paris / "imgs_1", root / "imgs_1")
    with serve(root) as base:
        assets = {}
        for f in sorted((root / "imgs_1").glob("*_B0[2348].tif")):
            band = f.stem.rsplit("_", 1)[1]
            assets[band] = {
                "href": f"{base}/imgs_1/{f.name}",
                "type": "image/tiff; application=geotiff",
                "eo:bands": [{"name": band}],
                "roles": ["data"],
            }
        item = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": "paris-20161130",
            "collection": "sentinel-2-l1c",
            "geometry": parse_aoi("2.31,48.79,2.36,48.85").__geo_interface__,
            "bbox": [2.31, 48.79, 2.36, 48.85],
            "properties": {"datetime": "2016-11-30T10:57:00Z"},
            "links": [],
            "assets": assets,
        }
        (root / "item.json").write_text(json.dumps(item))
        acq = resolve_input(f"{base}/item.json")
        grid = pair_grid(acq, acq)
        scene = read_scene(acq, grid, ("B02", "B08"))
    local = read_scene(resolve_input(paris / "imgs_1"), grid, ("B02", "B08"))
    np.testing.assert_array_equal(scene.data, local.data)
    assert scene.hrefs["B02"].startswith("http://127.0.0.1")


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8])
@pytest.mark.parametrize(("scale", "offset", "nodata"), [(1e-4, -0.1, 0.0), (1.0, 0.0, None), (2.5, 3.0, 7)])
def test_values_written_in_place_equal_to_values(dtype, scale, offset, nodata):
    from eowatch.io.load import to_values, to_values_into
    from eowatch.io.sources import BandAsset

    raw = np.random.default_rng(1).integers(0, 200, (37, 53)).astype(dtype)
    raw[3, :4] = 0
    asset = BandAsset("x.tif", 1, scale, offset, nodata)
    data, valid = to_values(raw, asset, nodata)
    out = np.full(raw.shape, np.nan, dtype=np.float32)
    into_valid = np.ones(raw.shape, dtype=bool)
    into_valid[0, 0] = False  # ANDed, never set
    to_values_into(raw, asset, nodata, out, into_valid)
    np.testing.assert_array_equal(out, data)  # bit for bit
    np.testing.assert_array_equal(into_valid, valid & (np.arange(raw.size).reshape(raw.shape) != 0))


def test_coarse_read_matches_the_warper_on_the_band_lattice(tmp_path):
    """The 60 m mask reads: decimated by GDAL where the grid lies on the band's pixel
    lattice (made-up reflectances on a real tile's UTM lattice), else the warper."""
    from eowatch.io.load import read_band, read_band_coarse
    from eowatch.io.sources import BandAsset
    from eowatch.model import Grid

    rng = np.random.default_rng(3)
    data = rng.integers(1, 10000, (120, 90)).astype("uint16")
    data[6:12, 6:12] = 0  # one coarse pixel of nodata
    crs = rasterio.crs.CRS.from_epsg(32631)
    path = tmp_path / "b04.tif"
    profile = dict(driver="GTiff", width=90, height=120, count=1, dtype="uint16", nodata=0)
    with rasterio.open(path, "w", crs=crs, transform=Affine(10, 0, 600000, 0, -10, 5400000), **profile) as ds:
        ds.write(data, 1)
    asset = BandAsset(str(path), scale=1e-4)
    on_lattice = Grid(crs, Affine(60, 0, 600060, 0, -60, 5399940), 14, 19)
    fast, fast_valid = read_band_coarse(asset, on_lattice)
    slow, slow_valid = read_band(asset, on_lattice)
    assert (fast_valid == slow_valid).all() and not fast_valid.all()
    # Both average in the band's integers: a rounding tie may fall 1 DN apart.
    assert np.abs(fast - slow)[fast_valid].max() <= 1.01e-4
    manual = data[6:120, 6:90].reshape(19, 6, 14, 6).mean(axis=(1, 3)) * 1e-4
    assert np.abs(fast - manual)[fast_valid].max() <= 1.01e-4
    off_lattice = Grid(crs, Affine(60, 0, 600005, 0, -60, 5399940), 14, 19)
    shifted, _ = read_band_coarse(asset, off_lattice)
    assert np.array_equal(shifted, read_band(asset, off_lattice)[0])
