"""Discovery providers behind one Protocol, chosen by name from a registry.

A provider turns a ``SearchQuery`` (AOI, period, sensor, filters) into a list
of ``Record``: one acquisition each, with its footprint, collection and the
STAC Item it came from. Remote STAC APIs (Earth Search, Planetary Computer,
CDSE, any URL) and the local folder catalogue all implement the same
``DiscoveryProvider`` Protocol, so the pipeline never knows which one ran.
New providers are added with ``register_provider(name, factory)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from shapely.geometry import box, shape
from shapely.geometry.base import BaseGeometry

from ..errors import InputError
from ..io.sources import Acquisition, acquisition_from_item
from ..settings import Settings

if TYPE_CHECKING:
    from .cloud import CloudCover

__all__ = [
    "SENSORS",
    "SearchQuery",
    "Record",
    "SearchResults",
    "DiscoveryProvider",
    "ProviderFactory",
    "register_provider",
    "get_provider",
    "list_providers",
    "record_from_item",
    "rejection",
    "parse_time",
    "normalise_sensor",
    "DEFAULT_PROVIDER",
]

SENSORS = ("sentinel-1", "sentinel-2")
DEFAULT_PROVIDER = "earth-search"
_SENSOR_ALIASES = {
    "s1": "sentinel-1", "sentinel-1": "sentinel-1", "sentinel1": "sentinel-1",
    "s2": "sentinel-2", "sentinel-2": "sentinel-2", "sentinel2": "sentinel-2",
}  # fmt: skip
_ORBIT_STATES = ("ascending", "descending")
_MGRS_IN_TEXT = re.compile(r"(?:^|[_\-.])T?(\d{2}[C-X][A-Z]{2})(?:[_\-.]|$)")


def normalise_sensor(sensor: str) -> str:
    """'s1' / 'Sentinel-1' -> 'sentinel-1'; anything else is refused."""
    key = str(sensor).strip().lower()
    if key not in _SENSOR_ALIASES:
        raise InputError(f"unknown sensor {sensor!r}; use 's1' (Sentinel-1) or 's2' (Sentinel-2)")
    return _SENSOR_ALIASES[key]


def parse_time(value: str | date | datetime, *, end: bool = False) -> datetime:
    """A timezone-aware UTC datetime from ISO text, a date or a datetime.

    A bare date means its whole day: its start, or its last microsecond when
    ``end`` is true (so ``--end 2024-04-30`` includes that day)."""
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time.max if end else time.min)
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                when = datetime.combine(date.fromisoformat(text), time.max if end else time.min)
            else:
                when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"cannot read the date {value!r}; give ISO 8601, e.g. 2024-04-19 or 2024-04-19T10:30:00Z"
            ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class SearchQuery:
    """What to look for. ``aoi`` is a shapely geometry in EPSG:4326.

    ``max_cloud_cover`` is a percentage *over the AOI* (applied after the AOI
    cloud cover is computed, see ``eowatch.catalog.discover``), not the scene's.
    ``collections`` overrides the provider's default collections for ``sensor``.
    ``limit`` caps the number of records returned.
    """

    aoi: BaseGeometry
    start: datetime
    end: datetime
    sensor: str = "sentinel-2"
    collections: tuple[str, ...] = ()
    max_cloud_cover: float | None = None
    polarisations: tuple[str, ...] = ()
    relative_orbit: int | None = None
    orbit_state: str | None = None
    limit: int = 100

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "sensor", normalise_sensor(self.sensor))
        set_(self, "start", parse_time(self.start))
        set_(self, "end", parse_time(self.end, end=True))
        if self.end < self.start:
            raise InputError(
                f"the period ends ({self.end:%Y-%m-%d}) before it starts ({self.start:%Y-%m-%d})"
            )
        if self.aoi is None or self.aoi.is_empty:
            raise InputError("the search needs a non-empty AOI (EPSG:4326 geometry)")
        set_(self, "collections", tuple(self.collections or ()))
        set_(
            self, "polarisations", tuple(sorted({p.strip().upper() for p in self.polarisations if p.strip()}))
        )
        if self.orbit_state is not None:
            state = self.orbit_state.strip().lower()
            if state not in _ORBIT_STATES:
                raise InputError(f"orbit state {self.orbit_state!r} is not 'ascending' or 'descending'")
            set_(self, "orbit_state", state)
        if self.max_cloud_cover is not None and not 0 <= self.max_cloud_cover <= 100:
            raise InputError(f"max cloud cover is a percentage in [0, 100]; got {self.max_cloud_cover}")
        if self.limit < 1:
            raise InputError(f"limit must be at least 1; got {self.limit}")

    @property
    def datetime_range(self) -> str:
        """The STAC API ``datetime`` parameter (RFC 3339 interval)."""
        fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
        return f"{self.start.strftime(fmt)}/{self.end.strftime(fmt)}"


@dataclass
class Record:
    """One acquisition found by a provider: what the pipeline reads
    (``acquisition``), where it lies (``footprint``, EPSG:4326), where it came
    from (``provider``, ``collection``, the STAC ``item`` with signed hrefs), and,
    once computed, its cloud cover over the AOI (``cloud``)."""

    acquisition: Acquisition
    footprint: BaseGeometry
    collection: str
    provider: str
    item: dict[str, Any] | None = None
    cloud: CloudCover | None = None

    @property
    def id(self) -> str:
        return self.acquisition.id

    @property
    def datetime(self) -> datetime:
        assert self.acquisition.datetime is not None  # records always have one
        return self.acquisition.datetime

    @property
    def sensor(self) -> str:
        return self.acquisition.sensor

    @property
    def properties(self) -> dict[str, Any]:
        return self.acquisition.properties

    @property
    def relative_orbit(self) -> int | None:
        value = self.properties.get("sat:relative_orbit")
        try:
            return int(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def orbit_state(self) -> str | None:
        value = self.properties.get("sat:orbit_state")
        return str(value).lower() if value else None

    @property
    def polarisations(self) -> tuple[str, ...]:
        pols = self.properties.get("sar:polarizations") or []
        if not pols and self.sensor == "sentinel-1":
            pols = [k for k in self.acquisition.assets if k in ("vv", "vh", "hh", "hv")]
        return tuple(sorted({str(p).upper() for p in pols}))

    @property
    def mgrs_tile(self) -> str | None:
        """The Sentinel-2 MGRS tile (e.g. '31UDQ') from whichever property the provider uses."""
        p = self.properties
        if p.get("s2:mgrs_tile"):
            return str(p["s2:mgrs_tile"]).upper().removeprefix("T")
        code = str(p.get("grid:code") or "")
        if code.upper().startswith("MGRS-"):
            return code[5:].upper()
        if p.get("mgrs:utm_zone") and p.get("mgrs:latitude_band") and p.get("mgrs:grid_square"):
            return f"{int(p['mgrs:utm_zone']):02d}{p['mgrs:latitude_band']}{p['mgrs:grid_square']}".upper()
        if self.sensor == "sentinel-2" and (m := _MGRS_IN_TEXT.search(self.id)):
            return m.group(1)
        return None

    @property
    def scene_cloud_cover(self) -> float | None:
        """The scene's own ``eo:cloud_cover`` (percent of the whole scene)."""
        value = self.properties.get("eo:cloud_cover")
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            return None

    def aoi_cover(self, aoi: BaseGeometry) -> float:
        """Fraction of the AOI's area (in degrees², fine at AOI scale) inside the footprint."""
        if aoi.area == 0:
            return 1.0 if self.footprint.intersects(aoi) else 0.0
        return float(self.footprint.intersection(aoi).area / aoi.area)

    def summary(self) -> dict[str, Any]:
        """A flat, JSON-ready description (for tables, logs and provenance)."""
        out: dict[str, Any] = {
            "id": self.id, "datetime": self.datetime.isoformat(), "collection": self.collection,
            "provider": self.provider, "sensor": self.sensor, "href": self.acquisition.href,
        }  # fmt: skip
        if self.sensor == "sentinel-1":
            out |= {"relative_orbit": self.relative_orbit, "orbit_state": self.orbit_state,
                    "polarisations": list(self.polarisations)}  # fmt: skip
        else:
            out |= {"mgrs_tile": self.mgrs_tile, "scene_cloud_cover": self.scene_cloud_cover}
        if self.cloud is not None:
            out["aoi_cloud"] = self.cloud.as_dict()
        return out


