"""Tests of the COG writer and validator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from eowatch.errors import ProductWriteError
from eowatch.io.cog import validate_cog, write_cog
from eowatch.model import NO_DATA_CLASS, Grid

UTM = Grid(CRS.from_epsg(32631), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5400000.0), 1000, 600)
GEO = Grid(CRS.from_epsg(4326), Affine(1e-4, 0.0, 2.3, 0.0, -1e-4, 48.85), 700, 520)
COLOURS = {0: (0, 0, 0, 0), 1: (255, 0, 0, 255), 2: (0, 128, 255, 255), NO_DATA_CLASS: (128, 128, 128, 255)}


def _classes(grid: Grid) -> np.ndarray:
    rng = np.random.default_rng(0)
    classes = rng.integers(0, 3, grid.shape, dtype=np.uint8)
    classes[:20] = NO_DATA_CLASS
    return classes


def _statistic(grid: Grid) -> np.ndarray:
    rng = np.random.default_rng(1)
    statistic = rng.normal(size=grid.shape).astype(np.float32)
    statistic[:8] = np.nan
    return statistic


@pytest.mark.parametrize("grid", [UTM, GEO], ids=["utm", "geographic"])
def test_class_map_is_valid_cog_with_colour_table(tmp_path: Path, grid: Grid) -> None:
    classes = _classes(grid)
    path = write_cog(
        tmp_path / "classes.tif",
        classes,
        grid,
        nodata=NO_DATA_CLASS,
        colormap=COLOURS,
        band_descriptions=["change class"],
        tags={"CLASS_1": "loss", "CLASS_2": "gain"},
        blocksize=256,
    )
    assert validate_cog(path) == []
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.profile["tiled"] and ds.block_shapes[0] == (256, 256)
        assert ds.overviews(1) == [2, 4]
        assert ds.colormap(1)[1] == (255, 0, 0, 255)
        assert ds.colormap(1)[2] == (0, 128, 255, 255)
        assert ds.nodata == NO_DATA_CLASS
        assert ds.descriptions == ("change class",)
        assert ds.tags()["CLASS_1"] == "loss"
        assert ds.crs == grid.crs
        assert ds.transform.almost_equals(grid.transform)
        np.testing.assert_array_equal(ds.read(1), classes)
    with rasterio.open(path, overview_level=0) as ov:  # nearest: only existing class values
        assert set(np.unique(ov.read(1))) <= {0, 1, 2, NO_DATA_CLASS}


@pytest.mark.parametrize("compress", ["DEFLATE", "ZSTD"])
def test_float_statistic_average_overviews_without_predictor(tmp_path: Path, compress: str) -> None:
    statistic = _statistic(UTM)
    path = write_cog(
        tmp_path / "stat.tif",
        statistic,
        UTM,
        nodata=float("nan"),
        resampling="average",
        band_descriptions=["dnbr"],
        tags={"statistic": "dnbr"},
        blocksize=256,
        compress=compress,
    )
    assert validate_cog(path) == []
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR", "1") == "1"  # noise-like: no gain
        assert ds.tags(ns="IMAGE_STRUCTURE")["COMPRESSION"] == compress
        assert np.isnan(ds.nodata)
        assert ds.tags()["statistic"] == "dnbr"
        np.testing.assert_array_equal(ds.read(1), statistic)
    with rasterio.open(path, overview_level=0) as ov:
        level0 = ov.read(1)
    assert level0.shape == (300, 500)
    np.testing.assert_allclose(level0[50, 60], statistic[100:102, 120:122].mean(), rtol=1e-5)


def test_multiband_and_small_image(tmp_path: Path) -> None:
    small = Grid(UTM.crs, UTM.transform, 100, 80)
    data = np.stack([np.full(small.shape, i, np.float32) for i in range(3)])
    path = write_cog(tmp_path / "small.tif", data, small, band_descriptions=["a", "b", "c"])
    assert validate_cog(path) == []
    with rasterio.open(path) as ds:
        assert ds.count == 3 and ds.descriptions == ("a", "b", "c")
        assert ds.overviews(1) == []  # fits in one block
        assert ds.read(3)[0, 0] == 2


def test_overwrites_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "classes.tif"
    write_cog(path, _classes(UTM), UTM, nodata=NO_DATA_CLASS)
    write_cog(path, np.zeros(UTM.shape, np.uint8), UTM, nodata=NO_DATA_CLASS)
    with rasterio.open(path) as ds:
        assert ds.read(1).max() == 0
    assert [p.name for p in path.parent.iterdir()] == ["classes.tif"]  # no temporary left


def test_validate_reports_plain_geotiff(tmp_path: Path) -> None:
    path = tmp_path / "plain.tif"
    profile = {
        "driver": "GTiff",
        "width": UTM.width,
        "height": UTM.height,
        "count": 1,
        "dtype": "uint8",
        "crs": UTM.crs,
        "transform": UTM.transform,
    }
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(_classes(UTM), 1)
    problems = validate_cog(path)
    assert any("LAYOUT" in p for p in problems)
    assert any("not tiled" in p for p in problems)
    assert any("no overviews" in p for p in problems)
    assert validate_cog(tmp_path / "missing.tif")[0].startswith("cannot open")


@pytest.mark.parametrize(
    ("array", "kwargs", "message"),
    [
        (np.zeros((10, 10), np.uint8), {}, "do not match the grid"),
        (np.zeros(UTM.shape, np.float32), {"colormap": COLOURS}, "colour table"),
        (np.zeros(UTM.shape, bool), {}, "dtype bool"),
        (np.zeros(UTM.shape, np.uint8), {"resampling": "median-ish"}, "resampling"),
        (np.zeros(UTM.shape, np.uint8), {"band_descriptions": ["a", "b"]}, "band descriptions"),
    ],
)
def test_bad_inputs_raise_product_write_error(
    tmp_path: Path, array: np.ndarray, kwargs: dict, message: str
) -> None:
    path = tmp_path / "bad.tif"
    with pytest.raises(ProductWriteError, match=message) as info:
        write_cog(path, array, UTM, **kwargs)
    assert str(path) in str(info.value)


def test_unwritable_destination_raises_product_write_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ProductWriteError, match="blocker|file"):
        write_cog(blocker / "out.tif", np.zeros(UTM.shape, np.uint8), UTM)
