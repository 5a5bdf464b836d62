"""Hardening of authentication: a flood of bogus credentials neither grows the audit
log nor gets its credentials checked (429 per client address, failures aggregated,
nothing of the credential stored but a digest), and an OpenID Connect subject is
never mistaken for the local user of the same name."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.requests import Request

from eowatch.api.auth import FailedLogins, client_address, oidc_name
from eowatch.errors import InputError
from eowatch.store.auth import AccessStore, AuditRow

from ..databases import fresh_database
from .service import IdentityProvider, free_port, service, user_key

PARIS_AOI = {
    "type": "Polygon",
    "coordinates": [[[2.31, 48.80], [2.35, 48.80], [2.35, 48.84], [2.31, 48.84], [2.31, 48.80]]],
}


class Site:
    def __init__(self, client: TestClient, access: AccessStore, idp: IdentityProvider) -> None:
        self.client, self.access, self.idp = client, access, idp

    def rows(self) -> list[AuditRow]:
        with Session(self.access.engine) as session:
            return list(session.scalars(select(AuditRow).order_by(AuditRow.id)).all())

    def count(self) -> int:
        with Session(self.access.engine) as session:
            return int(session.scalar(select(func.count()).select_from(AuditRow)) or 0)

    def events(self, action: str) -> list[dict[str, Any]]:
        return [e for e in self.access.audit_log(1000) if e["action"] == action]

    def bearer(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.idp.token(**claims)}"}


def _site(tmp_path: Path, **fields: Any) -> Iterator[Site]:
    idp = IdentityProvider()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks()))
    url = fresh_database("sqlite", tmp_path, "hardening")
    settings = {"oidc_jwks_url": str(jwks), "oidc_audience": "eowatch", "process_workers": 0, **fields}
    with service(url, tmp_path / "out", **settings) as (client, access):
        yield Site(client, access, idp)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path)


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Site]:
    """A service allowing 3 failures per 0.5 s window."""
    yield from _site(tmp_path, login_max_failures=3, login_failure_window_s=0.5)


# -- failed logins ------------------------------------------------------------------------


def test_a_flood_of_long_bogus_keys_is_refused_and_barely_logged(site: Site) -> None:
    c, access = site.client, site.access
    root = user_key(access, "root", "admin")
    before = site.count()
    bogus = "eow_" + secrets.token_hex(5000)  # 10 kB, the shape of an API key
    answers: dict[int, int] = {}
    for _ in range(1000):
        resp = c.get("/collections", headers={"X-API-Key": bogus})
        answers[resp.status_code] = answers.get(resp.status_code, 0) + 1
    assert answers == {401: 20, 429: 980}  # login_max_failures defaults to 20

    rows = site.rows()
    assert len(rows) - before <= 3  # not 1,000
    failed = site.events("login_failed")
    assert len(failed) == 1 and failed[0]["detail"]["count"] == 20
    assert failed[0]["detail"]["length"] == ">4096" and "key_prefix" not in failed[0]["detail"]
    blocked = site.events("login_blocked")
    assert len(blocked) == 1 and blocked[0]["detail"]["failures"] == 20
    dump = json.dumps([[r.user, r.action, r.target, r.detail] for r in rows])
    assert len(dump) < 5000
    for start in range(4, len(bogus) - 16, 997):  # no piece of the key, anywhere
        assert bogus[start : start + 16] not in dump

    # the address is refused, even with a valid key (not checked at all), as JSON with Retry-After
    resp = c.get("/collections", headers=root)
    assert resp.status_code == 429
    assert resp.json()["code"] == "TooManyFailedLogins" and "try again" in resp.json()["description"]
    assert 1 <= int(resp.headers["retry-after"]) <= 300
    assert c.get("/healthz").status_code == 200  # no credentials: not an attempt, not refused
    assert c.get("/collections").status_code == 401
    # another address is not
    other = TestClient(c.app, client=("203.0.113.7", 40000))
    assert other.get("/collections", headers=root).status_code == 200
    assert site.count() - before <= 4  # and its login is the only new row


def test_varied_bogus_keys_are_one_row_each_until_the_address_is_refused(strict: Site) -> None:
    c = strict.client
    codes = [c.get("/", headers={"X-API-Key": f"eow_{i:012x}_{'s' * 50}"}).status_code for i in range(50)]
    assert codes == [401] * 3 + [429] * 47
    assert len(strict.events("login_failed")) == 3 and len(strict.events("login_blocked")) == 1
    assert {e["detail"]["key_prefix"] for e in strict.events("login_failed")} == {
        f"{i:012x}" for i in range(3)
    }


def test_the_refusal_ends_with_the_window(strict: Site) -> None:
    c, access = strict.client, strict.access
    ann = user_key(access, "ann", "analyst")
    bad = {"Authorization": "Bearer eow_000000000000_wrong"}
    assert [c.get("/", headers=bad).status_code for _ in range(4)] == [401, 401, 401, 429]
    assert c.get("/", headers=ann).status_code == 429
    time.sleep(0.6)
    assert c.get("/", headers=ann).status_code == 200  # a success does not clear the count...
    assert c.get("/", headers=bad).status_code == 401  # ...the new window does
    failed = strict.events("login_failed")
    assert [e["detail"]["count"] for e in failed] == [1, 3]  # one row per window, newest first


def test_malformed_headers_and_tokens_count_too(strict: Site) -> None:
    c = strict.client
    basic = {"Authorization": "Basic " + "A" * 20_000}
    junk_jwt = {"Authorization": "Bearer eyJ" + "x" * 5000 + ".y.z"}
    expired = strict.idp.token(ttl=-60)
    headers = (basic, junk_jwt, {"Authorization": f"Bearer {expired}"})
    codes = [c.get("/", headers=h).status_code for h in headers]
    assert codes == [401, 401, 401]
    assert c.get("/", headers=strict.bearer()).status_code == 429  # a valid token is not checked either
    rows = strict.rows()
    dump = json.dumps([[r.target, r.detail] for r in rows])
    assert "A" * 64 not in dump and "x" * 64 not in dump and expired not in dump
    basic_row = next(e for e in strict.events("login_failed") if e["detail"]["via"] == "unknown credential")
    assert basic_row["detail"]["length"] == ">4096" and "sha256" not in basic_row["detail"]


def test_an_unreachable_identity_provider_is_not_held_against_the_caller(tmp_path: Path) -> None:
    idp = IdentityProvider()
    url = f"http://127.0.0.1:{free_port()}/jwks.json"  # nothing listens there
    database = fresh_database("sqlite", tmp_path, "hardening")
    with service(database, tmp_path / "out", oidc_jwks_url=url, login_max_failures=2) as (c, _):
        headers = {"Authorization": f"Bearer {idp.token()}"}
        for _ in range(4):
            resp = c.get("/", headers=headers)
            assert resp.status_code == 401 and "cannot be checked" in resp.json()["description"]


def test_free_text_of_failures_is_capped(site: Site) -> None:
    c = site.client
    long_id = "a" * 5000
    resp = c.get(f"/collections/{long_id}", headers={"X-API-Key": "eow_nope_nope"})
    assert resp.status_code == 401
    role = site.bearer(eowatch_role="r" * 10_000)
    assert c.get("/", headers=role).status_code == 401
    for row in site.rows():
        if row.action == "login_failed":
            assert len(row.target) <= 300 and len(row.detail["reason"]) <= 300, row.detail


def test_failed_logins_are_bounded_per_process() -> None:
    limiter = FailedLogins(max_failures=2, window_s=10, max_clients=100)
    assert limiter.retry_after("a", now=0) is None
    assert limiter.failed("a", now=0) == 1 and limiter.retry_after("a", now=1) is None
    assert limiter.failed("a", now=1) == 2 and limiter.retry_after("a", now=1) == 9
    assert limiter.retry_after("a", now=10) is None  # the window has passed
    assert limiter.failed("a", now=10) == 1  # a new window
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}", now=11)
    assert len(limiter._seen) == 100  # the least recent addresses are forgotten


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("testclient", "testclient"),
    ],
)
def test_failures_are_counted_per_address_or_ipv6_network(host: str, address: str) -> None:
    request = Request({"type": "http", "client": (host, 1), "headers": []})
    assert client_address(request) == address


# -- OpenID Connect subjects are not local users ------------------------------------------------


def test_an_oidc_subject_is_not_the_local_user_of_that_name(site: Site) -> None:
    c, access = site.client, site.access
    alice = user_key(access, "alice", "analyst")
    task = {"name": "rt", "aoi": PARIS_AOI, "sensors": ["s2"], "cadence": 3600}
    created = c.post("/tasks", json=task, headers=alice)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    job = c.app.state.services.queue.submit_process(  # type: ignore[attr-defined]
        "s2-cva", "alice", {"before": "b", "after": "a"}, "processes"
    )
    assert c.get(f"/jobs/{job.id}", headers=alice).status_code == 200
    assert c.get("/tasks", headers=alice).json()["numberMatched"] == 1

    impostor = site.bearer(sub="alice", eowatch_role="analyst")
    me = c.get("/whoami", headers=impostor).json()
    assert me["name"] == "oidc:/alice" and me["via"] == "oidc"
    assert c.get("/tasks", headers=impostor).json() == {"tasks": [], "numberMatched": 0}
    for key in (task_id, "rt"):
        assert c.get(f"/tasks/{key}", headers=impostor).status_code == 404
        assert c.get(f"/tasks/{key}/jobs", headers=impostor).status_code == 404
        assert c.patch(f"/tasks/{key}", json={"cadence": 7200}, headers=impostor).status_code == 404
        assert c.post(f"/tasks/{key}/pause", headers=impostor).status_code == 404
        assert c.delete(f"/tasks/{key}", headers=impostor).status_code == 404
    assert c.get("/jobs", headers=impostor).json()["jobs"] == []
    assert c.get(f"/jobs/{job.id}", headers=impostor).status_code == 404
    assert c.delete(f"/jobs/{job.id}", headers=impostor).status_code == 404
    # the OIDC user's own task of the same name is another task
    own = c.post("/tasks", json=task, headers=impostor)
    assert own.status_code == 201, own.text
    assert own.json()["owner"] == "oidc:/alice" and own.json()["id"] != task_id
    assert [t["id"] for t in c.get("/tasks", headers=alice).json()["tasks"]] == [task_id]
    assert c.get(f"/tasks/{task_id}", headers=alice).json()["state"] == "active"


def test_oidc_names_carry_the_issuer_host(site: Site) -> None:
    c = site.client
    token = site.bearer(sub="olga", iss="https://IdP.example.org:8443/realms/eo", eowatch_role="analyst")
    assert c.get("/whoami", headers=token).json()["name"] == "oidc:idp.example.org:8443/olga"
    assert oidc_name("a/b", "https://h.example") == "oidc:h.example/a/b"
    assert oidc_name("x", None) == "oidc:/x" and oidc_name("x", "plain-issuer") == "oidc:plain-issuer/x"
    long_sub = site.bearer(sub="s" * 300)
    resp = c.get("/", headers=long_sub)
    assert resp.status_code == 401 and "subject" in resp.json()["description"]
    with pytest.raises(InputError, match="reserved"):
        site.access.create_user("oidc:/alice", "analyst")
