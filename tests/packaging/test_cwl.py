"""The OGC EO application packages (cwl/): valid CWL, the metadata the best
practice asks for, and real runs with cwltool (no container: eowatch from this
virtual environment) on STAC catalogues of the bundled pairs, whose change maps
must equal a direct ``eowatch detect`` on the same data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import pytest
import rasterio
import yaml

import eowatch
from eowatch.errors import InputError
from eowatch.io.sources import resolve_input
from eowatch.io.stac_catalog import wrap_input, write_output_catalog

REPO = Path(__file__).resolve().parents[2]
CWL = REPO / "cwl"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def _run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in args], env=ENV, cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, f"{args[:3]} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _graph(name: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    doc = yaml.safe_load((CWL / f"eowatch-{name}.cwl").read_text())
    by_class = {p["class"]: p for p in doc["$graph"]}
    return doc, by_class["Workflow"], by_class["CommandLineTool"]


@pytest.mark.parametrize("name", ["s2", "s1"])
def test_document_is_valid_cwl(name: str) -> None:
    proc = _run(BIN / "cwltool", "--validate", CWL / f"eowatch-{name}.cwl")
    assert f"eowatch-{name}.cwl is valid CWL" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", ["s2", "s1"])
def test_document_follows_the_application_package_layout(name: str) -> None:
    doc, workflow, tool = _graph(name)
    assert doc["s:softwareVersion"] == eowatch.__version__
    assert workflow["id"] == f"eowatch-{name}"
    inputs = workflow["inputs"]
    assert inputs["before"]["type"] == inputs["after"]["type"] == "Directory"
    assert inputs["aoi"]["type"] == "string?"
    assert inputs["preset"]["default"].startswith(f"{name}-")
    assert inputs["params"]["type"] == "string[]?"
    assert workflow["outputs"]["results"]["type"] == "Directory"
    assert workflow["steps"]["detect"]["run"] == f"#{tool['id']}"
    assert tool["hints"]["DockerRequirement"]["dockerPull"] == f"eowatch:{eowatch.__version__}"
    assert tool["requirements"]["ResourceRequirement"]["coresMin"] >= 1
    assert tool["baseCommand"] == ["eowatch", "detect"] and "--stac-catalog" in tool["arguments"]


@pytest.fixture(scope="module")
def paris_catalogues(tmp_path_factory: pytest.TempPathFactory, paris: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("paris-stac")
    return tuple(wrap_input(paris / f"imgs_{n}", root / f"date{n}").parent for n in (1, 2))  # type: ignore[return-value]


@pytest.fixture(scope="module")
def s1_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("s1-demo")
    demo = json.loads(_run(BIN / "eowatch", "demo-s1", "--out", root / "pair").stdout)
    return Path(demo["before"]), Path(demo["after"])


def _cwltool(tmp_path: Path, document: str, **inputs: Any) -> Path:
    """Run the workflow of ``document`` without a container; return its output folder."""
    args: list[str | Path] = [BIN / "cwltool", "--no-container", "--outdir", tmp_path / "cwl-out"]
    args += ["--tmpdir-prefix", f"{tmp_path}/tmp/", "--tmp-outdir-prefix", f"{tmp_path}/tmp-out/"]
    if "PYTHONPATH" in os.environ:  # cwltool clears the environment; keep the eowatch under test
        args += ["--preserve-environment", "PYTHONPATH"]
    args.append(f"{CWL / document}#{document.removesuffix('.cwl')}")
    for key, value in inputs.items():
        for v in value if isinstance(value, list) else [value]:
            args += [f"--{key}", v]
    out = json.loads(_run(*args).stdout)
    return Path(out["results"]["path"])


def _direct(tmp_path: Path, before: Path, after: Path, *options: str) -> Path:
    _run(BIN / "eowatch", "detect", "--before", before, "--after", after, "--out", tmp_path / "direct",
         "--quiet", *options)  # fmt: skip
    (folder,) = (tmp_path / "direct").iterdir()
    return folder


def _product_item(results: Path) -> pystac.Item:
    catalog = pystac.Catalog.from_file(str(results / "catalog.json"))
    (item,) = list(catalog.get_items())
    return item


def _read(href: str) -> np.ndarray:
    with rasterio.open(href) as ds:
        return ds.read(1)


def test_s2_package_runs_on_stac_catalogues_like_a_direct_run(
    tmp_path: Path, paris: Path, paris_catalogues: tuple[Path, Path]
) -> None:
    aoi = (paris / "paris.geojson").read_text()
    params = ["alpha=0.02", "min_area_m2=300"]
    before, after = paris_catalogues
    results = _cwltool(
        tmp_path, "eowatch-s2.cwl", before=before, after=after, aoi=aoi, params=params, preset="s2-imad"
    )
    item = _product_item(results)
    assert item.properties["eowatch:preset"] == "s2-imad"
    assert item.properties["eowatch:parameters"]["alpha"] == 0.02
    assert item.assets["change_map"].media_type and "geotiff" in item.assets["change_map"].media_type
    direct = _direct(tmp_path, paris / "imgs_1", paris / "imgs_2", "--aoi", aoi, "--preset", "s2-imad",
                     *[a for p in params for a in ("--param", p)])  # fmt: skip
    packaged = _read(item.assets["change_map"].get_absolute_href() or "")
    expected = _read(str(direct / "change_map.tif"))
    assert packaged.shape == expected.shape and (packaged == expected).all()
    assert 0 < (packaged != 255).mean() and (np.isin(packaged, [0, 255])).mean() < 1  # real changes found


def test_s1_package_runs_on_the_demo_pair_like_a_direct_run(
    tmp_path: Path, s1_demo: tuple[Path, Path]
) -> None:
    before, after = (wrap_input(p, tmp_path / f"stac-{i}").parent for i, p in enumerate(s1_demo))
    results = _cwltool(tmp_path, "eowatch-s1.cwl", before=before, after=after)
    item = _product_item(results)
    assert item.properties["eowatch:preset"] == "s1-logratio"  # the package's default
    assert {"change_map", "statistic"} <= set(item.assets)
    direct = _direct(tmp_path, *s1_demo, "--preset", "s1-logratio")
    packaged = _read(item.assets["change_map"].get_absolute_href() or "")
    assert (packaged == _read(str(direct / "change_map.tif"))).all()
    assert (packaged > 0).sum() > 1000  # the injected changes are there


def test_wrapped_catalogue_reads_back_as_the_folder(tmp_path: Path, paris: Path) -> None:
    catalog = wrap_input(paris / "imgs_2", tmp_path / "cat")
    folder, wrapped = resolve_input(paris / "imgs_2"), resolve_input(catalog.parent)
    assert wrapped.sensor == folder.sensor == "sentinel-2"
    assert wrapped.datetime == folder.datetime
    assert set(wrapped.assets) == set(folder.assets) and len(folder.assets) == 13
    for band, asset in folder.assets.items():
        got = wrapped.assets[band]
        assert (got.scale, got.offset, got.nodata) == (asset.scale, asset.offset, asset.nodata)
        assert Path(got.href).parent == catalog.parent / wrapped.id
    assert resolve_input(catalog).assets.keys() == wrapped.assets.keys()  # catalog.json itself


def test_multiband_sar_raster_is_split_with_its_units(tmp_path: Path, s1_demo: tuple[Path, Path]) -> None:
    catalog = wrap_input(s1_demo[0], tmp_path / "cat")
    acq = resolve_input(catalog)
    assert acq.sensor == "sentinel-1" and set(acq.assets) == {"vv", "vh"}
    assert {a.units for a in acq.assets.values()} == {"db"}
    with rasterio.open(s1_demo[0]) as src, rasterio.open(acq.assets["vh"].href) as vh:
        assert vh.count == 1
        np.testing.assert_array_equal(vh.read(1), src.read(2))


def test_catalogue_with_two_items_is_refused(tmp_path: Path, paris: Path) -> None:
    catalog = wrap_input(paris / "imgs_1", tmp_path / "cat")
    doc = json.loads(catalog.read_text())
    wrap_input(paris / "imgs_2", tmp_path / "other")
    (tmp_path / "other" / "oscd-paris-imgs_2").rename(tmp_path / "cat" / "oscd-paris-imgs_2")
    doc["links"].append({"rel": "item", "href": "./oscd-paris-imgs_2/oscd-paris-imgs_2.json"})
    catalog.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="holds 2 Items"):
        resolve_input(catalog.parent)


def test_output_catalogue_links_each_product_once(tmp_path: Path) -> None:
    for name in ("run-a", "run-b"):
        (tmp_path / name).mkdir()
    write_output_catalog(tmp_path, [tmp_path / "run-a"])
    path = write_output_catalog(tmp_path, [tmp_path / "run-a", tmp_path / "run-b"])
    items = [link["href"] for link in json.loads(path.read_text())["links"] if link["rel"] == "item"]
    assert items == ["./run-a/item.json", "./run-b/item.json"]


def test_stac_wrap_command(tmp_path: Path, paris: Path) -> None:
    proc = _run(BIN / "eowatch", "stac-wrap", paris / "imgs_1", "--out", tmp_path / "c", "--id", "paris-2016")
    assert Path(proc.stdout.strip()) == tmp_path / "c" / "catalog.json"
    item = pystac.Item.from_file(str(tmp_path / "c" / "paris-2016" / "paris-2016.json"))
    assert item.datetime is not None and item.datetime.year == 2016
    assert item.assets["red"].extra_fields["eo:bands"][0]["name"] == "B04"
