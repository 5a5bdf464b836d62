"""Omnibus time series through ``detect_series`` on small simulated GeoTIFFs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.errors import InputError, PairingError
from eowatch.pipeline import SeriesRequest, detect_series
from eowatch.settings import Settings

ENL = 4.4
DATES = ("20240101", "20240113", "20240125", "20240206")


def _series(raster_factory, shape: tuple[int, int] = (80, 80)) -> list[Path]:
    """Four dual-pol dates (linear power, Gamma speckle with ENL 4.4); a 20x20
    block drops by 10 dB at date 3 (interval 2) and stays down."""
    rng = np.random.default_rng(11)
    mean = np.array([0.1, 0.02])[:, None, None] * np.ones((2, *shape))
    paths = []
    for i, date in enumerate(DATES):
        m = mean.copy()
        if i >= 2:
            m[:, 20:40, 30:50] *= 0.1
        data = (m * rng.gamma(ENL, 1 / ENL, m.shape)).astype(np.float32)
        paths.append(raster_factory(f"s1_{date}.tif", data, descriptions=["VV", "VH"]))
    return paths


def test_series_of_four(raster_factory, tmp_path: Path) -> None:
    paths = _series(raster_factory)
    shuffled = [paths[2], paths[0], paths[3], paths[1]]  # put back in time order by date
    request = SeriesRequest(shuffled, "s1-omnibus", {"enl": ENL, "units": "linear"})
    out = detect_series(request, Settings(), tmp_path / "out")
    assert out.status == "ok"
    assert [s["id"] for s in out.item.properties["eowatch:series"]] == [p.stem for p in paths]
    block = (slice(22, 38), slice(32, 48))
    assert (out.result.classes[block] == 2).mean() > 0.9  # decrease
    for name in ("first_change.tif", "last_change.tif", "change_frequency.tif", "change_direction.tif"):
        assert (out.folder / name).exists(), name
    with rasterio.open(out.folder / "first_change.tif") as ds:
        first = ds.read(1)
    with rasterio.open(out.folder / "change_direction.tif") as ds:
        assert ds.count == 3
        direction = ds.read()
    assert (first[block] == 2).mean() > 0.9
    assert (direction[1][block] == 2).mean() > 0.9
    assert (first[60:, 60:] == 0).mean() > 0.95
    assert {"first_change", "last_change", "frequency", "direction", "acd_composite"} <= set(out.item.assets)


def test_too_few_acquisitions(raster_factory) -> None:
    paths = _series(raster_factory)
    with pytest.raises(InputError, match="at least 2 acquisitions"):
        detect_series(SeriesRequest(paths[:1]), Settings())


def test_pair_presets_refuse_series(raster_factory) -> None:
    with pytest.raises(InputError, match="compares pairs only"):
        detect_series(SeriesRequest(_series(raster_factory), "s1-flood"), Settings())


def test_series_polarisations_must_be_common(raster_factory, tmp_path: Path) -> None:
    paths = _series(raster_factory)
    with rasterio.open(paths[1]) as ds:
        vv = ds.read(1)
    hh_only = raster_factory("hh/s1_20240113_hh.tif", vv)
    with pytest.raises(PairingError, match="no common polarisation"):
        detect_series(SeriesRequest([paths[0], hh_only, paths[2]]), Settings(), tmp_path)


def test_series_of_three_keeps_each_layer_its_own_band_names(raster_factory, tmp_path: Path) -> None:
    """Three dates give two direction intervals; the ACD composite keeps its three colour
    bands and names (a late-bound loop variable once gave it the direction's two names)."""
    paths = _series(raster_factory)[:3]
    request = SeriesRequest(paths, "s1-omnibus", {"enl": ENL, "units": "linear"})
    out = detect_series(request, Settings(), tmp_path / "out")
    with rasterio.open(out.folder / "acd_composite.tif") as ds:
        assert ds.count == 3
        assert ds.descriptions[0].startswith("red: before")
    with rasterio.open(out.folder / "change_direction.tif") as ds:
        assert ds.descriptions == ("interval 1: date 1 -> date 2", "interval 2: date 2 -> date 3")


@pytest.mark.parametrize("dates", [3, 4])
def test_detect_series_command_on_three_and_four_dates(raster_factory, tmp_path: Path, dates: int) -> None:
    """The README's `eowatch detect-series A B C ...`: every product is written, the
    direction layer with one band per interval and the ACD composite with three."""
    from click.testing import CliRunner

    from eowatch.cli.main import cli

    paths = [str(p) for p in _series(raster_factory)[:dates]]
    args = ["detect-series", *paths, "--param", f"enl={ENL}", "--out", str(tmp_path / "out"), "--quiet"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    folder = Path(json.loads(res.stdout)["folder"])
    assert folder.name.endswith(f"_k{dates}") and (folder / "quicklook.png").exists()
    with rasterio.open(folder / "change_direction.tif") as ds:
        assert ds.count == dates - 1
    with rasterio.open(folder / "acd_composite.tif") as ds:
        assert ds.count == 3 and len(ds.descriptions) == 3
