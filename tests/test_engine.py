"""The block engine: small windows give what one window over the whole scene gives,
memory stays bounded, in-memory scenes run through the same engine, and a Dask
cluster gives the same products as the local thread pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.engine import EngineOptions, detect_arrays
from eowatch.model import NO_DATA_CLASS, Block
from eowatch.pipeline import DetectRequest, detect_pair, plan_pair
from eowatch.settings import Settings

#: A window larger than the bundled scenes: the whole scene is one window.
WHOLE = {"scene_window_px": 4096}


def _paris_with_scl_and_nodata(paris: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The Paris pair with an SCL band (clouds, shadow) at the after date and a
    nodata strip in one 10 m band of the before date."""
    before, after = tmp_path / "imgs_1", tmp_path / "imgs_2"
    shutil.copytree(paris / "imgs_1", before)
    shutil.copytree(paris / "imgs_2", after)
    b04 = next(before.glob("*_B04.tif"))
    with rasterio.open(b04, "r+") as ds:
        band = ds.read(1)
        band[:, :9] = 0
        ds.nodata = 0
        ds.write(band, 1)
    ref = next(after.glob("*_B02.tif"))
    with rasterio.open(ref) as ds:
        profile, shape = ds.profile, ds.shape
    scl = np.full(shape, 5, dtype=np.uint8)  # bare soil
    scl[40:90, 250:330] = 8  # cloud medium probability
    scl[200:230, 10:80] = 3  # cloud shadow
    profile.update(dtype="uint8", nodata=None)
    with rasterio.open(after / "T31UDQ_20171107_SCL.tif", "w", **profile) as ds:
        ds.write(scl, 1)
    return before, after


@pytest.fixture(scope="module")
def masked_pair(paris, tmp_path_factory) -> tuple[Path, Path]:
    return _paris_with_scl_and_nodata(paris, tmp_path_factory.mktemp("masked"))


def _run(before: Path, after: Path, tmp: Path, aoi: str | None = None, **settings):
    return detect_pair(DetectRequest(before, after, "s2-imad", aoi=aoi), Settings(output_dir=tmp, **settings))


def _engine(run) -> dict:
    """How the block engine ran (recorded in the Item)."""
    return run.item.properties["eowatch:metadata"]["blockwise"]


def test_small_windows_equal_one_window_over_the_scene(masked_pair, paris, tmp_path):
    before, after = masked_pair
    aoi = "POLYGON((2.312 48.806, 2.354 48.81, 2.345 48.844, 2.312 48.806))"  # cuts windows diagonally
    whole = _run(before, after, tmp_path / "whole", aoi, **WHOLE)
    windowed = _run(before, after, tmp_path / "win", aoi, scene_window_px=36, scene_workers=2)
    a, b = whole.result, windowed.result
    # Many windows, incl. a 1-px-thin edge column (361 = 10 x 36 + 1), with nodata, SCL clouds and the AOI.
    assert a.grid.shape == (327, 361)
    assert _engine(whole)["windows"] == 1
    stats = _engine(windowed)
    assert stats["windows"] == 10 * 11 and stats["window_px"] == 36
    assert (a.classes == NO_DATA_CLASS).sum() > 20_000
    assert np.array_equal(a.classes, b.classes)
    assert np.array_equal(a.statistic, b.statistic, equal_nan=True)
    assert a.changed.sum() > 1000
    # Polygons incl. confidence computed from the statistic.
    assert whole.polygons.to_features() == windowed.polygons.to_features()
    assert (
        windowed.item.properties["eowatch:metadata"]["masking"]
        == whole.item.properties["eowatch:metadata"]["masking"]
    )
    assert windowed.item.properties["eowatch:metadata"]["masking"]["after"]["method"] == "scl+shadows"
    assert a.metadata["chi2_scale"] == b.metadata["chi2_scale"]
    with rasterio.open(windowed.folder / "change_map.tif") as ds:
        assert np.array_equal(ds.read(1), a.classes)
    # The statistic COG, written while the regions were computed, is the final statistic;
    # nothing is left beside the product folder.
    with rasterio.open(windowed.folder / "statistic.tif") as ds:
        assert np.array_equal(ds.read(1), b.statistic, equal_nan=True)
        assert ds.descriptions[0] == "mad_chi2"
    assert [p.name for p in (tmp_path / "win").iterdir()] == [windowed.folder.name]
    assert "write_statistic" in stats["stages_s"] and "write_statistic_wait" in stats["stages_s"]
    assert {"fit", "windows", "regions", "write_change_map", "write_polygonize"} <= set(stats["stages_s"])
    assert (windowed.folder / "quicklook.png").stat().st_size > 10_000


