"""Tests of the quicklook PNG and its helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from affine import Affine
from PIL import Image
from rasterio.crs import CRS

from eowatch.errors import ProductWriteError
from eowatch.io.quicklook import NO_DATA_COLOUR, colorize_classes, quicklook_png, stretch_rgb
from eowatch.model import NO_DATA_CLASS, ChangeClass, ChangeResult, Grid

UTM = Grid(CRS.from_epsg(32631), Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 5400000.0), 120, 90)
GEO = Grid(CRS.from_epsg(4326), Affine(1e-4, 0.0, 2.3, 0.0, -1e-4, 48.85), 120, 90)
RED = (230, 20, 30)
TABLE = (
    ChangeClass(0, "stable", (10, 10, 10)),
    ChangeClass(1, "burn", RED),
    ChangeClass(2, "gain", (0, 200, 0)),
)


def _result(grid: Grid) -> ChangeResult:
    classes = np.zeros(grid.shape, np.uint8)
    classes[40:50, 60:70] = 1
    classes[:5] = NO_DATA_CLASS
    return ChangeResult(classes, np.zeros(grid.shape, np.float32), "dnbr", TABLE, grid)


def _rgb(grid: Grid) -> np.ndarray:
    rng = np.random.default_rng(3)
    rgb = rng.uniform(0.0, 0.3, (3, *grid.shape)).astype(np.float32)
    rgb[:, :5] = np.nan
    return rgb


def _pixels(image: Image.Image) -> set[tuple[int, int, int]]:
    return {tuple(int(v) for v in p) for p in np.asarray(image).reshape(-1, 3)}


def test_stretch_rgb_percentiles_and_invalid() -> None:
    band = np.linspace(0, 1, 10_000, dtype=np.float32).reshape(100, 100)
    array = np.stack([band, band * 2, np.full_like(band, np.nan)])
    valid = np.ones(band.shape, bool)
    valid[0, :10] = False
    out = stretch_rgb(array, valid)
    assert out.dtype == np.uint8 and out.shape == (3, 100, 100)
    assert out[0, -1, -1] == 255 and out[0, 1, 0] == 0  # clipped at the 2/98 percentiles
    assert 120 <= out[0, 50, 0] <= 135
    np.testing.assert_array_equal(out[0], out[1])  # scale-invariant
    assert (out[:, 0, :10] == 0).all() and (out[2] == 0).all()
    with pytest.raises(ValueError, match=r"\(3, rows, cols\)"):
        stretch_rgb(array[:2], valid)


def test_colorize_classes() -> None:
    classes = np.array([[0, 1], [2, NO_DATA_CLASS], [7, 1]], np.uint8)
    colours = colorize_classes(classes, TABLE)
    assert colours.shape == (3, 2, 3) and colours.dtype == np.uint8
    assert tuple(colours[0, 1]) == RED
    assert tuple(colours[1, 1]) == NO_DATA_COLOUR
    assert tuple(colours[2, 0]) == (0, 0, 0)  # unlisted value


@pytest.mark.parametrize("grid", [UTM, GEO], ids=["utm", "geographic"])
def test_quicklook_png_panels_and_legend(tmp_path: Path, grid: Grid) -> None:
    result = _result(grid)
    path = quicklook_png(tmp_path / "ql.png", _rgb(grid), _rgb(grid)[1], result, title="Fire 2024")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        width, height = image.size
        rgb = image.convert("RGB")
    assert width == 3 * grid.width + 4 * 8
    assert height > grid.height
    change_panel = rgb.crop((2 * grid.width + 3 * 8, 0, width, height - 30))
    before_panel = rgb.crop((0, 0, grid.width + 8, height - 30))
    assert RED in _pixels(change_panel)
    assert NO_DATA_COLOUR in _pixels(change_panel)
    assert RED not in _pixels(before_panel)
    legend = rgb.crop((0, height - 30, width, height))
    assert RED in _pixels(legend) and (0, 200, 0) in _pixels(legend)


def test_quicklook_downsamples_large_inputs_and_keeps_small_changes(tmp_path: Path) -> None:
    grid = Grid(UTM.crs, UTM.transform, 3000, 2400)
    classes = np.zeros(grid.shape, np.uint8)
    classes[1234, 2345] = 2  # one pixel must survive the reduction
    result = ChangeResult(classes, np.zeros(grid.shape, np.float32), "d", TABLE, grid)
    grey = np.ones(grid.shape, np.float32)
    path = quicklook_png(tmp_path / "big.png", grey, grey, result, max_size=300)
    with Image.open(path) as image:
        assert image.size[0] == 3 * 300 + 4 * 8
        assert (0, 200, 0) in _pixels(image.convert("RGB").crop((2 * 300 + 3 * 8, 0, image.size[0], 260)))


def test_quicklook_write_error_names_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ProductWriteError, match="quicklook .*ql.png"):
        quicklook_png(blocker / "ql.png", _rgb(UTM), _rgb(UTM), _result(UTM))
