"""The Sentinel-1 presets on the block engine: on the real S1 demo scene, small
windows (a halo for the speckle and density filters) give the classes, statistic and
products of one window over the whole scene."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.demo_s1 import build_s1_demo, default_source
from eowatch.model import NO_DATA_CLASS
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings

WINDOWED_PRESETS = ["s1-flood", "s1-logratio", "s1-omnibus", "s1-bright-targets"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    assert default_source().exists(), "data/s1-demo source scene is missing"
    return build_s1_demo(tmp_path_factory.mktemp("s1demo"))


def _run(demo, preset: str, tmp: Path, params: dict | None = None, **settings):  # type: ignore[no-untyped-def]
    request = DetectRequest(demo.before, demo.after, preset, params=params or {})
    return detect_pair(request, Settings(output_dir=tmp, **settings))


def _engine(run) -> dict:  # type: ignore[no-untyped-def]
    return run.item.properties["eowatch:metadata"]["blockwise"]


@pytest.mark.parametrize("preset", WINDOWED_PRESETS)
def test_small_windows_equal_one_window_over_the_scene(demo, tmp_path: Path, preset: str) -> None:
    whole = _run(demo, preset, tmp_path / "whole", scene_window_px=4096)
    windowed = _run(demo, preset, tmp_path / "win", scene_window_px=40, scene_workers=2)
    a, b = whole.result, windowed.result
    assert _engine(whole)["windows"] == 1
    stats = _engine(windowed)
    rows, cols = a.grid.shape
    # Many windows, and the last row / column of windows is thinner than the others.
    assert stats["windows"] == -(-rows // 40) * -(-cols // 40) > 20
    assert rows % 40 and cols % 40, a.grid.shape
    assert stats["sample_px"] == rows * cols  # the fit saw the whole scene
    assert np.array_equal(a.classes, b.classes)
    assert a.changed.sum() > 100
    finite = np.isfinite(a.statistic)
    assert np.array_equal(finite, np.isfinite(b.statistic))
    if preset == "s1-omnibus":  # pixelwise: bit-identical
        np.testing.assert_array_equal(a.statistic, b.statistic)
    else:
        # The speckle filters' box sums are running sums (scipy's uniform_filter, row prefix
        # sums) whose rounding depends on where a row starts: a window adds the same values
        # in another order than the whole scene, a few float32 ulps of the dB statistic.
        np.testing.assert_allclose(b.statistic[finite], a.statistic[finite], rtol=0, atol=1e-4)
    for key in ("polarisation", "speckle", "water_threshold_db", "decrease_threshold_db", "enl"):
        assert a.metadata.get(key) == b.metadata.get(key), key
    with rasterio.open(windowed.folder / "change_map.tif") as ds:
        assert np.array_equal(ds.read(1), a.classes)
    # The ACD composite is written window by window; equal wherever the change map has data.
    with (
        rasterio.open(whole.folder / "acd_composite.tif") as x,
        rasterio.open(windowed.folder / "acd_composite.tif") as y,
    ):
        assert x.profile["width"] == y.profile["width"] and y.count == 3
        data = a.classes != NO_DATA_CLASS
        assert np.array_equal(x.read()[:, data], y.read()[:, data])
        assert x.overviews(1) == y.overviews(1)


def test_a_sampled_fit_stays_close_to_the_whole_scene_fit(demo, tmp_path: Path) -> None:
    """A scene larger than the sample is fitted on 64 small windows (here a quarter of the
    demo): the ENL and thresholds are distribution statistics, so they move a little and
    only pixels near a threshold change class."""
    whole = _run(demo, "s1-flood", tmp_path / "whole").result
    sampled_run = _run(demo, "s1-flood", tmp_path / "sampled", scene_window_px=64, scene_sample_px=65_536)
    sampled = sampled_run.result
    assert _engine(sampled_run)["sample_px"] < whole.grid.width * whole.grid.height / 3
    for key in ("water_threshold_db", "decrease_threshold_db"):
        assert abs(sampled.metadata[key] - whole.metadata[key]) < 0.5, key
    enl = [whole.metadata["speckle"][d]["enl"] for d in ("before", "after")]
    enl_sampled = [sampled.metadata["speckle"][d]["enl"] for d in ("before", "after")]
    assert np.allclose(enl_sampled, enl, rtol=0.15)
    assert (whole.classes == sampled.classes).mean() > 0.99
    assert abs(int(sampled.changed.sum()) - int(whole.changed.sum())) < 0.1 * whole.changed.sum()
