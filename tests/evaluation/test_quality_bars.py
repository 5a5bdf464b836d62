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
    # 0.610 with the forced splits of the past (every tile got a flood class); the bar of
    # decisions that do not invent change is 0.58.
    assert report["pooled"]["f1"] >= 0.58, report["pooled"]
    decrease = [t["decrease_threshold_db"] for t in report["thresholds"]]
    assert len(decrease) == 104 and all(t is None or t < 0 for t in decrease), decrease
    assert report["decrease_thresholds_at_or_above_0db"] == 0
    assert report["reliability"]["ece"] <= 0.10, report["reliability"]


def test_s1_flood_flags_little_where_nothing_flooded(shared_data):
    from eowatch.evaluation.dry import DRY_GROUPS, evaluate_dry

    report = evaluate_dry(shared_data, "s1-flood", None, Settings())
    groups = report["groups"]
    assert set(groups) == set(DRY_GROUPS)
    assert groups["scenes"]["count"] == 9 and groups["ombria-before"]["count"] == 104
    assert groups["ombria-dry-quadrants"]["count"] == 53  # of 416 quadrants
    for name, g in groups.items():
        assert g["median"] <= 0.02 and g["p90"] <= 0.10, (name, g["median"], g["p90"])


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
