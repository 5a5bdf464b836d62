"""Window-by-window reads give the same pixels as whole-grid reads."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio
from affine import Affine

from eowatch.aoi import parse_aoi
from eowatch.engine.blocks import plan_blocks, sample_blocks, sample_cells
from eowatch.io.load import pair_grid, read_band, read_scene
from eowatch.io.masks import cloud_mask, cloud_masking
from eowatch.io.sources import Acquisition, BandAsset, resolve_input
from eowatch.io.windows import SceneSpec
from eowatch.model import Block, Grid

from ..conftest import write_raster


def _stitch(spec: SceneSpec, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    grid = spec.grid
    data = np.full((len(spec.bands), *grid.shape), np.nan, dtype=np.float32)
    valid = np.zeros(grid.shape, dtype=bool)
    clouds = np.zeros(grid.shape, dtype=bool)
    with spec.open() as reader:
        for b in plan_blocks(grid, size):
            scene, cl = reader.read(b)
            rows, cols = slice(b.row, b.row + b.height), slice(b.col, b.col + b.width)
            data[:, rows, cols], valid[rows, cols], clouds[rows, cols] = scene.data, scene.valid, cl
    return data, valid, clouds


def test_blocks_cover_the_grid_once_with_smaller_edge_blocks():
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 0, 0, -10, 0), 250, 130)
    blocks = plan_blocks(grid, 64)
    count = np.zeros(grid.shape, dtype=int)
    for b in blocks:
        count[b.row : b.row + b.height, b.col : b.col + b.width] += 1
    assert (count == 1).all()
    assert len(blocks) == 3 * 4
    assert blocks[-1] == Block(128, 192, 2, 58)
    assert Block(0, 0, 10, 10).grown(3, grid) == Block(0, 0, 13, 13)
    assert Block(120, 240, 10, 10).grown(3, grid) == Block(117, 237, 13, 13)


def test_sample_is_the_whole_scene_when_small_else_a_spread_lattice():
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)
    assert sample_blocks(Grid(grid.crs, grid.transform, 300, 200), 100_000) == [Block(0, 0, 200, 300)]
    assert len(sample_blocks(grid, 2_000_000)) == 64
    blocks = sample_blocks(grid, 2_000_000, lattice=16)
    pixels = sum(b.size for b in blocks)
    assert len(blocks) == 256 and 1_800_000 <= pixels <= 2_000_000
    assert all(b.row // 512 == (b.row + b.height - 1) // 512 for b in blocks)  # one tile row each
    assert all(b.col // 512 == (b.col + b.width - 1) // 512 for b in blocks)
    assert all(0 <= b.row and b.row + b.height <= grid.height for b in blocks)
    rows = sorted({b.row for b in blocks})
    assert rows[0] < grid.height / 8 and rows[-1] > grid.height * 7 / 8 - 200  # spread, not clustered


def test_pixelwise_sample_is_every_few_pixels_of_whole_tiles_spread_over_the_scene():
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 0, 0, -10, 0), 10980, 10980)
    cells, step = sample_cells(grid, 2_000_000, 8)
    assert len(cells) == 64 and step == 3
    assert 1_800_000 <= sum(-(-b.height // step) * -(-b.width // step) for b in cells) <= 2_000_000
    assert all(b.row % 512 == 0 and b.col % 512 == 0 and b.height == b.width == 512 for b in cells)
    assert len(set(cells)) == 64 and min(b.row for b in cells) < 1372 and max(b.row for b in cells) > 9000
    # Odd sizes: cells stay whole and inside; small scenes fall back to windows or the whole scene.
    odd = Grid(grid.crs, grid.transform, 4321, 5000)
    assert all(b.row + 512 <= 5000 and b.col + 512 <= 4321 for b in sample_cells(odd, 2_000_000, 8)[0])
    assert sample_cells(Grid(grid.crs, grid.transform, 300, 200), 100_000) == ([Block(0, 0, 200, 300)], 1)
    assert sample_cells(Grid(grid.crs, grid.transform, 3000, 3000), 2_000_000, 8)[1] == 1


def test_windowed_read_of_paris_matches_the_whole_read_incl_20m_band_and_aoi(paris):
    acq = resolve_input(paris / "imgs_1")
    grid = pair_grid(acq, resolve_input(paris / "imgs_2"))
    aoi = parse_aoi("POLYGON((2.315 48.808, 2.348 48.815, 2.33 48.842, 2.315 48.808))")
    bands = ("B04", "B08", "B11")  # B11 is 20 m: read through the warper, window by window
    whole = read_scene(acq, grid, bands, aoi)
    data, valid, _ = _stitch(SceneSpec(acq, grid, bands, aoi), 37)
    assert np.array_equal(valid, whole.valid)
    assert 0.2 < valid.mean() < 0.8  # the triangle cuts the scene across windows
    assert np.array_equal(data[:, valid], whole.data[:, valid])


def test_2x_upsampling_matches_gdal_warper_on_utm_lattice_with_nodata(tmp_path):
    rng = np.random.default_rng(3)
    coarse = rng.integers(1, 5000, size=(60, 50)).astype(np.uint16)
    coarse[10:13, 20:24] = 0  # nodata hole
    path = write_raster(
        tmp_path / "b11.tif", coarse, transform=Affine(20, 0, 600000, 0, -20, 5400000), nodata=0
    )
    fine = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 5400000), 100, 120)
    asset = BandAsset(str(path), scale=1e-4)
    whole, whole_valid = read_band(asset, fine)  # GDAL's WarpedVRT, bilinear
    acq = Acquisition("t", "sentinel-2", {"B11": asset})
    spec = SceneSpec(acq, fine, ("B11",))
    with spec.open() as reader:
        assert reader._bands[0].half == (0, 0)  # own upsampling, not the warper
    data, valid, _ = _stitch(spec, 23)
    assert np.array_equal(valid, whole_valid)
    assert np.array_equal(data[0][valid], whole[valid])


def test_2x_upsampling_without_nodata_matches_gdal_warper_over_the_full_uint16_range(tmp_path):
    # No nodata in any window: the separable float32 path, exact for 16-bit values.
    rng = np.random.default_rng(5)
    coarse = rng.integers(0, 65536, size=(45, 38), dtype=np.uint16)
    coarse[:3] = 65535  # the largest values, where float32 has the fewest spare bits
    path = write_raster(tmp_path / "b12.tif", coarse, transform=Affine(20, 0, 600000, 0, -20, 5400000))
    fine = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 600020, 0, -10, 5399980), 70, 84)
    asset = BandAsset(str(path))
    whole, whole_valid = read_band(asset, fine)
    spec = SceneSpec(Acquisition("t", "sentinel-2", {"B12": asset}), fine, ("B12",))
    data, valid, _ = _stitch(spec, 32)
    assert valid.all() and whole_valid.all()
    assert np.array_equal(data[0], whole)


def test_windowed_scl_mask_matches_the_whole_mask(paris, tmp_path):
    folder = tmp_path / "imgs_1"
    shutil.copytree(paris / "imgs_1", folder)
    b02 = next(folder.glob("*_B02.tif"))
    with rasterio.open(b02) as ds:
        profile, shape = ds.profile, ds.shape
    scl = np.full(shape, 4, dtype=np.uint8)  # vegetation
    scl[50:120, 30:200] = 9  # cloud high probability
    scl[300:340, 100:150] = 3  # cloud shadow
    profile.update(dtype="uint8", count=1, nodata=None)
    with rasterio.open(folder / "T31UDQ_20161130_SCL.tif", "w", **profile) as ds:
        ds.write(scl, 1)
    acq = resolve_input(folder)
    grid = pair_grid(acq, acq)
    full, method = cloud_mask(acq, grid)
    masking = cloud_masking(acq, grid)
    assert (method, masking.method, masking.mask) == ("scl+shadows", "scl+shadows", "scl")
    spec = SceneSpec(acq, grid, ("B04",), cloud=masking.mask, extra_cloud=masking.extra)
    _, valid, clouds = _stitch(spec, 41)
    assert np.array_equal(clouds, full)
    assert full.sum() > 10_000 and not valid[full].any()


def test_window_off_the_source_is_invalid_not_zero(tmp_path):
    data = np.arange(1, 401, dtype=np.uint16).reshape(20, 20)
    path = write_raster(tmp_path / "b04.tif", data, transform=Affine(10, 0, 600000, 0, -10, 5400000))
    # Target grid shifted 5 px left/up of the source: its first rows and columns have no source pixel.
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 599950, 0, -10, 5400050), 20, 20)
    acq = Acquisition("t", "sentinel-2", {"B04": BandAsset(str(path))})
    out, valid, _ = _stitch(SceneSpec(acq, grid, ("B04",)), 8)
    assert not valid[:5].any() and not valid[:, :5].any()
    assert valid[5:, 5:].all()
    assert np.array_equal(out[0, 5:, 5:], data[:15, :15].astype(np.float32))


@pytest.mark.parametrize("size", [7, 512])
def test_block_grid_is_the_sub_grid(size):
    grid = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 5400000), 30, 30)
    b = plan_blocks(grid, size)[-1]
    sub = b.grid_of(grid)
    assert sub.transform.c == 600000 + 10 * b.col and sub.transform.f == 5400000 - 10 * b.row
    assert sub.shape == (b.height, b.width)


def test_saturated_pixels_are_no_valid_data_at_10_and_20_m(tmp_path):
    """Sentinel-2 marks a saturated pixel 65535 (L1C has no other flag): it is no valid data
    where it lies, and lends no value to its 10 m neighbours when a 20 m band is upsampled.
    Made-up pixels on the 10 m / 20 m lattice of a UTM tile."""
    from eowatch.io.s2_metadata import SATURATED_DN, saturation_marked

    fine_band = np.full((40, 40), 1500, dtype=np.uint16)
    fine_band[5, 7] = SATURATED_DN
    coarse_band = np.full((20, 20), 2000, dtype=np.uint16)
    coarse_band[10, 10] = SATURATED_DN
    b04 = write_raster(
        tmp_path / "b04.tif", fine_band, transform=Affine(10, 0, 600000, 0, -10, 5400000), nodata=0
    )
    b11 = write_raster(tmp_path / "b11.tif", coarse_band, transform=Affine(20, 0, 600000, 0, -20, 5400000),
                       nodata=0)  # fmt: skip
    assets = saturation_marked(
        {"B04": BandAsset(str(b04), scale=1e-4), "B11": BandAsset(str(b11), scale=1e-4)}
    )
    fine = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 5400000), 40, 40)
    spec = SceneSpec(Acquisition("t", "sentinel-2", assets), fine, ("B04", "B11"))
    data, valid, _ = _stitch(spec, 16)
    expected = np.ones((40, 40), dtype=bool)
    expected[5, 7] = False  # the saturated 10 m pixel
    expected[20:22, 20:22] = False  # the four 10 m pixels centred in the saturated 20 m one
    assert np.array_equal(valid, expected)
    # its neighbours keep the value of their unsaturated sources: nothing of 6.5535 leaks in
    assert np.allclose(data[1][valid], 0.2) and np.allclose(data[0][valid], 0.15)
