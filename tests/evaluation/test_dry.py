"""Dry cases: re-speckling, the layout they need, and the CLI's one-line refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from eowatch.cli.main import cli
from eowatch.errors import InputError
from eowatch.evaluation.dry import evaluate_dry, respeckle
from eowatch.kernels.sar import estimate_enl
from eowatch.settings import Settings


def test_respeckle_is_unit_mean_gamma_with_the_asked_enl() -> None:
    flat = np.full((400, 400), 0.05)
    flat[0, 0] = np.nan
    noisy = respeckle(flat, 5.0, np.random.default_rng(0))
    assert np.isnan(noisy[0, 0])
    values = noisy[np.isfinite(noisy)] / 0.05
    assert values.mean() == pytest.approx(1.0, abs=0.01)
    assert 1 / values.var() == pytest.approx(5.0, rel=0.05)  # ENL = mean² / variance
    assert estimate_enl(noisy) == pytest.approx(5.0, rel=0.2)
    again = respeckle(flat, 5.0, np.random.default_rng(0))
    assert np.array_equal(noisy, again, equal_nan=True)  # seeded: every run draws the same


def test_missing_layout_and_unknown_group(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="shared data layout"):
        evaluate_dry(tmp_path, "s1-flood", None, Settings())
    with pytest.raises(InputError, match="unknown dry-case groups"):
        evaluate_dry(tmp_path, "s1-flood", None, Settings(), groups=("wet",))


def test_cli_refuses_a_folder_without_the_data_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--dataset", "s1-dry"])
    assert res.exit_code == 2
    assert "dry cases need the shared data layout" in res.output
    assert "Traceback" not in res.output


def test_dry_quadrants_of_real_pairs(shared_data: Path) -> None:
    report = evaluate_dry(shared_data, "s1-flood", None, Settings(), groups=("ombria-dry-quadrants",))
    rows = report["groups"]["ombria-dry-quadrants"]["pairs"]
    assert len(rows) == 53 and all("@" in r["name"] for r in rows)
    assert all(0.0 <= r["flagged_share"] <= 1.0 for r in rows)
    assert all(r["decrease_threshold_db"] is None or r["decrease_threshold_db"] < 0 for r in rows)