class SearchResults(list[Record]):
    """The records a search returned (a list), with what was left out and why:
    ``skipped`` counts items that could not be used (malformed, no usable
    assets), ``notes`` says why, ``pages`` counts the pages read."""

    def __init__(self, records: Iterable[Record] = (), *, provider: str = "", skipped: int = 0,
                 notes: list[str] | None = None, pages: int = 0) -> None:  # fmt: skip
        super().__init__(records)
        self.provider = provider
        self.skipped = skipped
        self.notes = list(notes or [])
        self.pages = pages


@runtime_checkable
class DiscoveryProvider(Protocol):
    """Anything that can search acquisitions: a name and ``search``."""

    name: str

    def search(self, query: SearchQuery) -> SearchResults:
        """Records matching ``query`` (AOI, period, sensor, collections, S1 filters),
        newest first, at most ``query.limit``."""
        ...


def record_from_item(item: Any, provider: str, href: str = "") -> Record:
    """A ``Record`` from a ``pystac.Item``: raises ``InputError`` when the item
    has no geometry, no datetime or no band asset eowatch can read."""
    if item.geometry is None:
        raise InputError(f"STAC Item {item.id} has no geometry")
    if item.datetime is None:
        start = item.properties.get("start_datetime")
        if not start:
            raise InputError(f"STAC Item {item.id} has neither datetime nor start_datetime")
        item.datetime = parse_time(start)
    footprint = shape(item.geometry)
    if footprint.is_empty:
        raise InputError(f"STAC Item {item.id} has an empty geometry")
    if not footprint.is_valid:
        footprint = footprint.buffer(0)
    acq = acquisition_from_item(item, href)
    if acq.datetime is not None and acq.datetime.tzinfo is None:
        acq.datetime = acq.datetime.replace(tzinfo=UTC)
    return Record(
        acquisition=acq,
        footprint=footprint,
        collection=item.collection_id or "",
        provider=provider,
        item=item.to_dict(include_self_link=True, transform_hrefs=False),
    )


