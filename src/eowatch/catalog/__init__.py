"""Discovery and pairing: find acquisitions over an AOI and period from a
provider (Earth Search, Planetary Computer, CDSE, any STAC API URL, or a local
folder catalogue), estimate cloud cover over the AOI, and choose the
reference image of each new acquisition.

>>> from eowatch.catalog import SearchQuery, get_provider, discover, propose_pairs, PairingRules
>>> provider = get_provider("earth-search", settings)             # doctest: +SKIP
>>> found = discover(SearchQuery(aoi, "2024-04-01", "2024-04-30"), provider, settings)  # doctest: +SKIP
>>> pairs = propose_pairs(found, PairingRules.for_sensor("s2"), aoi)  # doctest: +SKIP
"""

from __future__ import annotations

from .cloud import CloudCover, annotate_cloud, aoi_cloud_cover
from .pairing import (
    Check,
    Pair,
    PairingRules,
    check_pair,
    choose_reference,
    discover,
    discover_pair,
    propose_pairs,
)
from .providers import (
    DiscoveryProvider,
    Record,
    SearchQuery,
    SearchResults,
    get_provider,
    list_providers,
    record_from_item,
    register_provider,
)

__all__ = [
    "CloudCover",
    "aoi_cloud_cover",
    "annotate_cloud",
    "Check",
    "Pair",
    "PairingRules",
    "check_pair",
    "choose_reference",
    "discover",
    "discover_pair",
    "propose_pairs",
    "DiscoveryProvider",
    "Record",
    "SearchQuery",
    "SearchResults",
    "get_provider",
    "list_providers",
    "record_from_item",
    "register_provider",
]
