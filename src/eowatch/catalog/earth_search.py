"""Element 84's Earth Search (v1): Sentinel-2 L2A COGs and Sentinel-1 GRD on AWS, no sign-in."""

from __future__ import annotations

from ..settings import Settings
from .providers import register_provider
from .stac_api import StacApiProvider

__all__ = ["EARTH_SEARCH_URL", "EARTH_SEARCH_COLLECTIONS", "earth_search"]

EARTH_SEARCH_URL = "https://earth-search.aws.element84.com/v1"
#: Collections searched per sensor when the query names none. ``sentinel-2-c1-l2a``
#: (Collection 1, reprocessed with one baseline) is the one Element 84 maintains.
EARTH_SEARCH_COLLECTIONS = {"sentinel-2": ("sentinel-2-c1-l2a",), "sentinel-1": ("sentinel-1-grd",)}


def earth_search(settings: Settings) -> StacApiProvider:
    """Earth Search, at ``settings.earth_search_url`` when set."""
    url = settings.earth_search_url or EARTH_SEARCH_URL
    return StacApiProvider.from_settings("earth-search", url, settings, EARTH_SEARCH_COLLECTIONS)


register_provider("earth-search", earth_search)
