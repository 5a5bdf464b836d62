"""The compiled tree evaluator gives LightGBM's predictions on real features."""

from __future__ import annotations

import numpy as np
import pytest

from eowatch.errors import InputError
from eowatch.learn.artifact import DEFAULT_MODEL, load_model
from eowatch.learn.train import TrainConfig, pair_samples
from eowatch.learn.trees import parse_forest
from eowatch.settings import Settings


def test_the_shipped_model_evaluates_as_lightgbm_does(small_pairs):
    lightgbm = pytest.importorskip("lightgbm")
    model = load_model(DEFAULT_MODEL)
    rows = pair_samples(small_pairs[0], TrainConfig(), Settings()).rows.copy()
    rows[::7, 0] = np.nan  # missing values take LightGBM's path too
    rows[1::7, 5] = 0.0
    expected = lightgbm.Booster(model_str=model.booster_text).predict(rows)
    np.testing.assert_allclose(model.predict(rows), expected, atol=1e-6)


def test_unsupported_models_are_input_errors():
    with pytest.raises(InputError, match="unsupported LightGBM model"):
        parse_forest("tree\nobjective=multiclass num_class:3\nnum_class=3\n\nTree=0\nleaf_value=1\n")
    with pytest.raises(InputError, match="no tree"):
        parse_forest("tree\nobjective=binary sigmoid:1\n")
