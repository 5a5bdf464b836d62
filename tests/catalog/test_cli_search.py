"""`eowatch search` against the replay server and the bundled local pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from eowatch.cli.search import search


def test_search_sentinel1_table_and_pairs(replay: str) -> None:
    args = ["--aoi", "15.0,30.2,15.2,30.4", "--start", "2024-03-01", "--end", "2024-04-30", "--sensor", "s1",
            "--provider", f"{replay}/ok/pc", "--collection", "sentinel-1-rtc", "--orbit", "51",
            "--polarisation", "VV"]  # fmt: skip
    result = CliRunner().invoke(search, args)
    assert result.exit_code == 0, result.output
    assert "3 acquisition(s)" in result.output and "51 descending" in result.output
    assert result.output.count("pair  ") == 2 and "same relative orbit 51" in result.output
    as_json = json.loads(CliRunner().invoke(search, [*args, "--json"]).output)
    assert len(as_json["acquisitions"]) == 3 and len(as_json["pairs"]) == 2
    assert as_json["acquisitions"][0]["relative_orbit"] == 51


def test_search_sentinel2_local_folder(paris: Path, tmp_path: Path) -> None:
    folder = tmp_path / "paris"
    shutil.copytree(paris, folder)  # the index is written in the catalogue folder
    result = CliRunner().invoke(search, ["--aoi", "2.32,48.81,2.34,48.83", "--start", "2016-01-01",
                                         "--end", "2017-12-31", "--provider", f"local:{folder}"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 acquisition(s) from local" in result.output and "31UDQ" in result.output
    assert "unknown" in result.output  # no SCL and no scene cloud cover in L1C band files
    assert "no pair proposed" in result.output  # 342 days apart: above the 60-day default
