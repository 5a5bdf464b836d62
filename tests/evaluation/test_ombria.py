"""OMBRIA S1 evaluation: report format, pooled scores, the preset is what is scored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eowatch.errors import InputError
from eowatch.evaluation.ombria import evaluate_ombria, ombria_scene, png_to_db
from eowatch.settings import Settings

TILES = ["0001", "0007", "0014", "0023", "0029"]


def test_png_mapping() -> None:
    assert png_to_db(np.array([0, 255], dtype=np.uint8)).tolist() == [-25.0, 0.0]


def test_real_tiles(shared_data: Path) -> None:
    root = shared_data / "s1_pairs" / "ombria_s1_trainsubset"
    report = evaluate_ombria(root, "s1-flood", None, Settings(), tiles=TILES)
    assert [p["name"] for p in report["pairs"]] == TILES
    pooled = report["pooled"]
    assert pooled["pixels"] == len(TILES) * 256 * 256
    assert set(report["mean"]) >= {"precision", "recall", "f1", "iou"}
    assert 0.3 < pooled["f1"] <= 1.0 and 0.0 < pooled["iou"] < pooled["f1"]
    scene = ombria_scene(root / "BEFORE" / "S1_before_0001.png", "before")
    assert scene.bands == ("vv",) and scene.grid.resolution == (10.0, 10.0)


def _write_tile(root: Path, tile: str, before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> None:
    for folder, name, arr in (
        ("BEFORE", "before", before),
        ("AFTER", "after", after),
        ("MASK", "mask", mask),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr.astype(np.uint8)).save(root / folder / f"S1_{name}_{tile}.png")


def test_synthetic_flood_is_scored_through_the_preset(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    land = rng.normal(170, 12, (128, 128)).clip(0, 255)
    after = land.copy()
    after[32:96, 32:96] = rng.normal(40, 8, (64, 64)).clip(0, 255)  # new dark water
    mask = np.zeros((128, 128))
    mask[32:96, 32:96] = 255
    _write_tile(tmp_path, "0001", land, after, mask)
    # No no-change tile: identical dates are refused, and a noisy unchanged tile gets a flood
    # class from s1-flood's automatic thresholds (pooled F1 0.32: the "Alerts an analyst can
    # act on" issue).
    report = evaluate_ombria(tmp_path, "s1-flood", {"min_area_m2": 0}, Settings())
    assert report["dataset"] == "ombria-s1" and report["pooled"]["f1"] > 0.8
    assert report["pairs"][0]["f1"] > 0.85
    logratio = evaluate_ombria(tmp_path, "s1-logratio", None, Settings())
    assert logratio["pooled"]["recall"] > 0.9


def test_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no OMBRIA"):
        evaluate_ombria(tmp_path, "s1-flood", None, Settings())
