"""Analyst feedback on change polygons: verdicts (confirmed, false alarm, wrong class)
on the polygons of the Items of the results catalogue, under the Items' access rules,
and their export as training labels.

A polygon is named by its feature ``id`` in the Item's ``changes.geojson`` (its area
rank, from 1: ``eowatch.io.vector``). Whoever can see an Item sees every verdict on it;
whoever can see it and write to its collection (admins, analysts, partners whose grant
says ``write``) gives verdicts. A polygon of an Item the caller cannot see answers
exactly like a missing Item (404); nothing is stored before every check has passed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import CatalogError, ForbiddenError, InputError, NotFoundError
from ..store.auth import AccessStore, Principal
from ..store.feedback import MAX_NOTE_CHARS, VERDICTS, Verdict, VerdictStore
from .catalog import ResultsCatalog

__all__ = [
    "Feedback",
    "PolygonClass",
    "check_text",
    "class_table",
    "labels_collection",
    "parse_since",
]

#: Change-map values that are not change classes (0 no change, 255 no valid data).
_NOT_CHANGE = (0, 255)
#: The item properties a label carries so a trainer can find the pair again.
_INPUT_KEYS = ("role", "id", "href", "datetime", "sensor", "processing:level")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class PolygonClass:
    """A change class of an Item's change map (a value or a name may be unknown when
    the Item has no class table)."""

    value: int | None
    name: str | None


def check_text(what: str, value: str, limit: int) -> str:
    """``value`` when at most ``limit`` characters without control characters (tabs and
    line breaks allowed); InputError naming ``what`` otherwise."""
    if len(value) > limit:
        raise InputError(f"{what} has {len(value)} characters; at most {limit} are kept")
    if _CONTROL.search(value):
        raise InputError(f"{what} holds control characters; write plain text")
    return value


def class_table(item: dict[str, Any]) -> list[PolygonClass]:
    """The change classes of ``item`` (its change map's ``classification:classes``,
    no-change and no-data left out); empty when the Item does not say."""
    asset = (item.get("assets") or {}).get("change_map") or {}
    classes = []
    for entry in asset.get("classification:classes") or []:
        value = entry.get("value")
        if isinstance(value, int) and value not in _NOT_CHANGE and not entry.get("nodata"):
            classes.append(PolygonClass(value, str(entry.get("name") or f"class {value}")))
    return classes


def _corrected(given: int | str | None, classes: Sequence[PolygonClass]) -> PolygonClass | None:
    """The class named by ``given`` (a value or a name) among ``classes``; any value
    from 1 to 254 or any name when the Item has no class table."""
    if given is None or given == "":
        return None
    if isinstance(given, str):
        text = check_text("class", given.strip(), 256)
        given = int(text) if text.isdigit() else text
    if classes:
        for c in classes:
            if c.value == given or (isinstance(given, str) and (c.name or "").lower() == given.lower()):
                return c
        choices = ", ".join(f"{c.value} ({c.name})" for c in classes)
        raise InputError(f"class {given!r} is not a change class of this item; choose one of {choices}")
    if isinstance(given, str):
        return PolygonClass(None, given)
    if not 0 < given < 255:
        raise InputError(f"class {given} is not a change class: give a value from 1 to 254")
    return PolygonClass(given, None)


def parse_since(text: str | None) -> dt.datetime | None:
    """An RFC 3339 instant or a date (midnight UTC), in UTC; None for no filter."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        parsed = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1] in "Zz" else value)
    except ValueError:
        raise InputError(
            f"{text!r} is not a date or an RFC 3339 date-time: write e.g. 2024-05-01 or 2024-05-01T12:00:00Z"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _digest(geometry: dict[str, Any]) -> str:
    text = json.dumps(geometry, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _target(collection_id: str, item_id: str, polygon_id: int) -> str:
    return f"{collection_id}/{item_id}/polygons/{polygon_id}"


class Feedback:
    """Verdicts on the polygons of ``catalog``'s Items, under ``access``'s rules."""

    def __init__(self, catalog: ResultsCatalog, access: AccessStore) -> None:
        self.catalog = catalog
        self.access = access
        self.store = VerdictStore(catalog.engine)

    # -- what the caller may do -----------------------------------------------------------

    def _item(self, who: Principal, collection_id: str, item_id: str) -> dict[str, Any]:
        """The Item when ``who`` may see it; the catalogue's NotFoundError otherwise."""
        return self.catalog.get_item(collection_id, item_id, self.access.visible_collections(who))

    def may_write(self, who: Principal, collection_id: str) -> bool:
        """Whether ``who`` may give verdicts on the Items of ``collection_id``."""
        writable = self.access.writable_collections(who)
        return writable is None or collection_id in writable

    def _polygon(self, collection_id: str, item_id: str, polygon_id: int) -> dict[str, Any]:
        """Feature ``polygon_id`` of the Item's ``changes.geojson`` (already found visible)."""
        missing = NotFoundError(
            f"no polygon {polygon_id} in item {item_id!r} of collection {collection_id!r}"
        )
        try:
            path, _media = self.catalog.asset_file(collection_id, item_id, "polygons")
        except NotFoundError:
            raise missing from None
        try:
            features = json.loads(path.read_text(encoding="utf-8")).get("features") or []
        except (OSError, ValueError, AttributeError) as exc:
            raise CatalogError(f"the polygons of item {item_id!r} cannot be read: {exc}") from exc
        for index, feature in enumerate(features, start=1):
            if feature.get("id", index) == polygon_id:
                return dict(feature)
        raise missing

    # -- verdicts --------------------------------------------------------------------------

    def judge(
        self,
        who: Principal,
        collection_id: str,
        item_id: str,
        polygon_id: int,
        verdict: str,
        corrected_class: int | str | None = None,
        note: str = "",
    ) -> tuple[Verdict, Verdict | None]:
        """Store ``who``'s verdict on a polygon (replacing its earlier one), audited;
        returns it and the verdict it replaced. 404 (NotFoundError) for an Item the
        caller cannot see or a polygon it does not have, 403 (ForbiddenError) for a
        caller who may only read, 400 (InputError) for a bad verdict, class or note."""
        item = self._item(who, collection_id, item_id)
        if not self.may_write(who, collection_id):
            raise ForbiddenError(
                f"the {who.role} role may read collection {collection_id!r} but not give verdicts on it; "
                "ask an admin for a write grant (eowatch admin grant ORGANISATION COLLECTION --write)"
            )
        feature = self._polygon(collection_id, item_id, polygon_id)
        if verdict not in VERDICTS:
            raise InputError(f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}")
        note = check_text("the note", (note or "").strip(), MAX_NOTE_CHARS)
        props = feature.get("properties") or {}
        own = props.get("class") if isinstance(props.get("class"), int) else None
        corrected = _corrected(corrected_class, class_table(item))
        if corrected is not None and verdict != "wrong_class":
            raise InputError(f"a class goes with the verdict wrong_class only, not with {verdict}")
        if corrected is not None and own is not None and corrected.value == own:
            raise InputError(f"class {corrected.value} is the polygon's own class: send confirmed")
        geometry = feature.get("geometry")
        if not isinstance(geometry, dict):
            raise CatalogError(f"polygon {polygon_id} of item {item_id!r} has no geometry")
        now = dt.datetime.now(dt.UTC)
        given = Verdict(
            collection_id=collection_id,
            item_id=item_id,
            polygon_id=polygon_id,
            author=who.name,
            verdict=verdict,
            corrected_class=corrected.value if corrected else None,
            corrected_class_name=corrected.name if corrected else None,
            note=note,
            polygon_class=own,
            polygon_class_name=str(props["class_name"]) if props.get("class_name") is not None else None,
            geometry=geometry,
            geometry_sha256=_digest(geometry),
            created_at=now,
            updated_at=now,
        )
        return self.store.put(given, _target(collection_id, item_id, polygon_id))

    def verdicts(
        self, who: Principal, collection_id: str, item_id: str, polygon_id: int | None = None
    ) -> tuple[dict[str, Any], list[Verdict]]:
        """The Item (when ``who`` may see it) and every verdict on it, or on one of its
        polygons (404 for a polygon it does not have)."""
        item = self._item(who, collection_id, item_id)
        if polygon_id is not None:
            self._polygon(collection_id, item_id, polygon_id)
        found = self.store.list(collection_id=collection_id, item_id=item_id, polygon_id=polygon_id)
        return item, found

    def labels(
        self,
        visible: Collection[str] | None = None,
        collection_id: str | None = None,
        item_id: str | None = None,
        since: dt.datetime | None = None,
        verdicts: Collection[str] | None = None,
    ) -> dict[str, Any]:
        """Every verdict matching the filters as a GeoJSON FeatureCollection of training
        labels (``labels_collection``); ``collection_id`` must exist (NotFoundError)."""
        if collection_id is not None:
            self.catalog.get_collection(collection_id, visible)
        found = self.store.list(
            visible=visible, collection_id=collection_id, item_id=item_id, since=since, verdicts=verdicts
        )
        items: dict[tuple[str, str], dict[str, Any] | None] = {}
        for v in found:
            key = (v.collection_id, v.item_id)
            if key not in items:
                try:
                    items[key] = self.catalog.get_item(*key)
                except NotFoundError:
                    items[key] = None  # removed since: the label keeps what was judged
        return labels_collection(found, items)


def _inputs_of(item: dict[str, Any] | None) -> list[dict[str, Any]] | None:
    if item is None:
        return None
    inputs = (item.get("properties") or {}).get("eowatch:inputs") or []
    return [{k: i[k] for k in _INPUT_KEYS if k in i} for i in inputs if isinstance(i, dict)]


def labels_collection(
    verdicts: Sequence[Verdict], items: dict[tuple[str, str], dict[str, Any] | None]
) -> dict[str, Any]:
    """Verdicts as an RFC 7946 FeatureCollection: each polygon as judged (geometry,
    class), the verdict, its author, note and times, the ``label`` a trainer learns
    (``Verdict.label``: 0 for a false alarm) and the Item's preset and inputs (ids,
    hrefs, dates: null when the Item is no longer in the catalogue)."""
    features = []
    for v in verdicts:
        item = items.get((v.collection_id, v.item_id))
        data = v.as_dict()
        properties = {
            "collection": data.pop("collection_id"),
            "item": data.pop("item_id"),
            "polygon": data.pop("polygon_id"),
            **data,
            "label": v.label,
            "preset": (item.get("properties") or {}).get("eowatch:preset") if item else None,
            "inputs": _inputs_of(item),
        }
        features.append({"type": "Feature", "geometry": v.geometry, "properties": properties})
    return {"type": "FeatureCollection", "features": features}
