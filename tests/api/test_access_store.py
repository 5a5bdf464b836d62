"""The users/keys/grants/audit and job tables on both database servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from eowatch.errors import AuthError, InputError, NotFoundError
from eowatch.store import auth as auth_module
from eowatch.store import make_engine
from eowatch.store.auth import AccessStore

from ..databases import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(fresh_database(request.param, tmp_path))
    yield eng
    eng.dispose()


def test_access_store(engine: Engine) -> None:
    access = AccessStore(engine)
    access.create_user("root", "admin")
    access.create_user("pia", "partner", "acme")
    key = access.create_key("pia")
    who = access.authenticate(key)
    assert (who.name, who.role, who.organisation) == ("pia", "partner", "acme")
    assert access.visible_collections(access.get_user("root")) is None
    assert access.visible_collections(who) == frozenset()
    access.grant("acme", "urban")
    access.grant("acme", "urban")  # idempotent
    assert access.visible_collections(who) == {"urban"}
    access.revoke("acme", "urban")
    assert access.visible_collections(who) == frozenset()
    with pytest.raises(NotFoundError):
        access.revoke("acme", "urban")
    access.revoke_key(key)
    with pytest.raises(AuthError):
        access.authenticate(key)
    assert [e["action"] for e in access.audit_log(3)] == ["revoke-key", "revoke", "grant"]


def test_verified_keys_skip_scrypt(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key verified once is recognised without re-running scrypt; a revoked key or a
    different secret under the same prefix is still refused at once."""
    access = AccessStore(engine)
    access.create_user("ana", "analyst")
    key = access.create_key("ana")
    access.authenticate(key)
    calls: list[str] = []
    original = auth_module._hash
    monkeypatch.setattr(auth_module, "_hash", lambda k, salt: calls.append(k) or original(k, salt))
    assert access.authenticate(key).name == "ana"
    assert calls == []  # remembered
    forged = key[: key.rindex("_") + 1] + "x" * 32
    with pytest.raises(AuthError):
        access.authenticate(forged)
    assert calls == [forged]  # an unknown secret is hashed, and refused
    access.revoke_key(key)
    with pytest.raises(AuthError):
        access.authenticate(key)


def test_oidc_names_are_reserved_and_odd_keys_are_not_looked_up(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = AccessStore(engine)
    with pytest.raises(InputError, match="reserved for OpenID Connect"):
        access.create_user("oidc:idp.example.org/alice", "analyst")
    with pytest.raises(InputError, match="at most 256"):
        access.create_user("x" * 257, "analyst")
    access.create_user("ana", "analyst")
    key = access.create_key("ana")
    calls: list[str] = []
    original = auth_module._hash
    monkeypatch.setattr(auth_module, "_hash", lambda k, salt: calls.append(k) or original(k, salt))
    for odd in (key + "x" * 300, key.replace("eow_", "eow_" + "ab" * 20, 1), "eow_NOTHEX_x"):
        with pytest.raises(AuthError):
            access.authenticate(odd)
    assert calls == []  # refused without a lookup or a hash


def test_audit_events_can_be_updated(engine: Engine) -> None:
    access = AccessStore(engine)
    event = access.audit("-", "login_failed", "/x", {"count": 1})
    access.audit("-", "other")
    access.update_audit(event, {"count": 7})
    access.update_audit(event + 1000, {"count": 9})  # none such: nothing happens
    assert [e["detail"] for e in access.audit_log(2)] == [{}, {"count": 7}]
