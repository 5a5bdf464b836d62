"""Access control: API keys, OpenID Connect tokens, and per-collection grants
enforced identically on every catalogue path."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from eowatch.errors import AuthError, InputError, NotFoundError
from eowatch.store.auth import AccessStore, ApiKeyRow

from .service import IdentityProvider, service, user_key

FOOTPRINT = {
    "type": "Polygon",
    "coordinates": [[[2.30, 48.79], [2.36, 48.79], [2.36, 48.85], [2.30, 48.85], [2.30, 48.79]]],
}


@pytest.fixture(scope="module")
def app(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path_factory.mktemp("auth")) as pair:
        yield pair


@pytest.fixture(scope="module")
def admin(app: tuple[TestClient, AccessStore]) -> dict[str, str]:
    return user_key(app[1], "root", "admin")


def test_keys_are_stored_hashed_and_revocable(app: tuple[TestClient, AccessStore]) -> None:
    client, access = app
    access.create_user("bob", "analyst")
    key = access.create_key("bob")
    assert access.authenticate(key).role == "analyst"
    with Session(access.engine) as session:
        rows = session.scalars(select(ApiKeyRow)).all()
    assert rows and all(key not in (r.hash, r.salt, r.prefix) and len(r.hash) == 64 for r in rows)
    assert client.get("/collections", headers={"X-API-Key": key}).status_code == 200
    access.revoke_key(key.split("_")[1])
    resp = client.get("/collections", headers={"X-API-Key": key})
    assert resp.status_code == 401 and "revoked" in resp.json()["description"]
    with pytest.raises(AuthError):
        access.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B"))
    with pytest.raises(InputError, match="already exists"):
        access.create_user("bob", "analyst")
    with pytest.raises(InputError, match="organisation"):
        access.create_user("p", "partner")
    with pytest.raises(NotFoundError):
        access.create_key("nobody")


def test_credentials_required(app: tuple[TestClient, AccessStore]) -> None:
    client, _ = app
    for path in ("/", "/collections", "/search", "/collections/urban/items", "/processes", "/jobs"):
        resp = client.get(path)
        assert resp.status_code == 401, path
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert "Authorization: Bearer" in resp.json()["description"]
    for path in ("/conformance", "/openapi.json", "/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200, path
    assert client.get("/", headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer eow_nope_nope"}).status_code == 401
    assert client.get("/", headers={"X-API-Key": "garbage"}).status_code == 401


def _paths(client: TestClient, headers: dict[str, str], coll: str) -> dict[str, int]:
    """What a caller sees of ``coll`` through every catalogue path."""
    admin_item = client.get(f"/collections/{coll}/items", headers=headers).json()
    seen: dict[str, int] = {}
    body = client.get("/", headers=headers).json()
    seen["landing"] = sum(link["href"].endswith(f"/collections/{coll}") for link in body["links"])
    body = client.get("/collections", headers=headers).json()
    seen["collections"] = sum(c["id"] == coll for c in body["collections"])
    seen["collection"] = client.get(f"/collections/{coll}", headers=headers).status_code
    seen["items"] = admin_item.get("numberMatched", -1)
    seen["search_get"] = client.get(f"/search?collections={coll}", headers=headers).json()["numberMatched"]
    all_get = client.get("/search?limit=100", headers=headers).json()["features"]
    seen["search_all"] = sum(f["collection"] == coll for f in all_get)
    post = client.post("/search", json={"intersects": FOOTPRINT, "limit": 100}, headers=headers).json()
    seen["search_post"] = sum(f["collection"] == coll for f in post["features"])
    return seen


def test_partner_sees_only_granted_collections(
    app: tuple[TestClient, AccessStore], admin: dict[str, str]
) -> None:
    client, access = app
    partner = user_key(access, "pia", "partner", "acme")
    full = _paths(client, admin, "urban")
    assert full == {
        "landing": 1,
        "collections": 1,
        "collection": 200,
        "items": 2,
        "search_get": 2,
        "search_all": 2,
        "search_post": 2,
    }
    item = client.get("/collections/urban/items", headers=admin).json()["features"][0]
    item_path = f"/collections/urban/items/{item['id']}"
    direct = [item_path, f"{item_path}/assets/change_map", f"{item_path}/tiles/change_map/10/518/352.png"]
    assert client.get(f"{item_path}/assets/change_map", headers=admin).status_code == 200

    def hidden() -> None:
        assert _paths(client, partner, "urban") == {
            "landing": 0,
            "collections": 0,
            "collection": 404,
            "items": -1,
            "search_get": 0,
            "search_all": 0,
            "search_post": 0,
        }
        for path in direct:
            resp = client.get(path, headers=partner)
            assert resp.status_code == 404, path
            # the same answer as a collection that does not exist
            ghost = client.get(path.replace("/urban/", "/ghost/"), headers=partner)
            assert resp.json()["description"] == ghost.json()["description"].replace("ghost", "urban")

    hidden()
    access.grant("acme", "urban")
    assert _paths(client, partner, "urban") == full
    assert _paths(client, partner, "water")["collections"] == 0  # only what was granted
    for path in direct[:2]:
        assert client.get(path, headers=partner).status_code == 200, path
    access.revoke("acme", "urban")  # takes effect on the very next request
    hidden()
    actions = [e["action"] for e in access.audit_log()]
    assert {"grant", "revoke", "download", "create-user", "create-key"} <= set(actions)


@pytest.fixture(scope="module")
def idp() -> IdentityProvider:
    return IdentityProvider()


def test_oidc_tokens_from_a_jwks_file(database: str, tmp_path: Path, idp: IdentityProvider) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks()))
    with service(database, tmp_path, oidc_jwks_url=str(jwks), oidc_audience="eowatch") as (client, access):
        access.grant("acme", "water")
        acme = {"Authorization": f"Bearer {idp.token(organisation='acme')}"}
        good = client.get("/collections", headers=acme)
        assert good.status_code == 200 and [c["id"] for c in good.json()["collections"]] == ["water"]
        analyst = idp.token(eowatch_role="analyst")
        assert (
            len(
                client.get("/collections", headers={"Authorization": f"Bearer {analyst}"}).json()[
                    "collections"
                ]
            )
            == 2
        )
        cases = {
            "expired": idp.token(ttl=-60),
            "not meant for this service": idp.token(aud="someone-else"),
            "does not list": IdentityProvider(kid="other").token(),
            "not valid": IdentityProvider().token(),  # same kid, another key: bad signature
            "unknown role": idp.token(eowatch_role="root"),
        }
        for reason, token in cases.items():
            resp = client.get("/collections", headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 401, reason
            assert reason in resp.json()["description"], (reason, resp.json())


def test_oidc_tokens_from_a_jwks_url(database: str, tmp_path: Path, idp: IdentityProvider) -> None:
    body = json.dumps(idp.jwks()).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        with service(database, tmp_path, oidc_jwks_url=url, oidc_audience="eowatch") as (client, _):
            token = idp.token(eowatch_role="admin")
            assert client.get("/collections", headers={"Authorization": f"Bearer {token}"}).status_code == 200
            expired = idp.token(ttl=-60)
            assert client.get("/", headers={"Authorization": f"Bearer {expired}"}).status_code == 401
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_tokens_refused_without_identity_provider(
    app: tuple[TestClient, AccessStore], idp: IdentityProvider
) -> None:
    client, _ = app
    resp = client.get("/", headers={"Authorization": f"Bearer {idp.token()}"})
    assert resp.status_code == 401 and "identity provider" in resp.json()["description"]
