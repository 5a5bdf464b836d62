"""Choose the reference (before) image of each new acquisition.

Rules per sensor:

* Sentinel-1: same relative orbit (``sat:relative_orbit``) and pass direction
  (``sat:orbit_state``), at least one common polarisation (all of the required
  ones when set), same instrument mode and product type when both say, never
  uncalibrated DN with calibrated backscatter, and the two footprints must overlap
  over the AOI. Different geometry means different backscatter, not change. The
  same rules (``compare_s1``) check the inputs of a detection (``check_s1_inputs``):
  there, orbit and pass may be waived (``allow_mismatched_orbits``) and metadata
  that local files lack is recorded as unchecked rather than refused.
* Sentinel-2: same MGRS tile, or both footprints covering the whole AOI; a
  minimum valid (cloud-free) fraction over the AOI on both dates.
* Both: a minimum and maximum time gap; among the eligible earlier
  acquisitions the most recent one is chosen.

The chosen ``Pair`` records its reason in words and in fields, including why
more recent candidates were passed over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from shapely.geometry.base import BaseGeometry

from ..errors import NoValidDataError, PairingError
from ..settings import Settings
from .providers import DiscoveryProvider, Record, SearchQuery, SearchResults, get_provider, normalise_sensor

__all__ = ["PairingRules", "Pair", "Check", "check_pair", "choose_reference", "propose_pairs", "discover",
           "discover_pair", "S1View", "S1Comparison", "compare_s1", "check_s1_inputs"]  # fmt: skip


@dataclass(frozen=True)
class PairingRules:
    """Thresholds of the pairing rules. ``for_sensor`` gives each sensor's defaults."""

    sensor: str = "sentinel-2"
    max_gap_days: float = 60.0
    min_gap_days: float = 0.5
    min_valid_fraction: float = 0.5
    min_aoi_cover: float = 0.99
    required_polarisations: tuple[str, ...] = ()
    allow_unknown_cloud: bool = True

    @classmethod
    def for_sensor(cls, sensor: str, settings: Settings | None = None, **overrides: Any) -> PairingRules:
        """Defaults: S1 up to 36 days apart (three 12-day cycles), S2 up to 60 days
        with at least half the AOI clear on both dates; ``settings.pair_max_gap_days``
        and ``pair_min_valid_fraction`` override them when set, ``overrides`` both."""
        name = normalise_sensor(sensor)
        base = cls(sensor=name, max_gap_days=36.0 if name == "sentinel-1" else 60.0)
        values: dict[str, Any] = dict(overrides)
        if settings is not None:
            for key, value in (("max_gap_days", settings.pair_max_gap_days),
                               ("min_valid_fraction", settings.pair_min_valid_fraction)):  # fmt: skip
                if value is not None:
                    values.setdefault(key, float(value))
        return replace(base, **values)


@dataclass
class Check:
    """Whether ``before`` can serve as the reference of ``after``: the failed
    rules (``problems``) and the measured values (``fields``)."""

    eligible: bool
    problems: list[str]
    fields: dict[str, Any]


