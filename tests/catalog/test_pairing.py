"""Pairing rules on real items (PC sentinel-1-rtc: orbit 51 descending;
Earth Search sentinel-2-l2a), and discovery of a pair end to end."""

from __future__ import annotations

from typing import Any

import pystac
import pytest
from shapely.geometry import box

from eowatch.catalog import PairingRules, check_pair, choose_reference, discover_pair, propose_pairs
from eowatch.catalog.cloud import CloudCover
from eowatch.catalog.providers import Record, record_from_item
from eowatch.errors import NoValidDataError, PairingError
from eowatch.settings import Settings

from .conftest import shifted

LIBYA = box(15.0, 30.2, 15.2, 30.4)
BRAZIL = box(-39.5, -4.9, -39.0, -4.6)  # inside tile 24MVV only


def rec(item: dict[str, Any]) -> Record:
    return record_from_item(pystac.Item.from_dict(item, migrate=False), "test")


S1_RULES = PairingRules.for_sensor("s1")
S2_RULES = PairingRules.for_sensor("s2")


def test_same_pass_slices_are_not_pairs(pc_s1_items: list[dict[str, Any]]) -> None:
    slices = [rec(i) for i in pc_s1_items]
    assert {(r.relative_orbit, r.orbit_state) for r in slices} == {(51, "descending")}
    check = check_pair(slices[1], slices[0], S1_RULES)
    assert not check.eligible and "days before (minimum" in check.problems[0]
    assert propose_pairs(slices, S1_RULES) == []


def test_sentinel1_pair_same_orbit_pass_and_polarisations(pc_s1_items: list[dict[str, Any]]) -> None:
    after = rec(pc_s1_items[0])
    before = rec(shifted(pc_s1_items[0], -12))
    older = rec(shifted(pc_s1_items[0], -24))
    other_orbit = rec(shifted(pc_s1_items[0], -6, "-orbit124", **{"sat:relative_orbit": 124}))
    ascending = rec(shifted(pc_s1_items[0], -3, "-asc", **{"sat:orbit_state": "ascending"}))
    pair = choose_reference(after, [older, before, other_orbit, ascending], S1_RULES, LIBYA)
    assert pair.before.id == before.id and pair.gap_days == pytest.approx(12)
    assert pair.fields["relative_orbit"] == 51 and pair.fields["orbit_state"] == "descending"
    assert pair.fields["polarisations"] == ["VH", "VV"]
    assert "same relative orbit 51 and descending pass" in pair.reason and "VH+VV" in pair.reason
    assert pair.fields["rejected"] == {
        ascending.id: [f"different pass directions ({ascending.id}: ascending, {after.id}: descending)"],
        other_orbit.id: [f"different relative orbits ({other_orbit.id}: 124, {after.id}: 51)"]}  # fmt: skip
    hh_only = rec(shifted(pc_s1_items[0], -12, "-hh", **{"sar:polarizations": ["HH"]}))
    assert "no common polarisation" in " ".join(check_pair(hh_only, after, S1_RULES).problems)
    vh_required = PairingRules.for_sensor("s1", required_polarisations=("HH",))
    problems = " ".join(check_pair(before, after, vh_required).problems)
    assert "['HH'] asked for are not in every input" in problems
    with pytest.raises(PairingError, match="36"):
        choose_reference(after, [rec(shifted(pc_s1_items[0], -48))], S1_RULES)
    assert [(p.before.id, p.after.id) for p in propose_pairs([after, before, older], S1_RULES, LIBYA)] == [
        (older.id, before.id), (before.id, after.id)]  # fmt: skip


def test_sentinel2_same_tile_and_clear_fraction(es_s2_items: list[dict[str, Any]]) -> None:
    item = next(i for i in es_s2_items if i["id"] == "S2B_24MVV_20250731_0_L2A")
    after, before = rec(item), rec(shifted(item, -5))
    pair = choose_reference(after, [before], S2_RULES, BRAZIL)
    assert pair.fields["mgrs_tile"] == "24MVV" and pair.fields["before_cloud_source"] == "scene-metadata"
    assert "same MGRS tile 24MVV" in pair.reason
    before.cloud = CloudCover(0.8, 0.2, "scl")
    check = check_pair(before, after, S2_RULES, BRAZIL)
    assert not check.eligible and check.problems == ["before: only 20% of the AOI clear (scl; minimum 50%)"]
    neighbour = rec(shifted(next(i for i in es_s2_items if i["id"] == "S2B_24MWV_20250731_0_L2A"), -5))
    problems = check_pair(neighbour, after, S2_RULES, box(-39.2, -4.9, -38.8, -4.6)).problems
    assert any("tiles differ (24MWV vs 24MVV)" in p for p in problems)


def test_discover_pair_end_to_end(replay: str) -> None:
    settings = Settings(
        pc_stac_url=f"{replay}/ok/pc",
        pc_token_url=f"{replay}/ok/token",
        http_retries=0,
        max_aoi_area_km2=20_000,
    )
    pair = discover_pair(LIBYA.wkt, "2024-03-01", "2024-04-30", "s1", "planetary-computer", settings)
    assert pair.after.id.endswith("067DF2_rtc") and pair.before.id.endswith("-shift-12d")
    assert "sig=" in pair.before.acquisition.assets["vv"].href
    assert pair.as_dict()["relative_orbit"] == 51
    with pytest.raises(NoValidDataError, match="planetary-computer.*no sentinel-1"):
        discover_pair(LIBYA.wkt, "2023-01-01", "2023-01-31", "s1", "pc", settings)
    with pytest.raises(PairingError, match="none pairs"):
        discover_pair(LIBYA.wkt, "2024-04-10", "2024-04-30", "s1", "pc", settings)
