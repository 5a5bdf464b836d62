"""Verdicts of analysts on change polygons, in the catalogue's database.

One verdict per author and polygon: a later one replaces it (``created_at`` stays, the
rest and ``updated_at`` change). The replaced verdict is not kept here; every verdict
given is one ``feedback`` row of the audit log, written in the same transaction, so
the history is there and no verdict is ever stored unaudited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from .auth import AuditRow
from .db import as_utc, create_schema, database_error, rfc3339
from .models import VerdictRow

__all__ = ["VERDICTS", "MAX_NOTE_CHARS", "Verdict", "VerdictStore"]

#: What a verdict says of a polygon: a real change, no change at all, a change of another class.
VERDICTS = ("confirmed", "false_alarm", "wrong_class")
#: The longest note of a verdict, in characters.
MAX_NOTE_CHARS = 2000
#: The audit action of a verdict given (or replaced).
AUDIT_ACTION = "feedback"


@dataclass(frozen=True)
class Verdict:
    """One author's verdict on polygon ``polygon_id`` of an Item, with the polygon's
    class and geometry as the author judged them."""

    collection_id: str
    item_id: str
    polygon_id: int
    author: str
    verdict: str
    corrected_class: int | None
    corrected_class_name: str | None
    note: str
    polygon_class: int | None
    polygon_class_name: str | None
    geometry: dict[str, Any]
    geometry_sha256: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of_row(cls, row: VerdictRow) -> Verdict:
        return cls(
            row.collection_id, row.item_id, row.polygon_id, row.author, row.verdict,
            row.corrected_class, row.corrected_class_name, row.note or "", row.polygon_class,
            row.polygon_class_name, dict(row.geometry), row.geometry_sha256,
            as_utc(row.created_at), as_utc(row.updated_at),
        )  # fmt: skip

    @property
    def label(self) -> int | None:
        """The class a trainer should learn here: the polygon's own (confirmed), the
        corrected one (wrong class; None when the author gave none), 0 = no change
        (false alarm)."""
        if self.verdict == "confirmed":
            return self.polygon_class
        if self.verdict == "wrong_class":
            return self.corrected_class
        return 0

    def as_dict(self) -> dict[str, Any]:
        """Plain data; times as RFC 3339 text (``...Z``), no geometry."""
        data = asdict(self)
        del data["geometry"]
        for key in ("created_at", "updated_at"):
            data[key] = rfc3339(data[key])
        return data


class VerdictStore:
    """Stores and lists verdicts; ``put`` replaces an author's earlier verdict."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_schema(engine)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def put(self, verdict: Verdict, audit_target: str) -> tuple[Verdict, Verdict | None]:
        """Store ``verdict`` (its times are set here) with its audit row, in one
        transaction; returns it as stored and the verdict it replaced, if any."""
        for attempt in (1, 2):  # a concurrent first verdict of the same author: update it
            try:
                with self._session() as session, session.begin():
                    return self._put(session, verdict, audit_target)
            except IntegrityError as exc:
                if attempt == 2:
                    raise database_error("cannot store the verdict", exc) from exc
            except SQLAlchemyError as exc:
                raise database_error("cannot store the verdict", exc) from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _put(session: Session, verdict: Verdict, audit_target: str) -> tuple[Verdict, Verdict | None]:
        row = session.scalars(
            select(VerdictRow)
            .where(
                VerdictRow.collection_id == verdict.collection_id,
                VerdictRow.item_id == verdict.item_id,
                VerdictRow.polygon_id == verdict.polygon_id,
                VerdictRow.author == verdict.author,
            )
            .with_for_update()
        ).first()
        previous = Verdict.of_row(row) if row is not None else None
        now = dt.datetime.now(dt.UTC)
        fields = {k: v for k, v in asdict(verdict).items() if k not in ("created_at", "updated_at")}
        if row is None:
            row = VerdictRow(**fields, created_at=now, updated_at=now)
            session.add(row)
        else:
            for key, value in fields.items():
                setattr(row, key, value)
            row.updated_at = now
        detail = {
            "verdict": verdict.verdict,
            "class": verdict.corrected_class_name or verdict.corrected_class,
            "note": verdict.note,
            "replaced": previous.verdict if previous else None,
        }
        session.add(AuditRow(user=verdict.author, action=AUDIT_ACTION, target=audit_target, detail=detail))
        session.flush()
        return Verdict.of_row(row), previous

    def list(
        self,
        *,
        visible: Collection[str] | None = None,
        collection_id: str | None = None,
        item_id: str | None = None,
        polygon_id: int | None = None,
        since: dt.datetime | None = None,
        verdicts: Collection[str] | None = None,
    ) -> list[Verdict]:
        """Verdicts matching every filter given, by collection, item, polygon and time;
        only those of the collections in ``visible`` when given (access control)."""
        conditions: list[Any] = []
        if visible is not None:
            conditions.append(VerdictRow.collection_id.in_(list(visible)))
        if collection_id is not None:
            conditions.append(VerdictRow.collection_id == collection_id)
        if item_id is not None:
            conditions.append(VerdictRow.item_id == item_id)
        if polygon_id is not None:
            conditions.append(VerdictRow.polygon_id == polygon_id)
        if since is not None:
            conditions.append(VerdictRow.updated_at >= since)
        if verdicts is not None:
            conditions.append(VerdictRow.verdict.in_(list(verdicts)))
        query = (
            select(VerdictRow)
            .where(*conditions)
            .order_by(VerdictRow.collection_id, VerdictRow.item_id, VerdictRow.polygon_id,
                      VerdictRow.updated_at, VerdictRow.id)
        )  # fmt: skip
        try:
            with self._session() as session:
                return [Verdict.of_row(r) for r in session.scalars(query)]
        except SQLAlchemyError as exc:
            raise database_error("cannot read the verdicts", exc) from exc
