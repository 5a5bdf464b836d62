"""``s2-learned`` on real OSCD pairs: the product records the model, windows agree with
the whole scene, and a bad model reference is one clear input error."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from eowatch.cli.main import cli
from eowatch.detect import get_preset, list_presets, parse_params
from eowatch.engine import EngineOptions
from eowatch.engine.run import detect_arrays
from eowatch.learn.artifact import DEFAULT_MODEL, load_model
from eowatch.learn.pairs import oscd_pairs
from eowatch.learn.train import TrainConfig, _read_whole
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings


@pytest.fixture(scope="module")
def bercy(shared_data):
    return next(p for p in oscd_pairs(shared_data / "s2_pairs/oscd") if p.name == "bercy")


def test_the_product_records_the_model_id_and_version_in_the_item(bercy, tmp_path):
    out = detect_pair(DetectRequest(bercy.before, bercy.after, "s2-learned", {}), Settings(), tmp_path)
    item = json.loads((out.folder / "item.json").read_text())
    meta = item["properties"]["eowatch:metadata"]
    shipped = load_model(DEFAULT_MODEL)
    assert meta["model_id"] == shipped.id and meta["model_version"] == shipped.version
    assert "CC BY-NC-SA" in meta["model_label_licence"]
    assert item["properties"]["eowatch:statistic"] == "change_probability"
    polygons = json.loads(next(out.folder.glob("*.geojson")).read_text())["features"]
    assert polygons, "bercy has change"
    confidence = [f["properties"]["confidence"] for f in polygons]
    assert all(0.0 <= c <= 1.0 for c in confidence)
    assert min(confidence) > shipped.threshold - 1e-6  # a polygon's pixels all passed the threshold


def test_small_windows_give_the_whole_scene_result(bercy):
    scenes = _read_whole(bercy, TrainConfig(), Settings())
    preset = get_preset("s2-learned")
    params = parse_params(preset, {})
    whole = detect_arrays(preset, params, scenes, EngineOptions(window_px=1024))
    windowed = detect_arrays(preset, params, scenes, EngineOptions(window_px=128))
    np.testing.assert_allclose(windowed.statistic, whole.statistic, atol=1e-5, equal_nan=True)
    assert (windowed.classes == whole.classes).all() and whole.changed.any()


def test_a_missing_model_exits_2_with_one_line(bercy, tmp_path):
    args = ["detect", "--before", str(bercy.before), "--after", str(bercy.after), "--preset", "s2-learned"]
    res = CliRunner().invoke(
        cli, [*args, "--param", f"model={tmp_path}/nope.card.json", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nope.card.json does not exist" in last and "eowatch train" in last


def test_registered_beside_s2_imad_with_the_same_classes_and_mmu():
    names = [p.name for p in list_presets("sentinel-2")]
    assert "s2-learned" in names
    learned, imad = get_preset("s2-learned"), get_preset("s2-imad")
    assert learned.describe()["parameters"]["model"]["default"] == DEFAULT_MODEL
    assert (
        learned.describe()["parameters"]["min_area_m2"]["default"]
        == imad.describe()["parameters"]["min_area_m2"]["default"]
    )
