"""Sentinel-1 presets and their input rules: units, pairing rules with real STAC
items (``eowatch.inputs``), detection on simulated speckle through the block engine,
partial and empty overlaps, ACD product."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pystac
import pytest
import rasterio
from affine import Affine

from eowatch.detect import get_preset, list_presets, parse_params
from eowatch.engine import detect_arrays
from eowatch.errors import InputError, PairingError, ParameterError
from eowatch.inputs import rules_for
from eowatch.io.sar_units import UNCALIBRATED_NOTE, detect_units
from eowatch.io.sources import acquisition_from_item, resolve_input
from eowatch.model import Grid, Scene
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.plan import plan_pair
from eowatch.settings import Settings

S1 = rules_for("sentinel-1")


ENL = 4.4
GRID = Grid(rasterio.crs.CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 5400000), 120, 120)


def _pc_items(shared: Path) -> list[pystac.Item]:
    data = json.loads((shared / "stac/planetary_computer/sentinel-1-rtc_items.json").read_text())
    return [pystac.Item.from_dict(d) for d in data]


def _es_grd_items(shared: Path) -> list[pystac.Item]:
    data = json.loads((shared / "stac/earth_search_v1/sentinel-1-grd_items.json").read_text())
    return [pystac.Item.from_dict(d) for d in data["features"]]


def _scene(data: np.ndarray, bands: tuple[str, ...] = ("vv", "vh"), valid: np.ndarray | None = None) -> Scene:
    v = np.ones(data.shape[1:], dtype=bool) if valid is None else valid
    return Scene(data=data.astype(np.float32), valid=v, bands=bands, grid=GRID, id="sim")


def _pair(seed: int = 1, change_db: float = -10.0) -> tuple[Scene, Scene, tuple[slice, slice]]:
    """Dual-pol Gamma speckle (ENL 4.4) over a constant field; a 30x30 block
    changes by ``change_db`` in both bands."""
    rng = np.random.default_rng(seed)
    mean = np.array([0.1, 0.02])[:, None, None] * np.ones((2, 120, 120))
    block = (slice(40, 70), slice(50, 80))
    changed = mean.copy()
    changed[:, block[0], block[1]] *= 10 ** (change_db / 10)
    b = mean * rng.gamma(ENL, 1 / ENL, mean.shape)
    a = changed * rng.gamma(ENL, 1 / ENL, mean.shape)
    return _scene(b), _scene(a), block


def test_presets_are_registered() -> None:
    names = {p.name for p in list_presets("sentinel-1")}
    assert {"s1-logratio", "s1-omnibus", "s1-flood", "s1-bright-targets"} <= names
    for p in list_presets("sentinel-1"):
        described = p.describe()
        assert "units" in described["parameters"] and described["summary"]


def test_even_window_is_refused() -> None:
    with pytest.raises(ParameterError, match="window"):
        parse_params(get_preset("s1-logratio"), {"window": 6})


# -- units ---------------------------------------------------------------------------------


def test_units_detected_from_values_and_tags(raster_factory) -> None:
    rng = np.random.default_rng(0)
    linear = rng.gamma(ENL, 0.1 / ENL, (2, 40, 40)).astype(np.float32)
    db = (10 * np.log10(linear)).astype(np.float32)
    lin_acq = resolve_input(raster_factory("lin.tif", linear, descriptions=["VV", "VH"]))
    db_acq = resolve_input(raster_factory("db.tif", db, descriptions=["VV", "VH"]))
    assert detect_units(lin_acq, "vv") == ("linear", detect_units(lin_acq, "vv")[1])
    assert detect_units(db_acq, "vh")[0] == "db"
    preset = get_preset("s1-logratio")
    prepared = S1.prepare(db_acq, parse_params(preset))
    assert prepared.assets["vv"].units == "db"
    assert prepared.properties["eowatch:units"]["vv"]["source"].startswith("values")
    path = raster_factory("tagged.tif", db, descriptions=["VV", "VH"])
    with rasterio.open(path, "r+") as ds:
        ds.update_tags(units="dB")
    units, source = detect_units(resolve_input(path), "vv")
    assert (units, source) == ("db", "raster tag 'units'")


def test_declared_units_contradicted_by_values(raster_factory) -> None:
    rng = np.random.default_rng(0)
    linear = rng.gamma(ENL, 0.1 / ENL, (2, 40, 40)).astype(np.float32)
    db = (10 * np.log10(linear)).astype(np.float32)
    preset = get_preset("s1-logratio")
    db_acq = resolve_input(raster_factory("db.tif", db, descriptions=["VV", "VH"]))
    with pytest.raises(InputError, match=r"declared 'linear'.*look like dB.*units='db'"):
        S1.prepare(db_acq, parse_params(preset, {"units": "linear"}))
    lin_acq = resolve_input(raster_factory("lin.tif", linear, descriptions=["VV", "VH"]))
    with pytest.raises(InputError, match=r"declared 'db'.*linear power.*units='linear'"):
        S1.prepare(lin_acq, parse_params(preset, {"units": "db"}))
    ok = S1.prepare(lin_acq, parse_params(preset, {"units": "linear"}))
    assert ok.properties["eowatch:units"]["vv"] == {"units": "linear", "source": "declared"}


# -- STAC items: units and pairing -------------------------------------------------------------


def test_planetary_computer_rtc_items_pair(shared_data) -> None:
    preset = get_preset("s1-omnibus")
    params = parse_params(preset)
    items = _pc_items(shared_data)
    assert {i.properties["sat:relative_orbit"] for i in items} == {51}
    b, a = (S1.prepare(acquisition_from_item(i), params) for i in items[:2])
    assert b.assets["vv"].units == "linear" and a.assets["vh"].units == "linear"
    props = S1.check([b, a], params)
    assert preset.bands(params, S1.available_bands([b, a])) == ("vv", "vh")
    assert props["eowatch:calibration"] != UNCALIBRATED_NOTE
    assert props["eowatch:pairing"]["relative_orbit"] == [51, 51]


def test_mismatched_orbits_and_polarisations(shared_data) -> None:
    preset = get_preset("s1-logratio")
    params = parse_params(preset)
    first, second = _pc_items(shared_data)[:2]
    second.properties["sat:relative_orbit"] = 124
    second.properties["sat:orbit_state"] = (
        "ascending" if first.properties["sat:orbit_state"] == "descending" else "descending"
    )
    second.assets["hh"] = second.assets.pop("vv")
    second.assets.pop("vh")
    b, a = (S1.prepare(acquisition_from_item(i), params) for i in (first, second))
    with pytest.raises(PairingError) as err:
        S1.check([b, a], params)
    text = str(err.value)
    assert "relative orbit" in text and "pass direction" in text and "no common polarisation" in text
    # The override waives orbit and pass, never polarisations.
    with pytest.raises(PairingError, match="no common polarisation"):
        S1.check([b, a], parse_params(preset, {"allow_mismatched_orbits": True}))


def test_other_relative_orbit_needs_override(shared_data) -> None:
    preset = get_preset("s1-logratio")
    params = parse_params(preset)
    first, second = _pc_items(shared_data)[:2]
    second.properties["sat:relative_orbit"] = 124
    b = S1.prepare(acquisition_from_item(first), params)
    a = S1.prepare(acquisition_from_item(second), params)
    with pytest.raises(PairingError, match=r"relative orbit.*allow_mismatched_orbits=true"):
        S1.check([b, a], params)
    allowed = parse_params(preset, {"allow_mismatched_orbits": True})
    assert S1.check([b, a], allowed)["eowatch:pairing"]["mismatch_allowed"]


def test_earth_search_grd_items_are_grd_in_radar_geometry(shared_data, tmp_path) -> None:
    """Earth Search sentinel-1-grd Items are GRD in radar geometry (not georeferenced
    backscatter): paired on their STAC properties, calibrated and geocoded by eowatch; their
    assets are in a requester-pays bucket, which is said before anything is read."""
    preset = get_preset("s1-bright-targets")
    params = parse_params(preset)
    b, a = (S1.prepare(acquisition_from_item(i), params) for i in _es_grd_items(shared_data)[:2])
    assert b.assets["hh"].units == "grd" and b.properties["eowatch:radar_geometry"]
    assert preset.bands(params, S1.available_bands([b, a])) == ("hh",)
    assert S1.check([b, a], params)["eowatch:pairing"]["common_polarisations"] == ["HH"]
    settings = Settings(output_dir=tmp_path / "out")
    with pytest.raises(
        InputError, match=r"requester-pays bucket s3://sentinel-s1-l1c.*AWS_REQUEST_PAYER=requester"
    ):
        plan_pair(DetectRequest(b, a, "s1-bright-targets"), settings)
    assert not (tmp_path / "out" / "ard").exists()


def test_grd_does_not_pair_with_backscatter_geocoded_elsewhere(shared_data) -> None:
    preset = get_preset("s1-logratio")
    params = parse_params(preset, {"allow_mismatched_orbits": True})
    es = acquisition_from_item(_es_grd_items(shared_data)[0])
    pc = acquisition_from_item(_pc_items(shared_data)[0])
    with pytest.raises(PairingError, match="GRD in radar geometry cannot be compared .* `eowatch ard`"):
        S1.check([S1.prepare(pc, params), S1.prepare(es, params)], params)


def test_uncalibrated_and_calibrated_do_not_pair(shared_data) -> None:
    preset = get_preset("s1-logratio")
    params = parse_params(preset, {"allow_mismatched_orbits": True})
    pc, other = (acquisition_from_item(i) for i in _pc_items(shared_data)[:2])
    dn = dataclasses.replace(
        other, assets={k: dataclasses.replace(v, units="dn") for k, v in other.assets.items()}
    )
    with pytest.raises(PairingError, match="uncalibrated GRD amplitude DN with calibrated"):
        S1.check([S1.prepare(pc, params), S1.prepare(dn, params)], params)


def test_local_files_without_metadata_are_recorded(raster_factory, tmp_path) -> None:
    rng = np.random.default_rng(2)
    db = (10 * np.log10(rng.gamma(ENL, 0.1 / ENL, (2, 40, 40)))).astype(np.float32)
    before = raster_factory("s1_20240101.tif", db, descriptions=["VV", "VH"])
    changed = db.copy()
    changed[:, 10:20, 10:20] -= 6.0  # identical dates are refused; a darker block
    after = raster_factory("s1_20240113.tif", changed, descriptions=["VV", "VH"])
    out = detect_pair(DetectRequest(before, after, "s1-logratio"), Settings(), out_dir=tmp_path / "out")
    pairing = out.item.properties["eowatch:pairing"]
    assert any("relative orbit" in u for u in pairing["unchecked"])
    assert out.item.properties["eowatch:units"]["before"]["vv"]["units"] == "db"
    assert "acd_composite" in out.item.assets
    with rasterio.open(out.folder / "acd_composite.tif") as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint8"
        rgb = ds.read()
    assert np.array_equal(rgb[1], rgb[2])


# -- detection on simulated speckle -------------------------------------------------------------


@pytest.mark.parametrize("name", ["s1-logratio", "s1-omnibus", "s1-flood"])
def test_decrease_block_is_found(name: str) -> None:
    before, after, block = _pair()
    preset = get_preset(name)
    params = parse_params(preset, {"min_area_m2": 0})
    result = detect_arrays(preset, params, [before, after])
    decrease = {c.name: c.value for c in result.class_table}["decrease"]
    inside = result.classes[block] == decrease
    outside = np.ones(GRID.shape, dtype=bool)
    outside[block[0].start - 8 : block[0].stop + 8, block[1].start - 8 : block[1].stop + 8] = False
    assert inside.mean() > 0.8
    assert result.changed[outside].mean() < 0.02


def test_logratio_increase_and_threshold_modes() -> None:
    before, after, block = _pair(change_db=10.0)
    preset = get_preset("s1-logratio")
    for mode in ("split", "absolute"):
        for method in ("kittler-illingworth", "otsu"):
            params = parse_params(preset, {"threshold_mode": mode, "threshold": method})
            result = detect_arrays(preset, params, [before, after])
            assert (result.classes[block] == 1).mean() > 0.8, (mode, method)
            assert result.metadata["increase_threshold_db"] >= 3.0


def test_omnibus_statistic_is_a_p_value() -> None:
    before, after, block = _pair(change_db=-10.0)
    preset = get_preset("s1-omnibus")
    result = detect_arrays(preset, parse_params(preset, {"enl": ENL}), [before, after])
    assert result.statistic_name == "omnibus_p_value"
    assert np.nanmax(result.statistic) <= 1.0 and np.nanmin(result.statistic) >= 0.0
    assert np.nanmedian(result.statistic[block]) < 0.01
    neg_params = parse_params(preset, {"enl": ENL, "statistic": "-log10p"})
    neg = detect_arrays(preset, neg_params, [before, after])
    assert np.nanmedian(neg.statistic[block]) > 2.0
    single = detect_arrays(preset, parse_params(preset, {"polarisations": "vv"}), [before, after])
    assert single.metadata["polarisations"] == ["vv"]


def test_bright_target_rule() -> None:
    rng = np.random.default_rng(5)
    base = np.full((1, 120, 120), 10 ** (-15 / 10)) * rng.gamma(20, 1 / 20, (1, 120, 120))
    after = base * rng.gamma(20, 1 / 20, base.shape)
    after[:, 10:20, 10:20] *= 10**1.5  # +15 dB: -15 -> 0 dB, a new bright target
    after[:, 60:70, 60:70] *= 10**0.8  # +8 dB: below the 10 dB rule
    preset = get_preset("s1-bright-targets")
    result = detect_arrays(preset, parse_params(preset), [_scene(base, ("vv",)), _scene(after, ("vv",))])
    assert (result.classes[10:20, 10:20] == 1).mean() > 0.8
    assert not result.changed[40:].any()


@pytest.mark.parametrize("name", ["s1-logratio", "s1-omnibus", "s1-flood", "s1-bright-targets"])
def test_partially_valid_data(name: str) -> None:
    before, after, block = _pair()
    before.valid[:, :30] = False
    before.data[:, :, :30] = np.nan
    after.valid[:10] = False
    preset = get_preset(name)
    result = detect_arrays(preset, parse_params(preset), [before, after])
    assert (result.classes[:, :30] == 255).all() and (result.classes[:10] == 255).all()
    assert result.valid[20:, 40:].all()


def test_all_nodata_overlap_gives_no_valid_data(raster_factory, tmp_path) -> None:
    rng = np.random.default_rng(3)
    db = (10 * np.log10(rng.gamma(ENL, 0.1 / ENL, (2, 40, 40)))).astype(np.float32)
    left, right = db.copy(), db.copy()
    left[:, :, 20:] = np.nan
    right[:, :, :20] = np.nan
    before = raster_factory("a_20240101.tif", left, descriptions=["VV", "VH"], nodata=float("nan"))
    after = raster_factory("b_20240113.tif", right, descriptions=["VV", "VH"], nodata=float("nan"))
    out = detect_pair(DetectRequest(before, after, "s1-flood"), Settings(), out_dir=tmp_path)
    assert out.status == "no-valid-data"
    assert (out.result.classes == 255).all()


# -- s1-flood decisions: thresholds only where the data support them ---------------------------


def _flood(before: Scene, after: Scene, **params: object):
    preset = get_preset("s1-flood")
    return detect_arrays(preset, parse_params(preset, {"min_area_m2": 0, **params}), [before, after])


def _respeckled_pair(seed: int = 11) -> tuple[Scene, Scene]:
    """One unchanged field (-10 dB VV, -17 dB VH) with independent speckle on each date."""
    rng = np.random.default_rng(seed)
    mean = np.array([0.1, 0.02])[:, None, None] * np.ones((2, 120, 120))
    return (
        _scene(mean * rng.gamma(ENL, 1 / ENL, mean.shape)),
        _scene(mean * rng.gamma(ENL, 1 / ENL, mean.shape)),
    )


def _uncalibrated(scene: Scene, offset_db: float = 0.0) -> Scene:
    """``scene`` declared uncalibrated (as the OMBRIA 8-bit exports are), its dB shifted."""
    return Scene(
        data=scene.data * np.float32(10 ** (offset_db / 10)),
        valid=scene.valid,
        bands=scene.bands,
        grid=scene.grid,
        id=scene.id,
        properties={"eowatch:calibration": "uncalibrated test export"},
    )


def test_flood_unchanged_pair_gets_no_split_and_no_flood() -> None:
    before, after = _respeckled_pair()
    result = _flood(before, after)
    decisions = result.metadata["decisions"]
    assert decisions["water"]["source"] == "fixed"  # calibrated: the physical -18 dB level
    assert decisions["water"]["test"]["supported"] is False
    assert result.metadata["water_threshold_db"] == -18.0
    assert not result.changed.any()
    # The always-splitting rule of the past flags part of the same unchanged pair.
    forced = _flood(before, after, threshold="otsu")
    assert forced.metadata["decisions"]["water"]["source"] == "forced"
    assert forced.metadata["decrease_threshold_db"] <= -1.0


def test_flood_uncalibrated_unchanged_pair_maps_nothing() -> None:
    before, after = _respeckled_pair(12)
    result = _flood(_uncalibrated(before), _uncalibrated(after, 4.0))
    assert result.metadata["decisions"]["water"]["source"] == "none"
    assert result.metadata["water_threshold_db"] is None and not result.changed.any()
    assert result.metadata["calibrated_input"] is False


def test_flood_block_is_a_supported_split_with_the_decision_recorded() -> None:
    before, after, block = _pair(change_db=-10.0)
    result = _flood(before, after)
    water = result.metadata["decisions"]["water"]
    assert water["source"] == "split" and water["test"]["supported"]
    assert water["test"]["ashman_d"] >= 2.0 and water["test"]["bimodal_tiles"] >= 1
    assert -20.0 < result.metadata["water_threshold_db"] < -10.0
    assert result.metadata["decrease_threshold_db"] == -3.0
    assert result.metadata["normalisation"]["applied"] is False  # calibrated input
    assert (result.classes[block] == 2).mean() > 0.8


def test_flood_normalises_uncalibrated_dates_on_stable_pixels() -> None:
    # The after date is exported 6 dB brighter overall: every raw log-ratio is positive,
    # the flooded block's too (-10 + 6 = -4 dB... relative to +6 dB elsewhere).
    before, after, block = _pair(change_db=-10.0)
    result = _flood(_uncalibrated(before), _uncalibrated(after, 6.0))
    norm = result.metadata["normalisation"]
    assert norm["applied"] and norm["offset_db"] == pytest.approx(6.0, abs=0.3)
    assert norm["stable_fraction"] > 0.8
    assert result.metadata["decrease_threshold_db"] < 0
    assert (result.classes[block] == 2).mean() > 0.8
    outside = np.ones(GRID.shape, dtype=bool)
    outside[block[0].start - 8 : block[0].stop + 8, block[1].start - 8 : block[1].stop + 8] = False
    assert not result.changed[outside].any()
    # Without it, a -3 dB decrease of raw log-ratios (+6 dB stable, -4 dB flood) finds the
    # block as well, but a brightened scene would read as decreased only with it off.
    off = _flood(_uncalibrated(before), _uncalibrated(after, 6.0), normalise="off")
    assert off.metadata["normalisation"]["applied"] is False


def test_flood_brightened_block_is_never_a_decrease() -> None:
    # A dark block that got *brighter* (water receded) must not be flood, whatever the stretch.
    before, after, block = _pair(change_db=-10.0)
    result = _flood(_uncalibrated(after), _uncalibrated(before, 3.0))
    assert not (result.classes[block] == 2).any()


def test_grd_dn_input_counts_as_uncalibrated() -> None:
    from eowatch.detect.s1.flood_rules import is_uncalibrated

    before, after = _respeckled_pair(13)
    dn = {"vv": {"units": "dn", "source": "metadata"}, "vh": {"units": "dn", "source": "metadata"}}
    grd = Scene(before.data, before.valid, before.bands, before.grid, "grd", properties={"eowatch:units": dn})
    assert is_uncalibrated([grd, after]) and not is_uncalibrated([before, after])
    result = _flood(grd, after)
    assert result.metadata["calibrated_input"] is False
    assert result.metadata["normalisation"]["applied"] is True
    assert result.metadata["water_threshold_db"] is None  # no absolute level without calibration