def rejection(query: SearchQuery, record: Record) -> str | None:
    """Why ``record`` does not match ``query`` (None when it does). Every provider
    applies this on its side, so a server ignoring a filter changes nothing."""
    if query.collections and record.collection not in query.collections:
        return f"collection {record.collection} not in {list(query.collections)}"
    if record.sensor != query.sensor:
        return f"sensor {record.sensor} is not {query.sensor}"
    if not (query.start <= record.datetime <= query.end):
        return f"date {record.datetime:%Y-%m-%d %H:%M} outside the period"
    if not record.footprint.intersects(query.aoi):
        return "footprint does not intersect the AOI"
    if query.relative_orbit is not None and record.relative_orbit != query.relative_orbit:
        return f"relative orbit {record.relative_orbit} is not {query.relative_orbit}"
    if query.orbit_state is not None and record.orbit_state != query.orbit_state:
        return f"pass {record.orbit_state} is not {query.orbit_state}"
    if query.polarisations and not set(query.polarisations) <= set(record.polarisations):
        return f"polarisations {list(record.polarisations)} lack {list(query.polarisations)}"
    return None


def bbox_of(aoi: BaseGeometry) -> tuple[float, float, float, float]:
    """(minx, miny, maxx, maxy) of an EPSG:4326 geometry."""
    return tuple(float(v) for v in aoi.bounds)  # type: ignore[return-value]


def footprint_of_bbox(bbox: Iterable[float]) -> BaseGeometry:
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    return box(minx, miny, maxx, maxy)


# --- registry ---------------------------------------------------------------

#: A factory builds a provider from a settings object (``eowatch.Settings`` or
#: anything with the same attributes); it reads what it needs with ``getattr``.
ProviderFactory = Callable[[Settings], DiscoveryProvider]
_REGISTRY: dict[str, ProviderFactory] = {}


def register_provider(name: str, factory: ProviderFactory, *, replace: bool = False) -> ProviderFactory:
    """Make ``factory(settings)`` available as provider ``name``."""
    key = name.strip().lower()
    if key in _REGISTRY and not replace and _REGISTRY[key] is not factory:
        raise ValueError(f"discovery provider {name!r} is registered twice (pass replace=True to override)")
    _REGISTRY[key] = factory
    return factory


def _load_builtin() -> None:
    from . import cdse, earth_search, local, planetary_computer, stac_api  # noqa: F401  (register on import)


def list_providers() -> list[str]:
    """Names of the registered providers."""
    _load_builtin()
    return sorted(_REGISTRY)


def get_provider(name: str | None, settings: Settings) -> DiscoveryProvider:
    """The provider registered as ``name`` (default: ``settings.discovery_provider``,
    else Earth Search), built from ``settings``. A URL is taken as a generic STAC
    API, ``local:FOLDER`` as the local catalogue of that folder."""
    _load_builtin()
    chosen = (name or settings.discovery_provider or DEFAULT_PROVIDER).strip()
    if chosen.startswith(("http://", "https://")):
        from .stac_api import from_url

        return from_url(chosen, settings)
    if chosen.lower().startswith("local:"):
        from .local import LocalCatalog

        return LocalCatalog(chosen[6:], settings.local_catalog_db)
    try:
        factory = _REGISTRY[chosen.lower()]
    except KeyError:
        raise InputError(
            f"unknown discovery provider {chosen!r}; available: {', '.join(sorted(_REGISTRY))}, "
            "or the URL of a STAC API"
        ) from None
    return factory(settings)
