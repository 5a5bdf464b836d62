"""OMBRIA S1 evaluation: report format, pooled scores, the preset is what is scored."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from eowatch.cli.main import cli
from eowatch.errors import InputError
from eowatch.evaluation.ombria import evaluate_ombria, ombria_ids, ombria_scene, png_to_db
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
    # An unchanged tile with fresh noise: s1-flood finds no bimodal water there and maps none
    # (the always-splitting thresholds of the past flagged part of it).
    _write_tile(tmp_path, "0002", land, rng.normal(170, 12, (128, 128)).clip(0, 255), 0 * mask)
    report = evaluate_ombria(tmp_path, "s1-flood", {"min_area_m2": 0}, Settings())
    assert report["dataset"] == "ombria-s1" and report["pooled"]["f1"] > 0.8
    assert report["pairs"][0]["f1"] > 0.85
    assert report["pairs"][1]["changed_fraction_pred"] == 0.0
    water = [t["water_source"] for t in report["thresholds"]]
    assert water == ["split", "none"]  # 8-bit exports are uncalibrated: no fixed level
    assert report["decrease_thresholds_at_or_above_0db"] == 0
    logratio = evaluate_ombria(tmp_path, "s1-logratio", None, Settings())
    assert logratio["pooled"]["recall"] > 0.9


def test_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no OMBRIA"):
        evaluate_ombria(tmp_path, "s1-flood", None, Settings())


def test_ids_need_not_be_numeric(shared_data: Path, tmp_path: Path) -> None:
    # Real tiles under new names: each before pairs with the after and mask of its own id.
    source = shared_data / "s1_pairs" / "ombria_s1_trainsubset"
    names = {"0001": "ABC001", "0007": "x-7_b"}
    for old, new in names.items():
        for folder, kind in (("BEFORE", "before"), ("AFTER", "after"), ("MASK", "mask")):
            (tmp_path / folder).mkdir(exist_ok=True)
            shutil.copy(source / folder / f"S1_{kind}_{old}.png", tmp_path / folder / f"S1_{kind}_{new}.png")
    (tmp_path / "BEFORE" / "S1_before_lonely.png").write_bytes(b"")  # no after / mask: left out
    assert ombria_ids(tmp_path) == ["ABC001", "x-7_b"]
    renamed = evaluate_ombria(tmp_path, "s1-flood", None, Settings())
    original = evaluate_ombria(source, "s1-flood", None, Settings(), tiles=list(names))
    assert [p["name"] for p in renamed["pairs"]] == ["ABC001", "x-7_b"]
    for new, old in zip(renamed["pairs"], original["pairs"], strict=True):
        assert {k: v for k, v in new.items() if k != "name"} == {k: v for k, v in old.items() if k != "name"}


def test_evaluate_command_prints_progress_and_reliability(shared_data: Path, tmp_path: Path) -> None:
    source = shared_data / "s1_pairs" / "ombria_s1_trainsubset"
    for folder, kind in (("BEFORE", "before"), ("AFTER", "after"), ("MASK", "mask")):
        (tmp_path / folder).mkdir()
        shutil.copy(source / folder / f"S1_{kind}_0001.png", tmp_path / folder / f"S1_{kind}_ABC001.png")
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--dataset", "ombria"])
    assert res.exit_code == 0, res.output
    assert "ombria: pair 1: 1/1 ABC001" in res.stderr
    assert "ABC001" in res.stdout and "pooled" in res.stdout
    assert "reliability of the flagged pixels' confidence" in res.stdout
    assert "expected calibration error: 0." in res.stdout
    assert "decrease thresholds at or above 0 dB: 0" in res.stdout
