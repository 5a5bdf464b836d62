from __future__ import annotations

import json

from click.testing import CliRunner

from eowatch.cli.main import cli


def test_presets_lists_every_s2_preset_with_parameters():
    res = CliRunner().invoke(cli, ["presets", "--json"])
    assert res.exit_code == 0, res.output
    described = {d["name"]: d for d in json.loads(res.output)}
    assert {"s2-imad", "s2-cva", "s2-burn", "s2-water"} <= set(described)
    # the listing shows the defaults the code really uses (s2-imad: alpha 1e-4, see its Params)
    assert described["s2-imad"]["parameters"]["alpha"]["default"] == 1e-4
    assert described["s2-imad"]["parameters"]["min_area_m2"]["default"] == 2000.0


def test_detect_writes_products_and_prints_a_summary(paris, tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "detect",
            "--before",
            str(paris / "imgs_1"),
            "--after",
            str(paris / "imgs_2"),
            "--preset",
            "s2-cva",
            "--param",
            "threshold=kittler-illingworth",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["status"] == "ok" and summary["polygons"] > 0
    assert (tmp_path / summary["folder"].split("/")[-1] / "item.json").exists()


def test_bad_input_exits_2_with_one_clear_line(paris, tmp_path):
    res = CliRunner().invoke(
        cli,
        [
            "detect",
            "--before",
            str(paris / "imgs_1"),
            "--after",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "does not exist" in last and "Traceback" not in res.stderr
    res = CliRunner().invoke(
        cli,
        [
            "detect",
            "--before",
            str(paris / "imgs_1"),
            "--after",
            str(paris / "imgs_2"),
            "--aoi",
            "10,10,11,11",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code == 2 and "outside" in res.stderr


def test_detect_registers_the_run_in_the_results_catalogue(paris, tmp_path, monkeypatch):
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    args = [
        "detect",
        "--before",
        str(paris / "imgs_1"),
        "--after",
        str(paris / "imgs_2"),
        "--preset",
        "s2-cva",
    ]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "out"), "--collection", "paris-watch"])
    assert res.exit_code == 0, res.output
    from eowatch.results import ResultsCatalog

    catalog = ResultsCatalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    found = catalog.search(collections=["paris-watch"])
    assert [i["id"] for i in found.items] == [json.loads(res.stdout)["folder"].split("/")[-1]]


def test_detect_discovers_the_pair_from_an_aoi_and_dates(paris, tmp_path, monkeypatch):
    """`detect` with --aoi/--start/--end: the local catalogue finds both dates of the
    bundled pair, pairing picks them and the reason lands in the Item's provenance."""
    import shutil

    shutil.copytree(paris, tmp_path / "catalogue" / "paris")
    monkeypatch.setenv("EOWATCH_PAIR_MAX_GAP_DAYS", "400")  # the OSCD dates are 342 days apart
    res = CliRunner().invoke(cli, [
        "detect", "--aoi", "2.32,48.81,2.34,48.83", "--start", "2016-01-01", "--end", "2018-01-01",
        "--sensor", "s2", "--provider", f"local:{tmp_path / 'catalogue'}", "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "paris-imgs_1 -> paris-imgs_2" in res.stderr
    folder = json.loads(res.stdout)["folder"]
    pairing = json.loads((tmp_path / "out" / folder.split("/")[-1] / "item.json").read_text())["properties"][
        "eowatch:pairing"
    ]
    assert pairing["mgrs_tile"] == "31UDQ" and pairing["gap_days"] == 342.0
