"""Users, API keys, collection grants and the audit log.

API keys are shown once, when created, as ``eow_<prefix>_<secret>``; only the
prefix (for lookup) and a salted ``hashlib.scrypt`` hash of the whole key are
stored. Admins and analysts read every collection; a partner reads only the
collections granted to its organisation. Admins and analysts may also write to every
collection (verdicts on change polygons); a partner only to those whose grant says
``write`` (``grant(..., write=True)``).

Users signed in with OpenID Connect are not rows here: their names are
``oidc:<issuer host>/<sub>`` (``OIDC_NAME_PREFIX``), a namespace no local user
may take, so a token's subject can never be mistaken for a local user's name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Engine, ForeignKey, Integer, String, Text, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..errors import AuthError, CatalogError, InputError, NotFoundError
from .db import create_schema
from .models import Base

__all__ = [
    "ROLES",
    "Principal",
    "AccessStore",
    "UserRow",
    "ApiKeyRow",
    "GrantRow",
    "AuditRow",
    "MAX_NAME_CHARS",
    "OIDC_NAME_PREFIX",
]

ROLES = ("admin", "analyst", "partner")
KEY_PREFIX = "eow_"
#: The start of every OpenID Connect principal's name; local user names may not start with it.
OIDC_NAME_PREFIX = "oidc:"
#: The longest user name (the ``users``, ``audit_log`` and job/task ``owner`` columns).
MAX_NAME_CHARS = 256
#: The longest API key looked up: real ones are 49 characters; longer ones are refused unread.
_MAX_KEY_CHARS = 256
_KEY_PREFIX_RE = re.compile(r"[0-9a-f]{1,32}")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UserRow(Base):
    """A person or a service account."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(256), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    organisation: Mapped[str] = mapped_column(String(256), default="")
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ApiKeyRow(Base):
    """An API key of a user: a lookup prefix and the salted scrypt hash of the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(32), unique=True)
    salt: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(128))
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class GrantRow(Base):
    """Read access of an organisation to one collection, and write access (verdicts on
    its change polygons) when ``write`` is set."""

    __tablename__ = "grants"

    organisation: Mapped[str] = mapped_column(String(256), primary_key=True)
    collection_id: Mapped[str] = mapped_column(String(256), primary_key=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # server default: grants of databases made before write grants existed read only
    write: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")


class AuditRow(Base):
    """One audited event: a login, a grant, a task change, a download."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=_now, index=True)
    user: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a name, a role and an organisation (``via`` says how they proved it)."""

    name: str
    role: str
    organisation: str = ""
    via: str = "api-key"

    @property
    def reads_everything(self) -> bool:
        return self.role in ("admin", "analyst")


_MAX_VERIFIED = 10_000


def _hash(key: str, salt: bytes) -> str:
    return hashlib.scrypt(key.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32).hex()


class AccessStore:
    """Users, keys, grants and the audit log in the eowatch database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_schema(engine)
        # scrypt costs ~0.1 s by design (it is what makes a stolen hash expensive to
        # attack), too much for every request: keys already verified by this process are
        # remembered as a keyed digest (never the key). The key row is still read on each
        # request, so revocation and role changes take effect at once.
        self._verified: dict[str, bytes] = {}
        self._digest_secret = secrets.token_bytes(32)

    def _session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    # -- users and keys ------------------------------------------------------------------

    def create_user(self, name: str, role: str, organisation: str = "") -> Principal:
        """Add a user; the name must be new."""
        if role not in ROLES:
            raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not name or not name.strip():
            raise InputError("a user needs a name")
        if name.startswith(OIDC_NAME_PREFIX):
            raise InputError(
                f"user names starting with {OIDC_NAME_PREFIX!r} are reserved for OpenID Connect users"
            )
        if len(name) > MAX_NAME_CHARS:
            raise InputError(f"a user name has at most {MAX_NAME_CHARS} characters")
        if role == "partner" and not organisation:
            raise InputError("a partner user needs an organisation (--organisation)")
        try:
            with self._session() as session, session.begin():
                session.add(UserRow(name=name, role=role, organisation=organisation))
        except IntegrityError as exc:
            raise InputError(f"a user named {name!r} already exists") from exc
        except SQLAlchemyError as exc:
            raise CatalogError(f"cannot store user {name!r}: {exc}") from exc
        self.audit("system", "create-user", name, {"role": role, "organisation": organisation})
        return Principal(name, role, organisation)

    def get_user(self, name: str) -> Principal:
        with self._session() as session:
            row = session.scalar(select(UserRow).where(UserRow.name == name))
        if row is None:
            raise NotFoundError(f"no user named {name!r}")
        return Principal(row.name, row.role, row.organisation or "")

    def create_key(self, user: str) -> str:
        """A new API key for ``user``; the only time its plain text exists."""
        prefix = secrets.token_hex(6)
        key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(24)}"
        salt = secrets.token_bytes(16)
        with self._session() as session, session.begin():
            row = session.scalar(select(UserRow).where(UserRow.name == user))
            if row is None:
                raise NotFoundError(f"no user named {user!r}; create it first")
            session.add(ApiKeyRow(user_id=row.id, prefix=prefix, salt=salt.hex(), hash=_hash(key, salt)))
        self.audit("system", "create-key", user, {"prefix": prefix})
        return key

    def revoke_key(self, key_or_prefix: str) -> None:
        """Revoke a key, given whole or by its prefix."""
        prefix = _prefix_of(key_or_prefix) or key_or_prefix
        with self._session() as session, session.begin():
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.prefix == prefix))
            if row is None:
                raise NotFoundError(f"no API key with prefix {prefix!r}")
            row.revoked = True
        self.audit("system", "revoke-key", prefix)

    def authenticate(self, key: str) -> Principal:
        """The user of a valid, unrevoked key; AuthError otherwise (one message for all cases)."""
        prefix = _prefix_of(key) if len(key) <= _MAX_KEY_CHARS else None
        with self._session() as session:
            found = (
                session.execute(
                    select(ApiKeyRow, UserRow)
                    .join(UserRow, UserRow.id == ApiKeyRow.user_id)
                    .where(ApiKeyRow.prefix == prefix)
                ).first()
                if prefix
                else None
            )
        if found is not None and prefix is not None:
            key_row, user = found
            if not key_row.revoked and self._verify(prefix, key, key_row):
                return Principal(user.name, user.role, user.organisation or "")
        raise AuthError("the API key is not valid (unknown, revoked or mistyped)")

    def _verify(self, prefix: str, key: str, key_row: ApiKeyRow) -> bool:
        digest = hmac.new(self._digest_secret, f"{key_row.hash}:{key}".encode(), hashlib.sha256).digest()
        remembered = self._verified.get(prefix)
        if remembered is not None and hmac.compare_digest(remembered, digest):
            return True
        if not hmac.compare_digest(_hash(key, bytes.fromhex(key_row.salt)), key_row.hash):
            return False
        if len(self._verified) >= _MAX_VERIFIED:
            self._verified.clear()  # crude bound; a busy service re-verifies once per key
        self._verified[prefix] = digest
        return True

    # -- grants -----------------------------------------------------------------------------

    def grant(self, organisation: str, collection_id: str, by: str = "system", write: bool = False) -> None:
        """Let ``organisation`` read ``collection_id``, and write to it (verdicts) with
        ``write``; granting again sets ``write`` to the value given (idempotent)."""
        with self._session() as session, session.begin():
            row = session.get(GrantRow, (organisation, collection_id))
            if row is None:
                session.add(GrantRow(organisation=organisation, collection_id=collection_id, write=write))
            else:
                row.write = write
        self.audit(by, "grant", collection_id, {"organisation": organisation, "write": write})

    def revoke(self, organisation: str, collection_id: str, by: str = "system") -> None:
        """Withdraw a grant; NotFoundError when there was none."""
        with self._session() as session, session.begin():
            row = session.get(GrantRow, (organisation, collection_id))
            if row is None:
                raise NotFoundError(f"{organisation!r} has no grant on {collection_id!r}")
            session.delete(row)
        self.audit(by, "revoke", collection_id, {"organisation": organisation})

    def grants(self, organisation: str) -> frozenset[str]:
        """The collections ``organisation`` may read."""
        with self._session() as session:
            rows = session.scalars(
                select(GrantRow.collection_id).where(GrantRow.organisation == organisation)
            ).all()
        return frozenset(rows)

    def visible_collections(self, who: Principal) -> frozenset[str] | None:
        """The collections ``who`` may read; None for all of them."""
        return None if who.reads_everything else self.grants(who.organisation)

    def writable_collections(self, who: Principal) -> frozenset[str] | None:
        """The collections ``who`` may write to (verdicts on polygons); None for all of them."""
        if who.reads_everything:
            return None
        with self._session() as session:
            rows = session.scalars(
                select(GrantRow.collection_id).where(
                    GrantRow.organisation == who.organisation, GrantRow.write.is_(True)
                )
            ).all()
        return frozenset(rows)

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, user: str, action: str, target: str = "", detail: dict[str, Any] | None = None) -> int:
        """Append one event to the audit log; its id (for ``update_audit``)."""
        row = AuditRow(user=user, action=action, target=target, detail=detail or {})
        with self._session() as session, session.begin():
            session.add(row)
            session.flush()
            return row.id

    def update_audit(self, event_id: int, detail: dict[str, Any]) -> None:
        """Replace the detail of event ``event_id`` (a count of repeated events kept in one row)."""
        with self._session() as session, session.begin():
            row = session.get(AuditRow, event_id)
            if row is not None:
                row.detail = detail

    def audit_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest events, newest first."""
        with self._session() as session:
            rows = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)).all()
        return [
            {
                "time": r.time.isoformat(),
                "user": r.user,
                "action": r.action,
                "target": r.target,
                "detail": r.detail,
            }
            for r in rows
        ]


def _prefix_of(key: str) -> str | None:
    """The lookup prefix of an API key, when ``key`` has the shape of one (``eow_<hex>_...``)."""
    if not key.startswith(KEY_PREFIX):
        return None
    prefix, sep, _secret = key[len(KEY_PREFIX) :].partition("_")
    return prefix if sep and _KEY_PREFIX_RE.fullmatch(prefix) else None
