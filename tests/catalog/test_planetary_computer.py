"""Planetary Computer asset signing against a local SAS token endpoint."""

from __future__ import annotations

import pytest
from shapely.geometry import box

from eowatch.catalog import SearchQuery, get_provider
from eowatch.catalog.planetary_computer import PCSigner
from eowatch.errors import ProviderError
from eowatch.settings import Settings

LIBYA = box(15.0, 30.2, 15.2, 30.4)


def settings_for(replay: str, scenario: str = "ok") -> Settings:
    return Settings(pc_stac_url=f"{replay}/{scenario}/pc", pc_token_url=f"{replay}/{scenario}/token",
                           http_retries=1, http_backoff_s=0.01, http_timeout_s=5.0)  # fmt: skip


def test_search_signs_blob_hrefs(replay: str) -> None:
    provider = get_provider("planetary-computer", settings_for(replay))
    found = provider.search(SearchQuery(LIBYA, "2024-03-01", "2024-04-30", sensor="s1"))
    assert len(found) == 3
    for record in found:
        for band in ("vv", "vh"):
            href = record.acquisition.assets[band].href
            assert ".blob.core.windows.net/" in href and "&sig=replay%3D" in href and "?st=" in href
        assert "sig=" in record.item["assets"]["vv"]["href"]  # type: ignore[index]
        assert "sig=" not in record.item["assets"]["tilejson"]["href"]  # type: ignore[index]
    signer = provider.item_hook  # type: ignore[attr-defined]
    assert isinstance(signer, PCSigner) and signer.requests == 1  # one token per collection, cached


def test_signing_is_idempotent_and_leaves_other_hosts(replay: str) -> None:
    signer = PCSigner(f"{replay}/ok/token", retries=0)
    blob = "https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/x/B04.tif"
    once = signer.sign_href(blob, "sentinel-2-l2a")
    assert signer.sign_href(once, "sentinel-2-l2a") == once
    assert signer.sign_href("https://example.org/a.tif", "sentinel-2-l2a") == "https://example.org/a.tif"


def test_token_endpoint_failure_names_the_provider(replay: str) -> None:
    signer = PCSigner(f"{replay}/fail-503/token", retries=1, backoff_s=0.01)
    with pytest.raises(ProviderError, match="planetary-computer.*SAS token.*sentinel-1-rtc"):
        signer.token("sentinel-1-rtc")
