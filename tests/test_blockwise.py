"""The block engine: windowed runs equal whole-scene runs, memory stays bounded,
and a Dask cluster gives the same products as the local thread pool."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.blockwise import ArraySpec, run_blockwise
from eowatch.detect import get_preset, parse_params
from eowatch.model import NO_DATA_CLASS
from eowatch.pipeline import DetectRequest, detect_pair, load_pair
from eowatch.settings import Settings


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


def test_windowed_s2_imad_equals_the_whole_scene_run(masked_pair, paris, tmp_path):
    before, after = masked_pair
    aoi = "POLYGON((2.312 48.806, 2.354 48.81, 2.345 48.844, 2.312 48.806))"  # cuts windows diagonally
    whole = _run(before, after, tmp_path / "whole", aoi, scene_windowed=False)
    windowed = _run(before, after, tmp_path / "win", aoi, scene_window_px=36, scene_workers=2)
    a, b = whole.result, windowed.result
    # Many windows, incl. a 1-px-thin edge column (361 = 10 x 36 + 1), with nodata, SCL clouds and the AOI.
    assert a.grid.shape == (327, 361)
    stats = b.metadata["blockwise"]
    assert stats["windows"] == 10 * 11 and stats["window_px"] == 36
    assert (a.classes == NO_DATA_CLASS).sum() > 20_000
    assert np.array_equal(a.classes, b.classes)
    assert np.array_equal(a.statistic, b.statistic, equal_nan=True)
    assert a.changed.sum() > 1000
    assert whole.features == windowed.features  # polygons incl. confidence computed from the statistic
    assert (
        windowed.item.properties["eowatch:metadata"]["masking"]
        == whole.item.properties["eowatch:metadata"]["masking"]
    )
    assert windowed.item.properties["eowatch:metadata"]["masking"]["after"]["method"] == "scl"
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
    assert (windowed.folder / "quicklook.png").stat().st_size > 10_000


def test_a_failed_run_leaves_no_early_statistic_behind(paris, tmp_path, monkeypatch):
    from eowatch.products import folder

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(folder, "quicklook_png", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_window_px=64)
    assert list(tmp_path.iterdir()) == []


def test_at_most_two_windows_per_worker_are_resident(paris, tmp_path):
    run = _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_window_px=32, scene_workers=2)
    stats = run.result.metadata["blockwise"]
    assert stats["windows"] == 13 * 13
    # Band data of a window lives only between its read and its stitching.
    assert 1 <= stats["max_resident_windows"] <= 2 + 1


def test_fit_on_a_sample_of_a_larger_scene_agrees_with_the_whole_fit(paris, tmp_path):
    """Above scene_sample_px the IR-MAD transform is fitted on a lattice of 64 windows
    (the median calibration then uses every 4th pixel of the whole scene). On Paris,
    with a quarter of the pixels in the sample, 99.5 % of pixels agree with the
    whole-scene fit; the change mask (1.4 % of pixels) overlaps with IoU ~0.7:
    pixels near the threshold flip with the sampled canonical variates."""
    whole = _run(paris / "imgs_1", paris / "imgs_2", tmp_path / "a", scene_windowed=False)
    sampled = _run(paris / "imgs_1", paris / "imgs_2", tmp_path / "b", scene_sample_px=40_000)
    stats = sampled.result.metadata["blockwise"]
    assert stats["sample_px"] < 45_000 < whole.result.grid.width * whole.result.grid.height
    a, b = whole.result.changed, sampled.result.changed
    agreement = (a == b).mean()
    iou = (a & b).sum() / (a | b).sum()
    assert agreement > 0.99 and iou > 0.6, (agreement, iou)
    assert 0.8 < b.mean() / a.mean() < 1.25
    scale_a, scale_b = whole.result.metadata["chi2_scale"], sampled.result.metadata["chi2_scale"]
    assert abs(scale_a / scale_b - 1) < 0.15


def test_in_memory_scenes_go_through_the_same_engine(paris):
    pair = load_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-imad"), Settings())
    preset, params = get_preset("s2-imad"), parse_params(get_preset("s2-imad"), {})
    settings = Settings(scene_window_px=50)
    windowed, stats = run_blockwise(preset, params, ArraySpec(pair.before), ArraySpec(pair.after), settings)
    whole = preset.run(pair.before, pair.after, params)
    valid = pair.before.valid & pair.after.valid
    assert stats.windows == 9 * 8
    from eowatch.pipeline import finalize

    expected = finalize(whole, valid, params)
    assert np.array_equal(windowed.classes, expected.classes)


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
    stats = remote.result.metadata["blockwise"]
    assert stats["executor"] == "dask" and stats["workers"] == 2 and stats["windows"] == 7 * 7
    assert np.array_equal(local.result.classes, remote.result.classes)
    assert np.array_equal(local.result.statistic, remote.result.statistic, equal_nan=True)
    assert local.features == remote.features


def test_dask_executor_without_a_scheduler_names_the_fix(paris, tmp_path):
    from eowatch.errors import InputError

    with pytest.raises(InputError, match="EOWATCH_DASK_SCHEDULER_ADDRESS"):
        _run(paris / "imgs_1", paris / "imgs_2", tmp_path, scene_executor="dask")
