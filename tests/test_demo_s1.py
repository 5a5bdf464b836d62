"""The georeferenced S1 demo: deterministic, and its injected changes are
found where they were put, through the whole pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from eowatch.demo_s1 import INJECTED_CHANGES, build_s1_demo, default_source
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    assert default_source().exists(), "data/s1-demo source scene is missing"
    return build_s1_demo(tmp_path_factory.mktemp("s1demo"))


def test_demo_is_deterministic(demo, tmp_path: Path) -> None:
    again = build_s1_demo(tmp_path)
    for a, b in ((demo.before, again.before), (demo.after, again.after)):
        with rasterio.open(a) as x, rasterio.open(b) as y:
            assert np.array_equal(x.read(), y.read(), equal_nan=True)
    with rasterio.open(demo.after) as ds:
        assert ds.descriptions == ("VV", "VH") and ds.tags()["units"] == "dB"
        assert ds.crs.to_epsg() == 4326
    source_dir = default_source().parent
    assert "Bonafilia" in (source_dir / "ATTRIBUTION.md").read_text()


def test_geojson_records_the_windows(demo) -> None:
    features = json.loads(demo.changes.read_text())["features"]
    assert {f["properties"]["name"] for f in features} == set(INJECTED_CHANGES)
    with rasterio.open(demo.before) as ds:
        for f in features:
            r0, r1, c0, c1 = f["properties"]["window_rows_cols"]
            xs = [p[0] for p in f["geometry"]["coordinates"][0]]
            ys = [p[1] for p in f["geometry"]["coordinates"][0]]
            t = ds.transform
            col = int(((min(xs) + max(xs)) / 2 - t.c) // t.a)
            row = int(((min(ys) + max(ys)) / 2 - t.f) // t.e)
            assert r0 <= row < r1 and c0 <= col < c1


def _outside(shape: tuple[int, int], margin: int = 10) -> np.ndarray:
    out = np.ones(shape, dtype=bool)
    for spec in INJECTED_CHANGES.values():
        r0, r1, c0, c1 = spec["window"]
        out[max(r0 - margin, 0) : r1 + margin, max(c0 - margin, 0) : c1 + margin] = False
    return out


@pytest.mark.parametrize("preset", ["s1-flood", "s1-logratio", "s1-bright-targets", "s1-omnibus"])
def test_injected_changes_are_found(demo, tmp_path: Path, preset: str) -> None:
    out = detect_pair(DetectRequest(demo.before, demo.after, preset), Settings(), out_dir=tmp_path)
    result = out.result
    values = {c.name: c.value for c in result.class_table}
    for name, spec in INJECTED_CHANGES.items():
        if preset not in spec["presets"] or (preset == "s1-omnibus" and name == "cleared"):
            continue  # a -6 dB change is below the per-pixel omnibus test's power at ENL ~2.5
        r0, r1, c0, c1 = spec["window"]
        found = float((result.classes[r0:r1, c0:c1] == values[spec["expected"]]).mean())
        assert found > 0.8, (preset, name, found)
    assert result.changed[_outside(result.grid.shape)].mean() < 0.01
    assert (out.folder / "acd_composite.tif").exists()
    assert out.item.properties["eowatch:units"]["after"]["vv"]["source"] == "raster tag 'units'"
    directions = {f["properties"].get("direction") for f in out.polygons.to_features()}
    assert directions & {"increase", "decrease"}
