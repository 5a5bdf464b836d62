"""The issues' quality bars, measured on the real labelled data by the
project's own evaluation code (the same code `eowatch evaluate` runs)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from eowatch.cli.main import cli
from eowatch.evaluation import evaluate_oscd
from eowatch.runs import ROLES
from eowatch.settings import Settings

#: OSCD dates with clouds in their true-colour quicklooks (the other 14 are cloud-free).
CLOUDY_OSCD_DATES = {("paris", "after"), ("hongkong", "before")}


def test_default_s2_preset_meets_mean_f1_on_the_8_oscd_cities(shared_data):
    report = evaluate_oscd(shared_data / "s2_pairs/oscd", "s2-imad", None, Settings())
    assert [p["name"] for p in report["pairs"]] == [
        "aguasclaras",
        "beirut",
        "bercy",
        "bordeaux",
        "hongkong",
        "nantes",
        "paris",
        "rennes",
    ]
    assert report["mean"]["f1"] >= 0.35, report["mean"]
    # Beside it, the scores over pixels observed clear on both dates, and each date's mask.
    assert [p["name"] for p in report["valid_only"]["pairs"]] == [p["name"] for p in report["pairs"]]
    assert report["valid_only"]["mean"]["f1"] >= 0.35
    masked = {(m["name"], role): m[role]["masked_fraction"] for m in report["masking"] for role in ROLES}
    assert masked[("paris", "after")] > 0.05  # two cumulus and their shadow
    # Every other date was judged cloud-free from its true-colour quicklook: at most 1 % masked.
    clear = {date: share for date, share in masked.items() if date not in CLOUDY_OSCD_DATES}
    assert len(clear) == 14 and max(clear.values()) <= 0.01, clear


def test_s1_flood_meets_pooled_f1_on_ombria(shared_data):
    from eowatch.evaluation.ombria import evaluate_ombria

    report = evaluate_ombria(shared_data / "s1_pairs/ombria_s1_trainsubset", "s1-flood", None, Settings())
    assert len(report["pairs"]) == 104
    assert report["pooled"]["f1"] >= 0.60, report["pooled"]


def test_evaluate_command_prints_and_writes_json(shared_data, tmp_path):
    out = tmp_path / "scores.json"
    res = CliRunner().invoke(
        cli, ["evaluate", str(shared_data / "s2_pairs/oscd"), "--preset", "s2-cva", "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "mean" in res.stdout and "ROC-AUC" in res.stdout
    report = json.loads(out.read_text())
    assert report["preset"] == "s2-cva" and len(report["pairs"]) == 8
    assert all(0.0 <= p["f1"] <= 1.0 and 0.0 <= p["kappa"] <= 1.0 for p in report["pairs"])
