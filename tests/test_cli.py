from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from eowatch.cli.main import cli

from .conftest import REPO


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


# -- bad input: exit status 2 and one line naming the problem and the fix, before any work --------------


def _refused(res, *words: str, status: int = 2) -> str:
    """The one error line of a refused command (no uncaught exception, no traceback)."""
    assert isinstance(res.exception, SystemExit), res.exception  # not an uncaught exception
    assert res.exit_code == status, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert all(word in lines[0] for word in words), lines[0]
    assert "Traceback" not in res.output
    return lines[0]


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write in: mode 555, or /sys for root (who writes in any other)."""
    folder = Path("/sys") if os.geteuid() == 0 else tmp_path / "read-only"
    if folder != Path("/sys"):
        folder.mkdir()
        folder.chmod(0o555)
    try:
        tempfile.TemporaryFile(dir=folder).close()
        pytest.skip(f"{folder} is writable here")
    except OSError:
        pass
    yield folder
    if folder != Path("/sys"):
        folder.chmod(0o755)


def _out_path(kind: str, tmp_path: Path, read_only: Path) -> Path:
    (tmp_path / "a-file").write_text("x")
    return {"file": tmp_path / "a-file", "under a file": tmp_path / "a-file" / "out",
            "read-only": read_only / "out"}[kind]  # fmt: skip


_OUT_COMMANDS = {
    "detect": lambda p, out: ["detect", "--before", f"{p}/imgs_1", "--after", f"{p}/imgs_2", "--out", out],
    "detect-series": lambda p, out: ["detect-series", f"{p}/imgs_1", f"{p}/imgs_2", "--out", out],
    "demo-s1": lambda p, out: ["demo-s1", "--out", out],
    "stac-wrap": lambda p, out: ["stac-wrap", f"{p}/imgs_1", "--out", out],
    "catalog export": lambda p, out: ["catalog", "export", out],
}


@pytest.mark.parametrize("kind", ["file", "under a file", "read-only"])
@pytest.mark.parametrize("command", sorted(_OUT_COMMANDS))
def test_an_output_folder_that_cannot_be_written_is_refused_first(
    command, kind, paris, tmp_path, read_only, monkeypatch
):
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    out = _out_path(kind, tmp_path, read_only)
    res = CliRunner().invoke(cli, _OUT_COMMANDS[command](paris, str(out)))
    _refused(res, str(out), "cannot write" if kind == "read-only" else "is a file")


@pytest.mark.parametrize("kind", ["folder", "under a file", "read-only"])
def test_evaluate_json_that_cannot_be_written_is_refused_before_scoring(kind, tmp_path, read_only):
    (tmp_path / "a-file").write_text("x")
    path = {"folder": tmp_path, "under a file": tmp_path / "a-file" / "scores.json",
            "read-only": read_only / "scores.json"}[kind]  # fmt: skip
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--json", str(path)])
    _refused(res, "--json", str(path))


def _detect_paris(paris: Path, out: Path, *extra: str) -> list[str]:
    """``detect`` of the bundled pair (with --quiet: the error is the only line on stderr)."""
    inputs = ["--before", str(paris / "imgs_1"), "--after", str(paris / "imgs_2")]
    return ["detect", *inputs, "--preset", "s2-cva", "--out", str(out), "--quiet", *extra]


def test_collection_is_checked_before_any_work(paris, tmp_path, monkeypatch):
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'catalog.db'}")
    res = CliRunner().invoke(cli, _detect_paris(paris, tmp_path / "out", "--collection", "has space"))
    _refused(res, "--collection", "'has space'", "letters, digits")
    assert not (tmp_path / "out").exists()  # refused before the product was made
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'a-file' / 'catalog.db'}")
    res = CliRunner().invoke(cli, _detect_paris(paris, tmp_path / "out", "--collection", "paris-watch"))
    _refused(res, "--collection", "EOWATCH_DATABASE_URL")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--crs", "EPSG:99999"], ["unknown CRS", "EPSG:99999"]),
        (["--crs", "not-a-crs"], ["unknown CRS", "not-a-crs"]),
        # the bundled pair is on EPSG:4326: 10 there is 10 degrees, one pixel over all of Paris
        (["--resolution", "10"], ["in degrees", "--crs EPSG:32631"]),
        (["--crs", "EPSG:32631", "--resolution", "50000"], ["less than one pixel"]),
        (["--resolution", "0"], ["--resolution", "positive"]),
        (["--resolution", "nan"], ["--resolution", "positive"]),
    ],
)
def test_target_grid_problems_are_refused(paris, tmp_path, extra, words):
    res = CliRunner().invoke(cli, _detect_paris(paris, tmp_path / "out", *extra))
    _refused(res, *words)
    assert not (tmp_path / "out").exists()


def test_a_grid_larger_than_the_limit_is_refused_before_reading(paris, tmp_path, monkeypatch):
    monkeypatch.setenv("EOWATCH_MAX_GRID_PIXELS", "10000")
    res = CliRunner().invoke(cli, _detect_paris(paris, tmp_path / "out", "--resolution", "0.0001"))
    _refused(res, "pixels", "EOWATCH_MAX_GRID_PIXELS", "coarser --resolution")


def test_an_s1_preset_on_an_s2_folder_says_which_bands_it_needs(paris, tmp_path):
    res = CliRunner().invoke(cli, _detect_paris(paris, tmp_path / "out", "--preset", "s1-flood"))
    _refused(res, "holds Sentinel-2 bands", "needs Sentinel-1", "Sentinel-2 preset")


@pytest.mark.parametrize("text", ['{"foo": 1}', "[]", '{"type": "FeatureCollection", "features": []}', "no"])
def test_catalog_ingest_of_json_that_is_not_stac(text, tmp_path):
    folder = tmp_path / "product"
    folder.mkdir()
    (folder / "item.json").write_text(text)
    db = f"sqlite:///{tmp_path / 'catalog.db'}"
    res = CliRunner().invoke(cli, ["catalog", "ingest", str(folder), "-c", "runs", "--database", db])
    _refused(res, "is not a readable STAC Item", "item.json")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("EOWATCH_SCENE_WORKERS", "two", "expected int (>= 1)"),
        ("EOWATCH_MAX_AOI_AREA_KM2", "-5", "expected float (> 0)"),
        ("EOWATCH_MASK_SNOW", "maybe", "expected bool"),
        ("EOWATCH_STAC_API_S2_COLLECTIONS", "[sentinel", "as a JSON list"),
    ],
)
@pytest.mark.parametrize("args", [["presets"], ["task", "list"]])
def test_a_bad_environment_value_names_the_variable_and_the_type(name, value, expected, args, monkeypatch):
    monkeypatch.setenv(name, value)
    _refused(CliRunner().invoke(cli, args), f"{name}={value!r}", expected)


def test_a_task_sub_command_alone_reports_a_bad_environment_value_too(monkeypatch):
    from eowatch.cli.task import task

    monkeypatch.setenv("EOWATCH_JOB_MAX_ATTEMPTS", "many")
    _refused(CliRunner().invoke(task, ["list"]), "EOWATCH_JOB_MAX_ATTEMPTS='many'", "expected int")


_AOI = "2.3,48.8,2.4,48.9"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--sensor", "s2", "--preset", "s1-flood"], ["'s1-flood' is for sentinel-1", "watches sentinel-2"]),
        (["--sensor", "s1", "--sensor", "s2", "--preset", "s2-cva"], ["watches sentinel-1", "none of its"]),
        (["--provider", "nowhere"], ["unknown discovery provider 'nowhere'", "earth-search", "local:FOLDER"]),
        (["--email", "ops.example.org"], ["'ops.example.org' is not an e-mail address"]),
    ],
)
def test_task_create_refuses_a_task_that_could_never_run(extra, words, tmp_path, monkeypatch):
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'tasks.db'}")
    res = CliRunner().invoke(cli, ["task", "create", "site", "--aoi", _AOI, *extra])
    _refused(res, *words)
    assert "site" not in CliRunner().invoke(cli, ["task", "list"]).output


def test_scheduler_once_fails_when_every_poll_failed(tmp_path, monkeypatch):
    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'tasks.db'}")
    gone = f"local:{tmp_path / 'gone'}"
    created = CliRunner().invoke(cli, ["task", "create", "site", "--aoi", _AOI, "--provider", gone])
    assert created.exit_code == 0, created.output
    res = CliRunner().invoke(cli, ["scheduler", "--once"])
    assert isinstance(res.exception, SystemExit) and res.exit_code == 1, res.output
    assert json.loads(res.stdout)["errors"]["site"].startswith("ProviderError")
    assert res.stderr.strip().splitlines()[-1] == "error: every poll failed (1 task(s)); see the errors above"


# -- one exit convention: 2 usage and bad input, 1 failure, never a traceback --------------------------------


def test_a_usage_error_is_one_line_with_the_help_command():
    res = CliRunner().invoke(cli, ["detect", "--sensor", "s3"], prog_name="eowatch")
    _refused(res, "'--sensor'", "'s3' is not one of", "(see 'eowatch detect --help')")


def test_a_failure_exits_1_and_an_unexpected_error_one_line_unless_debug(monkeypatch):
    import eowatch.detect
    from eowatch.errors import NoValidDataError

    def fail(*_: object) -> None:
        raise NoValidDataError("nothing valid to compare; choose clearer dates")

    monkeypatch.setattr(eowatch.detect, "list_presets", fail)
    _refused(CliRunner().invoke(cli, ["presets"]), "nothing valid to compare", status=1)

    def crash(*_: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(eowatch.detect, "list_presets", crash)
    res = CliRunner().invoke(cli, ["presets"])
    _refused(res, "unexpected RuntimeError: boom second line", "eowatch --debug", status=1)
    res = CliRunner().invoke(cli, ["--debug", "presets"])
    assert isinstance(res.exception, RuntimeError)  # the traceback is shown


def test_readme_detect_example_runs_as_pasted(paris, tmp_path, monkeypatch):
    """The README's `detect` example, parsed by bash as a reader pastes it (no comment may
    follow a line continuation), runs."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash")
    readme = (REPO / "README.md").read_text()
    block = next(b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "eowatch detect \\" in b)
    script = 'eowatch() { if [ "$1" = detect ]; then printf "%s\\0" "$@"; fi; }\n'
    script += block.replace(".venv/bin/eowatch", "eowatch")
    parsed = subprocess.run([bash, "-c", script], cwd=REPO, capture_output=True, check=False)
    args = parsed.stdout.decode().split("\0")[:-1]
    assert args[0] == "detect" and parsed.stderr == b"", parsed.stderr.decode()
    args[args.index("--out") + 1] = str(tmp_path / "out")
    monkeypatch.chdir(REPO)
    res = CliRunner().invoke(cli, [*args, "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "ok"


def test_worker_once_fails_when_a_job_failed(tmp_path, monkeypatch):
    from eowatch.monitor import JobQueue
    from eowatch.store import make_engine

    monkeypatch.setenv("EOWATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'tasks.db'}")
    monkeypatch.setenv("EOWATCH_OUTPUT_DIR", str(tmp_path / "out"))
    created = CliRunner().invoke(cli, ["task", "create", "site", "--aoi", _AOI])
    assert created.exit_code == 0, created.output
    task = json.loads(CliRunner().invoke(cli, ["task", "show", "site"]).output)
    gone = str(tmp_path / "gone")  # inputs that are not there: bad input, failed at once
    payload = {"preset": "s2-cva", "before": gone, "after": gone,
               "task": {"id": task["id"], "name": "site", "collection": "task-site"}}  # fmt: skip
    JobQueue(make_engine(f"sqlite:///{tmp_path / 'tasks.db'}")).enqueue(
        task["id"], "s2-cva", "b", "a", payload
    )
    res = CliRunner().invoke(cli, ["worker", "--once", "--executor", "inline"])
    assert res.exit_code == 1, res.output
    assert " failed " in res.stdout and "does not exist" in res.stdout
    assert res.stderr.strip().splitlines()[-1] == "error: 1 of 1 job(s) failed; see the lines above"
