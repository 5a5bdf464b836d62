from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.errors import InputError, MissingBandError, ParameterError, UnknownPresetError
from eowatch.io.cog import validate_cog
from eowatch.model import NO_DATA_CLASS
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings

#: Asset key -> file of the product folder (the s2-imad run's Item says where each is).
PRODUCT_FILES = {
    "change_map": "change_map.tif",
    "statistic": "statistic.tif",
    "quicklook": "quicklook.png",
    "before_visual": "before_visual.tif",
    "after_visual": "after_visual.tif",
    "polygons_geojson": "changes.geojson",
    "polygons_fgb": "changes.fgb",
    "item": "item.json",
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(output_dir=tmp_path / "out")


@pytest.fixture(scope="module")
def paris_run(tmp_path_factory, paris):
    out = tmp_path_factory.mktemp("paris")
    settings = Settings(output_dir=out)
    stages: list[str] = []
    run = detect_pair(
        DetectRequest(paris / "imgs_1", paris / "imgs_2", aoi=str(paris / "paris.geojson")),
        settings,
        progress=stages.append,
    )
    return run, stages


def test_product_folder_is_complete_and_valid(paris_run):
    run, stages = paris_run
    assert stages == ["resolve", "read", "mask", "detect", "write"]
    files = {p.name for p in run.folder.iterdir()}
    assert files == set(PRODUCT_FILES.values())  # nothing hidden or half-written left inside
    assert {a.href for a in run.item.assets.values()} == files - {"item.json"}
    for name in ("change_map", "statistic", "before_visual", "after_visual"):
        assert validate_cog(run.folder / PRODUCT_FILES[name]) == []
    with rasterio.open(run.folder / PRODUCT_FILES["change_map"]) as ds:
        assert ds.dtypes[0] == "uint8" and ds.nodata == NO_DATA_CLASS
        cmap = ds.colormap(1)
        classes = ds.read(1)
    for cls in run.result.class_table:
        assert cmap[cls.value][:3] == cls.colour
    np.testing.assert_array_equal(classes, run.result.classes)
    assert 0.0 < run.result.changed.mean() < 0.5
    with rasterio.open(run.folder / PRODUCT_FILES["statistic"]) as ds:
        assert ds.dtypes[0] == "float32" and ds.descriptions[0] == run.result.statistic_name
        assert ds.compression.name.lower() == Settings().statistic_compression.lower() == "zstd"


def test_polygons_agree_with_the_map_and_each_other(paris_run):
    run, _ = paris_run
    gj = json.loads((run.folder / PRODUCT_FILES["polygons_geojson"]).read_text())
    import pyogrio

    info = pyogrio.read_info(run.folder / PRODUCT_FILES["polygons_fgb"])
    assert info["features"] == len(gj["features"]) == len(run.polygons) > 0
    assert run.polygons.to_features() == gj["features"]
    props = gj["features"][0]["properties"]
    assert {"class", "class_name", "area_m2", "mean_statistic", "confidence"} <= set(props)
    changed_m2 = float((run.result.changed * run.result.grid.pixel_area_m2()[:, None]).sum())
    assert sum(f["properties"]["area_m2"] for f in gj["features"]) == pytest.approx(changed_m2, rel=0.02)
    # The minimum mapping unit (default 1000 m²) holds for every polygon of a class region.
    assert min(f["properties"]["area_m2"] for f in gj["features"]) > 0


def test_stac_item_records_provenance(paris_run):
    run, _ = paris_run
    item = json.loads((run.folder / PRODUCT_FILES["item"]).read_text())
    p = item["properties"]
    assert p["start_datetime"].startswith("2016-11-30") and p["end_datetime"].startswith("2017-11-07")
    assert p["eowatch:preset"] == Settings().default_s2_preset == "s2-learned" and p["eowatch:status"] == "ok"
    assert [i["role"] for i in p["eowatch:inputs"]] == ["before", "after"]
    assert p["eowatch:inputs"][0]["bands"]["B04"].endswith("_B04.tif")
    assert set(p["eowatch:timings_s"]) == {"resolve", "read", "mask", "detect", "write"}
    assert p["processing:software"]["eowatch"]
    assert p["eowatch:parameters"]["model"] == "oscd-urban"  # every parameter, defaults included
    assets = item["assets"]
    assert assets["change_map"]["type"] == "image/tiff; application=geotiff; profile=cloud-optimized"
    assert assets["polygons"]["type"] == "application/geo+json"
    assert assets["polygons_fgb"]["type"] == "application/vnd.flatgeobuf"
    assert "overview" in assets["quicklook"]["roles"]
    assert all((run.folder / a["href"]).exists() for a in assets.values())
    lon, lat = item["geometry"]["coordinates"][0][0]
    assert 2.3 < lon < 2.36 and 48.79 < lat < 48.85


def test_rerun_replaces_and_failure_leaves_nothing(paris, settings, monkeypatch):
    req = DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-cva")
    first = detect_pair(req, settings)
    second = detect_pair(req, settings)
    assert first.folder == second.folder
    assert [p.name for p in settings.output_dir.iterdir()] == [first.folder.name]

    import eowatch.products.registry as registry

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(registry, "write_flatgeobuf", broken)
    with pytest.raises(OSError, match="disk full"):
        detect_pair(
            DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-cva", params={"min_area_m2": 500}),
            settings,
        )
    # The earlier product is intact and no half-written folder is left behind.
    assert [p.name for p in settings.output_dir.iterdir()] == [first.folder.name]
    assert (first.folder / PRODUCT_FILES["item"]).exists()


def _l2a_copy(src: Path, dst: Path, scl_value: int | np.ndarray) -> Path:
    """A copy of an OSCD date with an SCL band on the 20 m grid (as in L2A)."""
    dst.mkdir(parents=True)
    for f in src.glob("*_B*.tif"):
        shutil.copy(f, dst / f.name)
    b11 = next(src.glob("*_B11.tif"))
    with rasterio.open(b11) as ds:
        profile = ds.profile | {"dtype": "uint8", "nodata": None}
        shape = ds.shape
    scl = np.broadcast_to(np.asarray(scl_value, dtype=np.uint8), shape)
    with rasterio.open(dst / "T31UDQ_SCL_20m.tif", "w", **profile) as ds:
        ds.write(scl, 1)
    return dst


def test_all_cloud_pair_gives_a_no_valid_data_product(paris, settings, tmp_path):
    before = _l2a_copy(paris / "imgs_1", tmp_path / "b", 9)  # SCL 9 = cloud high probability
    after = _l2a_copy(paris / "imgs_2", tmp_path / "a", 4)
    run = detect_pair(DetectRequest(before, after, preset="s2-cva"), settings)
    assert run.status == "no-valid-data"
    assert (run.result.classes == NO_DATA_CLASS).all() and len(run.polygons) == 0
    assert run.item.properties["eowatch:valid_fraction"] == 0.0


def test_scl_clouds_and_shadows_are_no_valid_data_never_change(paris, settings, tmp_path):
    with rasterio.open(next((paris / "imgs_1").glob("*_B11.tif"))) as ds:
        scl = np.full(ds.shape, 4, dtype=np.uint8)
    scl[: scl.shape[0] // 2] = 3  # cloud shadow on the top half
    before = _l2a_copy(paris / "imgs_1", tmp_path / "b", scl)
    after = _l2a_copy(paris / "imgs_2", tmp_path / "a", 5)
    run = detect_pair(DetectRequest(before, after, preset="s2-cva"), settings)
    rows = run.result.grid.height
    assert (run.result.classes[: rows // 2 - 2] == NO_DATA_CLASS).all()
    assert (run.result.classes[rows // 2 + 2 :] != NO_DATA_CLASS).all()
    before_masking = run.item.properties["eowatch:metadata"]["masking"]["before"]
    # SCL holds no cloud here: the shadow projection ran and added nothing.
    assert before_masking["method"] == "scl+shadows" and before_masking["cloud_fraction"] == 0.0


def test_bad_requests_name_the_problem(paris, settings):
    with pytest.raises(UnknownPresetError, match="s2-imad"):
        detect_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-magic"), settings)
    with pytest.raises(ParameterError, match="no parameter"):
        detect_pair(
            DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-imad", params={"alfa": 0.1}),
            settings,
        )
    with pytest.raises(ParameterError, match="alpha"):
        detect_pair(
            DetectRequest(paris / "imgs_1", paris / "imgs_2", preset="s2-imad", params={"alpha": 2}), settings
        )


def test_missing_band_is_reported(paris, settings, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(paris / "imgs_2", partial)
    next(partial.glob("*_B12.tif")).unlink()
    with pytest.raises(MissingBandError, match="B12"):
        detect_pair(DetectRequest(paris / "imgs_1", partial, preset="s2-imad"), settings)


def test_minimum_mapping_unit_and_cleanup_remove_small_regions(paris, settings):
    from eowatch.kernels.morphology import component_areas
    from eowatch.pipeline import detect_result, plan_pair

    def changed(params: dict) -> tuple[np.ndarray, np.ndarray]:
        plan = plan_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-cva", params), settings)
        result = detect_result(plan, settings)
        return result.changed, result.grid.pixel_area_m2()

    raw, area = changed({"min_area_m2": 0})
    mmu, _ = changed({"min_area_m2": 5000})
    cleaned, _ = changed({"min_area_m2": 0, "cleanup_radius": 1})
    assert mmu.sum() < raw.sum() and (mmu <= raw).all()
    _, areas = component_areas(mmu, area)
    assert areas[1:].min() >= 5000
    assert 0 < cleaned.sum() < raw.sum() and (cleaned <= raw).all()


def test_the_same_acquisition_twice_is_refused(paris, settings):
    with pytest.raises(InputError, match="same acquisition"):
        detect_pair(DetectRequest(paris / "imgs_1", paris / "imgs_1"), settings)


def test_reversed_dates_warn_in_the_product(paris, settings):
    from eowatch.plan import plan_pair

    plan = plan_pair(DetectRequest(paris / "imgs_2", paris / "imgs_1", preset="s2-cva"), settings)
    (warning,) = plan.properties["eowatch:warnings"]
    assert "is later than the 'after' input" in warning


def test_too_little_valid_data_is_reported_as_such_not_as_no_change(paris, tmp_path):
    """Both dates are not observed clear over the whole AOI (masks, AOI edges): with a
    minimum of 100 % the run says so instead of reporting its polygons as all there is."""
    aoi = str(paris / "paris.geojson")
    strict = Settings(output_dir=tmp_path / "strict", min_valid_fraction=1.0)
    run = detect_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-cva", aoi=aoi), strict)
    props = run.item.properties
    assert props["eowatch:valid_fraction_aoi"] < 1.0
    assert props["eowatch:status"] == "insufficient-valid-data"
    lenient = Settings(output_dir=tmp_path / "lenient")
    run = detect_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-cva", aoi=aoi), lenient)
    assert run.item.properties["eowatch:status"] == "ok"


def test_the_same_pixels_under_another_name_are_refused(paris, settings, tmp_path):
    copy = tmp_path / "copy_of_imgs_1"
    shutil.copytree(paris / "imgs_1", copy)
    with pytest.raises(InputError, match="identical pixels"):
        detect_pair(DetectRequest(paris / "imgs_1", copy), settings)
