"""Sign-in and its audit trail: ``/whoami``, ``login`` rows (first use of a
credential per window), ``login_failed`` rows that never hold the key, and the
admins' ``/audit`` listing. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from eowatch.store.auth import AccessStore

from ..databases import fresh_database
from .service import IdentityProvider, service, user_key


class Site:
    def __init__(self, client: TestClient, access: AccessStore, idp: IdentityProvider) -> None:
        self.client, self.access, self.idp = client, access, idp

    def events(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.access.audit_log(1000) if e["action"] == action]


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    idp = IdentityProvider()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks()))
    url = fresh_database(request.param, tmp_path, "api_audit")
    with service(url, tmp_path / "out", oidc_jwks_url=str(jwks), oidc_audience="eowatch") as (client, access):
        yield Site(client, access, idp)


def test_whoami_names_the_caller_and_logs_the_sign_in(site: Site) -> None:
    c, access = site.client, site.access
    root = user_key(access, "root", "admin")
    pia = user_key(access, "pia", "partner", "acme")
    access.grant("acme", "urban")
    access.grant("acme", "floods")

    me = {"name": "root", "role": "admin", "organisation": "", "collections": None, "via": "api-key"}
    assert c.get("/whoami", headers=root).json() == me
    assert c.get("/whoami", headers=pia).json() == {
        "name": "pia", "role": "partner", "organisation": "acme", "collections": ["floods", "urban"],
        "via": "api-key"}  # fmt: skip
    token = site.idp.token(
        sub="olga", iss="https://Login.example.org/realms/eo", eowatch_role="analyst", organisation="esa"
    )
    who = c.get("/whoami", headers={"Authorization": f"Bearer {token}"}).json()
    assert who == {
        "name": "oidc:login.example.org/olga",  # namespaced by issuer host: never a local user's name
        "role": "analyst",
        "organisation": "esa",
        "collections": None,
        "via": "oidc",
    }

    logins = site.events("login")
    assert [e["user"] for e in logins] == ["oidc:login.example.org/olga", "pia", "root"]  # newest first
    assert logins[0]["detail"]["via"] == "oidc" and logins[0]["target"] == "/whoami"
    # a second sign-in is logged again (the web app calls /whoami once per sign-in)...
    c.get("/whoami", headers=root)
    assert len(site.events("login")) == 4
    # ...but plain use of a credential is not logged at every request
    for _ in range(3):
        assert c.get("/collections", headers=root).status_code == 200
    assert len(site.events("login")) == 4


def test_first_use_of_a_credential_per_window_is_a_login(site: Site) -> None:
    c, access = site.client, site.access
    ann = user_key(access, "ann", "analyst")
    for _ in range(3):
        assert c.get("/collections", headers=ann).status_code == 200
    rows = [e for e in site.events("login") if e["user"] == "ann"]
    assert len(rows) == 1 and rows[0]["target"] == "/collections" and rows[0]["detail"]["via"] == "api-key"

    site.client.app.state.login_audit.window_s = 0.2  # type: ignore[attr-defined]
    time.sleep(0.3)
    c.get("/collections", headers=ann)
    c.get("/collections", headers=ann)
    assert len([e for e in site.events("login") if e["user"] == "ann"]) == 2


def test_failed_authentications_are_logged_without_the_key(site: Site) -> None:
    c, access = site.client, site.access
    user_key(access, "kim", "analyst")
    good = access.create_key("kim")
    prefix = good.split("_")[1]
    wrong = good[:-2] + ("zz" if not good.endswith("zz") else "yy")
    assert c.get("/collections", headers={"Authorization": f"Bearer {wrong}"}).status_code == 401
    assert c.get("/collections", headers={"X-API-Key": "eow_000000000000_nothing"}).status_code == 401
    assert c.get("/collections", headers={"Authorization": "Basic a2ltOnB3"}).status_code == 401
    expired = site.idp.token(sub="olga", ttl=-60)
    assert c.get("/collections", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    access.revoke_key(prefix)
    assert c.get("/collections", headers={"X-API-Key": good}).status_code == 401
    assert c.get("/collections").status_code == 401  # no credentials: not an attempt, not logged

    failed = site.events("login_failed")
    assert len(failed) == 5
    revoked, token, basic, unknown, mistyped = failed  # newest first
    assert mistyped["detail"]["key_prefix"] == prefix and "not valid" in mistyped["detail"]["reason"]
    assert mistyped["detail"]["sha256"] == hashlib.sha256(wrong.encode()).hexdigest()[:16]
    assert mistyped["detail"]["length"] == "<=64" and mistyped["detail"]["count"] == 1
    assert unknown["detail"]["key_prefix"] == "000000000000"
    assert basic["detail"]["via"] == "unknown credential" and "Bearer" in basic["detail"]["reason"]
    assert "sha256" not in basic["detail"]  # maybe a password: not even a digest of it
    assert token["detail"]["via"] == "oidc" and "expired" in token["detail"]["reason"]
    assert revoked["detail"]["key_prefix"] == prefix
    assert revoked["detail"]["sha256"] == hashlib.sha256(good.encode()).hexdigest()[:16]
    everything = json.dumps(access.audit_log(1000))
    for secret in (good, wrong, good.split("_", 2)[2], expired):
        assert secret not in everything
    assert not [e for e in site.events("login") if e["user"] == "kim"]


def test_audit_listing_is_for_admins(site: Site) -> None:
    c, access = site.client, site.access
    root = user_key(access, "root", "admin")
    ann = user_key(access, "ann", "analyst")
    pia = user_key(access, "pia", "partner", "acme")
    assert c.get("/audit", headers=ann).status_code == 403
    assert c.get("/audit", headers=pia).status_code == 403
    events = c.get("/audit", headers=root).json()["events"]
    assert events[0]["action"] == "login" and events[0]["user"] == "root"  # this very request
    assert {"create-user", "create-key", "login"} <= {e["action"] for e in events}
    times = [e["time"] for e in events]
    assert times == sorted(times, reverse=True)
    assert len(c.get("/audit?limit=2", headers=root).json()["events"]) == 2
    assert c.get("/audit?limit=0", headers=root).status_code == 400
