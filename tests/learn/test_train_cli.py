"""``eowatch train`` and ``eowatch evaluate --cv`` on two small real OSCD cities."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eowatch.cli.main import cli
from eowatch.learn.artifact import load_model


def test_train_writes_a_new_version_each_time_and_the_model_runs(two_cities, small_pairs, tmp_path):
    out = tmp_path / "models"
    res = CliRunner().invoke(cli, ["train", "--oscd", str(two_cities), "--out", str(out), "--name", "t",
                                   "--no-cv", "--trees", "20"])  # fmt: skip
    assert res.exit_code == 0, res.output
    first = (out / "t-v1.card.json").read_text()
    card = json.loads(first)
    assert [p["name"] for p in card["training_data"]] == ["bercy", "paris"]
    assert "CC BY-NC-SA" in card["label_licence"] and card["features"] and card["id"].startswith("t-v1-")
    bercy = small_pairs[0]
    res = CliRunner().invoke(cli, ["train", "--pair", str(bercy.before), str(bercy.after), str(bercy.label),
                                   "--licence", "test", "--out", str(out), "--name", "t", "--no-cv",
                                   "--trees", "20"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (out / "t-v1.card.json").read_text() == first  # never overwritten
    second = load_model(out / "t-v2.card.json")
    assert second.card["training_data"][0]["name"] == "bercy-cm" and second.card["label_licence"] == "test"
    paris = small_pairs[1]
    res = CliRunner().invoke(cli, ["detect", "--before", str(paris.before), "--after", str(paris.after),
                                   "--preset", "s2-learned", "--param", f"model={out / 't-v2.card.json'}",
                                   "--out", str(tmp_path / "runs"), "--quiet"])  # fmt: skip
    assert res.exit_code == 0, res.output
    item = json.loads(next((tmp_path / "runs").glob("*/item.json")).read_text())
    assert item["properties"]["eowatch:metadata"]["model_id"] == second.id


def test_evaluate_cross_validates_leaving_one_city_out(two_cities, tmp_path):
    path = tmp_path / "cv.json"
    res = CliRunner().invoke(cli, ["evaluate", str(two_cities), "--cv", "leave-one-city-out",
                                   "--json", str(path)])  # fmt: skip
    assert res.exit_code == 0, res.output
    report = json.loads(path.read_text())
    assert [p["name"] for p in report["pairs"]] == ["bercy", "paris"] and report["cv"] == "leave-one-city-out"
    assert 0 < report["mean"]["f1"] <= 1 and report["reliability"]["rated"] > 0
    assert "expected calibration error" in res.stdout
    res = CliRunner().invoke(cli, ["evaluate", str(two_cities), "--cv", "leave-one-city-out",
                                   "--preset", "s2-imad"])  # fmt: skip
    assert res.exit_code == 2 and "s2-learned" in res.stderr


def test_training_without_pairs_or_change_is_an_input_error(tmp_path):
    res = CliRunner().invoke(cli, ["train", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "no training pairs" in res.stderr


def test_analyst_verdicts_train_a_model(small_pairs, tmp_path):
    """Verdicts on the real polygons of an s2-learned run on bercy, in the form `eowatch
    feedback export` writes (every other polygon confirmed, the others false alarms)."""
    from eowatch.pipeline import DetectRequest, detect_pair
    from eowatch.settings import Settings

    bercy = small_pairs[0]
    run = detect_pair(DetectRequest(bercy.before, bercy.after, "s2-learned", {}), Settings(), tmp_path / "r")
    item = json.loads((run.folder / "item.json").read_text())
    polygons = json.loads(next(run.folder.glob("*.geojson")).read_text())["features"]
    features = [
        {
            "type": "Feature",
            "geometry": f["geometry"],
            "properties": {
                "verdict": "confirmed" if i % 2 == 0 else "false_alarm",
                "polygon": i,
                "item": item["id"],
                "inputs": item["properties"]["eowatch:inputs"],
            },
        }
        for i, f in enumerate(polygons)
    ]
    path = tmp_path / "labels.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    out = tmp_path / "models"
    res = CliRunner().invoke(
        cli, ["train", "--feedback", str(path), "--out", str(out), "--no-cv", "--trees", "5"]
    )
    assert res.exit_code == 0, res.output
    card = load_model(out).card
    data = card["training_data"][0]
    assert data["source"].startswith("feedback") and "analyst" in card["label_licence"]
    assert 0 < data["change_px"] < data["labelled_px"]
    features[0]["properties"]["inputs"] = [{"role": "before", "href": "https://x/a"}, {"role": "after"}]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    res = CliRunner().invoke(cli, ["train", "--feedback", str(path), "--out", str(out), "--no-cv"])
    assert res.exit_code == 2 and "not local files" in res.stderr


def test_evaluating_the_shipped_model_on_its_training_cities_says_so(two_cities):
    """Without --cv, OSCD scores of a model trained on the same cities are training-set
    scores: the report lists the overlap and the CLI warns (s2-imad, untrained: none)."""
    res = CliRunner().invoke(cli, ["evaluate", str(two_cities), "--preset", "s2-learned"])
    assert res.exit_code == 0, res.output
    assert "training-set scores; use --cv leave-one-city-out" in res.stderr
    res = CliRunner().invoke(cli, ["evaluate", str(two_cities), "--preset", "s2-imad"])
    assert res.exit_code == 0 and "training-set" not in res.stderr