def test_a_failed_run_leaves_no_early_statistic_behind(paris, tmp_path, monkeypatch):
    from eowatch.products import registry

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(registry, "quicklook_png", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_window_px=64)
    assert list(tmp_path.iterdir()) == []


def test_at_most_two_windows_per_worker_are_resident(paris, tmp_path):
    run = _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_window_px=32, scene_workers=2)
    stats = _engine(run)
    assert stats["windows"] == 13 * 13
    # Band data of a window lives only between its read and its stitching.
    assert 1 <= stats["max_resident_windows"] <= 2 + 1


def test_fit_on_a_sample_of_a_larger_scene_agrees_with_the_whole_fit(paris, tmp_path):
    """Above scene_sample_px the IR-MAD transform is fitted on a lattice of 64 windows
    (the median calibration then uses every 4th pixel of the whole scene). On Paris,
    with a quarter of the pixels in the sample, 99.5 % of pixels agree with the
    whole-scene fit; the change mask (1.4 % of pixels) overlaps with IoU ~0.7:
    pixels near the threshold flip with the sampled canonical variates."""
    whole = _run(paris / "imgs_1", paris / "imgs_2", tmp_path / "a")
    sampled = _run(paris / "imgs_1", paris / "imgs_2", tmp_path / "b", scene_sample_px=40_000)
    assert _engine(whole)["sample_px"] == whole.result.grid.width * whole.result.grid.height
    stats = _engine(sampled)
    assert stats["sample_px"] < 45_000 < whole.result.grid.width * whole.result.grid.height
    a, b = whole.result.changed, sampled.result.changed
    agreement = (a == b).mean()
    iou = (a & b).sum() / (a | b).sum()
    assert agreement > 0.99 and iou > 0.6, (agreement, iou)
    assert 0.8 < b.mean() / a.mean() < 1.25
    scale_a, scale_b = whole.result.metadata["chi2_scale"], sampled.result.metadata["chi2_scale"]
    assert abs(scale_a / scale_b - 1) < 0.15


def test_in_memory_scenes_go_through_the_same_engine(paris, tmp_path):
    settings = Settings(output_dir=tmp_path)
    plan = plan_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-imad"), settings)
    grid = plan.grid
    scenes = [spec.open().read(Block(0, 0, grid.height, grid.width))[0] for spec in plan.sources]
    in_memory = detect_arrays(plan.preset, plan.params, scenes, EngineOptions(window_px=50))
    from_files = detect_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-imad"), settings)
    assert np.array_equal(in_memory.classes, from_files.result.classes)
    assert np.array_equal(in_memory.statistic, from_files.result.statistic, equal_nan=True)
    assert in_memory.changed.sum() > 1000


def test_dask_cluster_gives_the_same_products_as_threads(paris, tmp_path):
    distributed = pytest.importorskip("distributed")
    before, after = (paris / "imgs_1").resolve(), (paris / "imgs_2").resolve()
    local = _run(before, after, tmp_path / "threads", scene_window_px=64)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        remote = _run(
            before,
            after,
            tmp_path / "dask",
            scene_window_px=64,
            scene_executor="dask",
            dask_scheduler_address=cluster.scheduler_address,
        )
    stats = _engine(remote)
    assert stats["executor"] == "dask" and stats["workers"] == 2 and stats["windows"] == 7 * 7
    assert np.array_equal(local.result.classes, remote.result.classes)
    assert np.array_equal(local.result.statistic, remote.result.statistic, equal_nan=True)
    assert local.polygons.to_features() == remote.polygons.to_features()


def test_dask_executor_without_a_scheduler_names_the_fix(paris, tmp_path):
    from eowatch.errors import InputError

    with pytest.raises(InputError, match="EOWATCH_DASK_SCHEDULER_ADDRESS"):
        _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_executor="dask")
