"""The optional region stage: fitted on out-of-fold maps, applied in the whole-map step."""

from __future__ import annotations

import json

import numpy as np

from eowatch.learn.artifact import load_model, save_model
from eowatch.learn.train import TrainConfig, fit_model, samples_of, training_card
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings


def test_a_region_model_rates_whole_regions(small_pairs, tmp_path):
    config = TrainConfig(trees=5, region_threshold=0.1, region_trees=10)
    samples = samples_of(small_pairs, config, Settings())
    pixel, regions = fit_model(samples, config)
    assert regions is not None
    card = save_model(tmp_path, "r", pixel, training_card(small_pairs, samples, config), regions)
    model = load_model(card)
    assert model.region_threshold == 0.1 and (tmp_path / "r-v1.regions.txt").exists()
    bercy = small_pairs[0]
    request = DetectRequest(bercy.before, bercy.after, "s2-learned", {"model": str(card)})
    run = detect_pair(request, Settings(), tmp_path / "runs")
    meta = json.loads((run.folder / "item.json").read_text())["properties"]["eowatch:metadata"]
    assert meta["region_threshold"] == 0.1 and meta["model_id"] == model.id
    values = run.result.statistic[run.result.changed]
    assert values.size and (values > model.threshold).all()
    # A region's pixels share the region's probability: few distinct values.
    assert np.unique(values).size < values.size / 5
