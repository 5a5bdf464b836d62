"""Versioned model artifacts: never overwritten, found by name or path, checked on load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eowatch.errors import InputError
from eowatch.learn.artifact import DEFAULT_MODEL, SHIPPED_DIR, load_model, save_model

#: The smallest LightGBM text model: one tree of one leaf.
TEXT = (
    "tree\nversion=v4\nnum_class=1\nmax_feature_idx=0\nobjective=binary sigmoid:1\n\n"
    "Tree=0\nnum_leaves=1\nnum_cat=0\nleaf_value=0.25\nshrinkage=1\n\n\nend of trees\n"
)


def test_saving_twice_makes_a_new_version_and_keeps_the_first(tmp_path):
    first = save_model(tmp_path, "m", TEXT, {"features": []})
    second = save_model(tmp_path, "m", TEXT + "\n", {"features": []})
    assert first.name == "m-v1.card.json" and second.name == "m-v2.card.json"
    assert (tmp_path / "m-v1.model.txt").read_text() == TEXT
    assert (tmp_path / "m-v1.card.md").exists()
    card = json.loads(second.read_text())
    assert card["version"] == 2 and card["id"].startswith("m-v2-") and card["model_file"] == "m-v2.model.txt"
    # By folder (newest), by card path, by model file path, by name and NAME-vN in a folder.
    assert load_model(tmp_path).version == 2
    assert load_model(first).version == 1
    assert load_model(tmp_path / "m-v1.model.txt").version == 1
    assert load_model("m", search=tmp_path).version == 2
    one = load_model("m-v1", search=tmp_path)
    assert one.booster_text == TEXT
    assert one.predict(np.zeros((2, 1), dtype=np.float32)).tolist() == pytest.approx([0.5622] * 2, abs=1e-4)


def test_missing_tampered_or_unreadable_models_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_model(tmp_path / "nope.card.json")
    with pytest.raises(InputError, match="no model named 'nope'.*eowatch train"):
        load_model("nope")
    card = save_model(tmp_path, "m", TEXT, {})
    (tmp_path / "m-v1.model.txt").write_text(TEXT + "changed")
    with pytest.raises(InputError, match="SHA-256"):
        load_model(card)
    (tmp_path / "m-v1.model.txt").unlink()
    with pytest.raises(InputError, match="cannot read the change model"):
        load_model(card)
    card.write_text("{not json")
    with pytest.raises(InputError, match="cannot read the change model"):
        load_model(card)
    with pytest.raises(InputError, match="no -vN suffix"):
        save_model(tmp_path, "m-v3", TEXT, {})


def test_the_shipped_model_loads_and_states_its_label_licence():
    model = load_model(DEFAULT_MODEL)
    assert model.card["name"] == DEFAULT_MODEL and (SHIPPED_DIR / model.card["model_file"]).is_file()
    assert "CC BY-NC-SA" in model.card["label_licence"]
    assert len(model.card["training_data"]) == 8
    cv = model.card["cross_validation"]
    assert cv["mean"]["f1"] > 0.353 and cv["mean"]["precision"] >= 0.40
    assert "CC BY-NC-SA" in (SHIPPED_DIR / f"{model.card['name']}-v{model.version}.card.md").read_text()
