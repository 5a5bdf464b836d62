"""The pystac-client provider against recorded real STAC API responses served
on loopback: paging, filters, retries, errors and malformed items."""

from __future__ import annotations

import time

import pytest
from shapely.geometry import box

from eowatch.catalog import SearchQuery, get_provider
from eowatch.catalog.earth_search import EARTH_SEARCH_COLLECTIONS
from eowatch.catalog.stac_api import StacApiProvider
from eowatch.errors import ProviderError
from eowatch.settings import Settings

BRAZIL = box(-39.5, -4.9, -38.5, -4.6)  # over the real tiles 24MVV and 24MWV
LIBYA = box(15.0, 30.2, 15.2, 30.4)  # inside the first PC sentinel-1-rtc slice
S1 = {"sentinel-1": ("sentinel-1-rtc",), "sentinel-2": ("sentinel-2-l2a",)}


def fast(name: str, url: str, collections=None, **kw) -> StacApiProvider:  # type: ignore[no-untyped-def]
    kw.setdefault("retries", 2)
    kw.setdefault("backoff_s", 0.01)
    kw.setdefault("timeout_s", 5.0)
    return StacApiProvider(name, url, collections or EARTH_SEARCH_COLLECTIONS, **kw)


def test_recorded_earth_search_pages_follow_next_token(replay: str) -> None:
    provider = fast("earth-search", f"{replay}/ok/es-cql2")
    found = provider.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31", limit=2))
    # one record on each recorded page; page 2 was reached through the recorded `next` token
    assert [r.id for r in found] == ["S2B_T24MVV_20250731T130245_L2A", "S2B_T24MWV_20250731T130245_L2A"]
    assert found.pages == 2 and found.skipped == 0
    assert {r.collection for r in found} == {"sentinel-2-c1-l2a"}
    assert [r.mgrs_tile for r in found] == ["24MVV", "24MWV"]
    assert "SCL" in found[0].acquisition.assets and found[0].acquisition.assets["B04"].href.startswith(
        "https://"
    )


def test_recorded_point_search_keeps_only_the_asked_collection(replay: str) -> None:
    provider = fast("earth-search", f"{replay}/ok/es-point")
    aoi = box(-105.11, 40.16, -105.09, 40.18)
    found = provider.search(SearchQuery(aoi, "2023-10-08", "2023-10-08", collections=("sentinel-2-l2a",)))
    assert [r.id for r in found] == ["S2A_13TDE_20231008_0_L2A"]  # the Landsat item is left out
    assert found[0].scene_cloud_cover == pytest.approx(0.000299)


def test_search_by_aoi_and_period_pages_through_items(replay: str) -> None:
    provider = fast("es", f"{replay}/ok/es", {"sentinel-2": ("sentinel-2-l2a",)}, page_size=2)
    found = provider.search(SearchQuery(BRAZIL, "2025-07-20", "2025-08-05"))
    assert found.pages >= 2
    assert sorted({r.mgrs_tile for r in found}) == ["24MVV", "24MWV"]
    assert len(found) == 4  # two tiles, two dates (the real one and a copy 5 days earlier)
    assert [r.datetime for r in found] == sorted((r.datetime for r in found), reverse=True)
    only_july_31 = provider.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))
    assert len(only_july_31) == 2
    assert len(provider.search(SearchQuery(BRAZIL, "2025-07-20", "2025-08-05", limit=3))) == 3


def test_sentinel1_filters_on_real_planetary_computer_items(replay: str) -> None:
    provider = fast("pc", f"{replay}/ok/pc", S1, page_size=2)
    q = dict(aoi=LIBYA, start="2024-03-01", end="2024-04-30", sensor="s1")
    found = provider.search(
        SearchQuery(**q, relative_orbit=51, orbit_state="descending", polarisations=("VV",))
    )
    assert len(found) == 3  # the real slice, its copies 12 and 24 days earlier
    assert all(r.relative_orbit == 51 and r.orbit_state == "descending" for r in found)
    assert all(r.polarisations == ("VH", "VV") for r in found)
    assert set(found[0].acquisition.assets) == {"vv", "vh"}
    assert provider.search(SearchQuery(**q, relative_orbit=124)) == []
    assert provider.search(SearchQuery(**q, orbit_state="ascending")) == []
    assert provider.search(SearchQuery(**q, polarisations=("HH",))) == []


def test_transient_503_is_retried(replay: str) -> None:
    provider = fast("earth-search", f"{replay}/flaky-2-503-a/es-cql2", retries=3)
    found = provider.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31", limit=1))
    assert [r.id for r in found] == ["S2B_T24MVV_20250731T130245_L2A"]


def test_persistent_500_names_provider_url_and_cause(replay: str) -> None:
    url = f"{replay}/fail-500/es-cql2"
    with pytest.raises(ProviderError) as err:
        fast("earth-search", url).search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))
    message = str(err.value)
    assert "earth-search" in message and url in message and "500" in message and "retries" in message


def test_timeout_gives_provider_error(replay: str) -> None:
    provider = fast("slowpoke", f"{replay}/slow-3/es-cql2", timeout_s=0.3, retries=1)
    t0 = time.perf_counter()
    with pytest.raises(ProviderError, match="slowpoke.*(timed out|Read timed out|timeout)"):
        provider.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))
    assert time.perf_counter() - t0 < 3


def test_unreachable_provider() -> None:
    provider = fast("nowhere", "http://127.0.0.1:9/stac", retries=1)
    with pytest.raises(ProviderError, match="nowhere.*127.0.0.1:9"):
        provider.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))


def test_malformed_items_are_skipped_and_counted(replay: str) -> None:
    provider = fast("es", f"{replay}/ok/broken", {"sentinel-2": ("sentinel-2-l2a",)})
    found = provider.search(SearchQuery(box(-41, -61, -38, -4), "2025-07-01", "2025-08-01"))
    assert found.skipped == 4
    assert any("broken-no-geometry" in n for n in found.notes)
    # the third good item (tile 20EPT, Antarctic peninsula) lies outside the AOI
    assert sorted(r.id for r in found) == ["S2B_24MUV_20250731_0_L2A", "S2B_24MVV_20250731_0_L2A"]


def test_non_json_answer_is_a_provider_error(replay: str) -> None:
    with pytest.raises(ProviderError, match="not JSON|failed"):
        fast("es", f"{replay}/garbage/es").search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))


def test_provider_from_url_and_settings(replay: str) -> None:
    settings = Settings(http_retries=0, http_backoff_s=0.01, http_timeout_s=5.0, stac_page_size=3,
                               earth_search_url=f"{replay}/ok/es-cql2")  # fmt: skip
    es = get_provider("earth-search", settings)
    assert isinstance(es, StacApiProvider) and es.url.endswith("/ok/es-cql2") and es.page_size == 3
    assert es.retries == 0
    generic = get_provider(f"{replay}/ok/es", settings)
    assert generic.name == f"{replay}/ok/es"
    found = generic.search(SearchQuery(BRAZIL, "2025-07-31", "2025-07-31"))
    assert {r.collection for r in found} == {"sentinel-2-l2a"}