@dataclass
class Pair:
    """A before/after pair and why it was chosen."""

    before: Record
    after: Record
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def gap_days(self) -> float:
        return (self.after.datetime - self.before.datetime) / timedelta(days=1)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record of the pair (for provenance and the CLI)."""
        return {"before": self.before.id, "after": self.after.id, "reason": self.reason, **self.fields}


def _valid_fraction(record: Record, aoi: BaseGeometry | None) -> tuple[float | None, str]:
    if record.cloud is not None:
        return record.cloud.valid_fraction, record.cloud.source
    scene = record.scene_cloud_cover
    if scene is None:
        return None, "unknown"
    cover = record.aoi_cover(aoi) if aoi is not None else 1.0
    return cover * (1.0 - min(max(scene, 0.0), 100.0) / 100.0), "scene-metadata"


def check_pair(before: Record, after: Record, rules: PairingRules, aoi: BaseGeometry | None = None) -> Check:
    """Apply ``rules`` to a candidate reference ``before`` of ``after``."""
    problems: list[str] = []
    gap = (after.datetime - before.datetime) / timedelta(days=1)
    fields: dict[str, Any] = {"rule": before.sensor, "gap_days": round(gap, 3)}
    if before.sensor != after.sensor:
        return Check(False, [f"sensor {before.sensor} is not {after.sensor}"], fields)
    if gap < rules.min_gap_days:
        problems.append(f"only {gap:.2f} days before (minimum {rules.min_gap_days:g})")
    elif gap > rules.max_gap_days:
        problems.append(f"{gap:.1f} days before (maximum {rules.max_gap_days:g})")
    if aoi is not None:
        common = before.footprint.intersection(after.footprint).intersection(aoi)
        fields["aoi_common_cover"] = (
            round(common.area / aoi.area, 4) if aoi.area else float(not common.is_empty)
        )
        if common.is_empty:
            problems.append("the two footprints do not overlap over the AOI")
    if after.sensor == "sentinel-1":
        _check_s1(before, after, rules, problems, fields)
    else:
        _check_s2(before, after, rules, aoi, problems, fields)
    return Check(not problems, problems, fields)


@dataclass(frozen=True)
class S1View:
    """What the Sentinel-1 rules compare of one acquisition."""

    id: str
    properties: Mapping[str, Any]
    polarisations: tuple[str, ...]  # lower case
    calibrated: bool | None = None  # None: not known yet

    @classmethod
    def of_record(cls, record: Record) -> S1View:
        return cls(record.id, record.properties, tuple(p.lower() for p in record.polarisations))


#: Polarisations in order of preference (co-polarisations first).
_S1_POLARISATIONS = ("vv", "hh", "vh", "hv")


@dataclass
class S1Comparison:
    """The Sentinel-1 rules applied to two or more acquisitions (first vs the others):
    ``differing`` orbit geometry (waivable for detection), ``unknown`` geometry (no
    metadata), ``incompatible`` data (never waived), and the common polarisations."""

    differing: list[str]
    unknown: list[str]
    incompatible: list[str]
    common: list[str]


def _listing(views: Sequence[S1View], values: Sequence[Any]) -> str:
    return ", ".join(f"{v.id}: {value}" for v, value in zip(views, values, strict=True))


def compare_s1(views: Sequence[S1View], required: Sequence[str] = ()) -> S1Comparison:
    """The one Sentinel-1 rule set (see the module docstring); ``required``
    polarisations must be in every acquisition."""
    out = S1Comparison([], [], [], [])
    for key, label in (("sat:relative_orbit", "relative orbit"), ("sat:orbit_state", "pass direction")):
        values = [v.properties.get(key) for v in views]
        if len({str(x).lower() for x in values if x is not None}) > 1:
            out.differing.append(f"different {label}s ({_listing(views, values)})")
        lacking = [v.id for v, x in zip(views, values, strict=True) if x is None]
        if lacking:
            out.unknown.append(f"{label} (no {key} metadata on {lacking})")
    for key, label in (("sar:instrument_mode", "instrument mode"), ("sar:product_type", "product type")):
        values = [v.properties.get(key) for v in views]
        if all(values) and len({str(x) for x in values}) > 1:
            out.incompatible.append(f"different {label}s ({_listing(views, values)})")
    out.common = [p for p in _S1_POLARISATIONS if all(p in v.polarisations for v in views)]
    if not out.common:
        pols = "; ".join(
            f"{v.id}: {[p.upper() for p in _S1_POLARISATIONS if p in v.polarisations] or 'none'}"
            for v in views
        )
        out.incompatible.append(f"no common polarisation ({pols})")
    missing = [p for p in required if p.lower() not in out.common] if out.common else []
    if missing:
        out.incompatible.append(
            f"polarisation(s) {[p.upper() for p in missing]} asked for are not in every input "
            f"(common: {[p.upper() for p in out.common]})"
        )
    calibrated = [v.calibrated for v in views]
    if None not in calibrated and len(set(calibrated)) > 1:
        uncalibrated = [v.id for v in views if not v.calibrated]
        out.incompatible.append(
            f"mixing uncalibrated GRD amplitude DN with calibrated backscatter (uncalibrated: {uncalibrated})"
        )
    return out


def check_s1_inputs(
    views: Sequence[S1View], required: Sequence[str] = (), allow_mismatched_orbits: bool = False
) -> dict[str, Any]:
    """The Sentinel-1 rules on the inputs of a detection: ``PairingError`` naming every
    problem, else the record of what was checked (``eowatch:pairing`` of the product)."""
    found = compare_s1(views, required)
    hard = list(found.incompatible)
    if found.differing and not allow_mismatched_orbits:
        hard.append(
            "; ".join(found.differing) + " - choose acquisitions from the same relative orbit and pass, "
            "or set allow_mismatched_orbits=true to compare them anyway"
        )
    if hard:
        raise PairingError(
            f"cannot compare {', '.join(v.id for v in views)}: "
            + "; ".join(hard)
            + ". Sentinel-1 dates are comparable only with the same orbit geometry and polarisations."
        )
    return {
        "relative_orbit": [v.properties.get("sat:relative_orbit") for v in views],
        "orbit_state": [v.properties.get("sat:orbit_state") for v in views],
        "common_polarisations": [p.upper() for p in found.common],
        "unchecked": found.unknown,
        "mismatch_allowed": found.differing,
    }


def _check_s1(before: Record, after: Record, rules: PairingRules, problems: list[str],
              fields: dict[str, Any]) -> None:  # fmt: skip
    found = compare_s1([S1View.of_record(before), S1View.of_record(after)], rules.required_polarisations)
    problems += found.unknown + found.differing + found.incompatible
    fields["relative_orbit"] = after.relative_orbit
    fields["orbit_state"] = after.orbit_state
    fields["polarisations"] = sorted(p.upper() for p in found.common)


def _check_s2(before: Record, after: Record, rules: PairingRules, aoi: BaseGeometry | None,
              problems: list[str], fields: dict[str, Any]) -> None:  # fmt: skip
    tb, ta = before.mgrs_tile, after.mgrs_tile
    same_tile = tb is not None and tb == ta
    fields["mgrs_tile"] = ta if same_tile else None
    if same_tile:
        fields["geometry_rule"] = "same MGRS tile"
    elif aoi is not None:
        cb, ca = before.aoi_cover(aoi), after.aoi_cover(aoi)
        fields["aoi_cover"] = [round(cb, 4), round(ca, 4)]
        if min(cb, ca) >= rules.min_aoi_cover:
            fields["geometry_rule"] = "both cover the AOI"
        else:
            problems.append(
                f"tiles differ ({tb} vs {ta}) and the AOI is not fully covered by both "
                f"({cb:.0%} / {ca:.0%} < {rules.min_aoi_cover:.0%})"
            )
    else:
        problems.append(f"tiles differ ({tb} vs {ta}) and no AOI is given to check coverage")
    for label, record in (("before", before), ("after", after)):
        valid, source = _valid_fraction(record, aoi)
        fields[f"{label}_valid_fraction"] = None if valid is None else round(valid, 4)
        fields[f"{label}_cloud_source"] = source
        if valid is None:
            if not rules.allow_unknown_cloud:
                problems.append(f"{label}: cloud cover over the AOI unknown")
        elif valid < rules.min_valid_fraction:
            problems.append(
                f"{label}: only {valid:.0%} of the AOI clear "
                f"({source}; minimum {rules.min_valid_fraction:.0%})"
            )


def _describe(pair_fields: dict[str, Any], before: Record, rejected: dict[str, list[str]]) -> str:
    gap = pair_fields["gap_days"]
    if before.sensor == "sentinel-1":
        pols = "+".join(pair_fields.get("polarisations", []))
        what = (f"same relative orbit {pair_fields['relative_orbit']} and {pair_fields['orbit_state']} pass, "
                f"common polarisation(s) {pols}")  # fmt: skip
    else:
        rule = pair_fields.get("geometry_rule", "")
        what = f"{rule} {pair_fields['mgrs_tile']}" if rule == "same MGRS tile" else rule
        vb, va = pair_fields.get("before_valid_fraction"), pair_fields.get("after_valid_fraction")
        if vb is not None and va is not None:
            sources = f"{pair_fields['before_cloud_source']}/{pair_fields['after_cloud_source']}"
            what += f", AOI clear {vb:.0%} before / {va:.0%} after ({sources})"
        elif vb is None or va is None:
            what += ", cloud cover over the AOI unknown on at least one date"
    text = f"{what}; {gap:.1f} days apart; most recent eligible earlier acquisition"
    if rejected:
        text += f" ({len(rejected)} more recent candidate(s) passed over)"
    return text


def choose_reference(
    after: Record, candidates: Iterable[Record], rules: PairingRules, aoi: BaseGeometry | None = None
) -> Pair:
    """The most recent earlier candidate that passes ``rules``; ``PairingError``
    (naming why each candidate failed) when none does."""
    earlier = sorted((c for c in candidates if c.datetime < after.datetime and c.id != after.id),
                     key=lambda c: c.datetime, reverse=True)  # fmt: skip
    rejected: dict[str, list[str]] = {}
    for candidate in earlier:
        check = check_pair(candidate, after, rules, aoi)
        if check.eligible:
            fields = {**check.fields, "before_datetime": candidate.datetime.isoformat(),
                      "after_datetime": after.datetime.isoformat(), "rejected": rejected}  # fmt: skip
            return Pair(candidate, after, _describe(check.fields, candidate, rejected), fields)
        rejected[candidate.id] = check.problems
    if not earlier:
        raise PairingError(
            f"no acquisition before {after.id} ({after.datetime:%Y-%m-%d}); start the period earlier"
        )
    details = "; ".join(f"{k}: {', '.join(v)}" for k, v in list(rejected.items())[:5])
    raise PairingError(
        f"no eligible reference for {after.id} among {len(earlier)} earlier acquisition(s): {details}. "
        "Widen the period, relax the rules (max gap, min clear fraction) or choose another orbit/tile."
    )


def propose_pairs(
    acquisitions: Sequence[Record], rules: PairingRules, aoi: BaseGeometry | None = None
) -> list[Pair]:
    """Each acquisition paired with its most recent eligible earlier one (those
    without any are left out), oldest ``after`` first."""
    pairs: list[Pair] = []
    for after in sorted(acquisitions, key=lambda r: r.datetime):
        if after.sensor != rules.sensor:
            continue
        try:
            pairs.append(choose_reference(after, acquisitions, rules, aoi))
        except PairingError:
            continue
    return pairs


def discover(
    query: SearchQuery, provider: DiscoveryProvider, settings: Settings, *, use_scl: bool | None = None
) -> SearchResults:
    """Search ``provider`` and, for Sentinel-2, compute the cloud cover over the AOI
    (SCL, else scene metadata) and keep the records under ``query.max_cloud_cover``."""
    from .cloud import annotate_cloud

    results = provider.search(query)
    if query.sensor != "sentinel-2":
        return results
    scl = use_scl if use_scl is not None else settings.aoi_cloud_from_scl
    resolution = settings.aoi_cloud_resolution_m
    annotate_cloud(results, query.aoi, use_scl=scl, mask_snow=settings.mask_snow, resolution_m=resolution)
    if query.max_cloud_cover is None:
        return results
    kept = SearchResults(
        provider=results.provider, skipped=results.skipped, notes=results.notes, pages=results.pages
    )
    for record in results:
        cloud = record.cloud
        if cloud is None or cloud.fraction is None or cloud.fraction * 100 <= query.max_cloud_cover:
            kept.append(record)
        else:
            kept.notes.append(
                f"{record.id}: {cloud.describe()} over the AOI, above {query.max_cloud_cover:g} %"
            )
    return kept


def discover_pair(
    aoi: Any,
    start: str | date | datetime,
    end: str | date | datetime,
    sensor: str,
    provider_name: str | None,
    settings: Settings,
    *,
    rules: PairingRules | None = None,
    provider: DiscoveryProvider | None = None,
    **query: Any,
) -> Pair:
    """Find the most recent pair over ``aoi`` in ``[start, end]``: search the
    provider, estimate AOI cloud cover, pair every acquisition and return the
    pair with the latest after date. ``query`` passes extra ``SearchQuery``
    fields (``max_cloud_cover``, ``relative_orbit``, ``polarisations``...)."""
    from ..aoi import check_aoi, parse_aoi

    geom = check_aoi(parse_aoi(aoi), settings.max_aoi_area_km2)
    q = SearchQuery(aoi=geom, start=start, end=end, sensor=sensor, **query)  # type: ignore[arg-type]
    chosen = provider or get_provider(provider_name, settings)
    found = discover(q, chosen, settings)
    if not found:
        notes = f" ({'; '.join(found.notes[:3])})" if found.notes else ""
        raise NoValidDataError(
            f"provider {chosen.name!r} found no {q.sensor} acquisition over the AOI between "
            f"{q.start:%Y-%m-%d} and {q.end:%Y-%m-%d}{notes}; widen the period or the cloud limit, "
            "or check the AOI"
        )
    rules = rules or PairingRules.for_sensor(q.sensor, settings)
    pairs = propose_pairs(found, rules, q.aoi)
    if pairs:
        return max(pairs, key=lambda p: p.after.datetime)
    newest = max(found, key=lambda r: r.datetime)
    try:
        choose_reference(newest, found, rules, q.aoi)
        why = "no acquisition has an eligible earlier reference"
    except PairingError as exc:
        why = str(exc)
    raise PairingError(f"{len(found)} acquisition(s) found by {chosen.name!r}, but none pairs: {why}")
