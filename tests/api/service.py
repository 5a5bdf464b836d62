"""Helpers of the service tests: settings with the service fields, keys for
each role, an RSA identity provider (JWKS + signed tokens) and a loopback
server in a subprocess."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from eowatch.api import create_app
from eowatch.results import ResultsCatalog
from eowatch.services import Services
from eowatch.settings import Settings
from eowatch.store.auth import AccessStore

from ..http_server import stop_process, wait_until_serving

REPO = Path(__file__).resolve().parents[2]


class ServiceSettings(Settings):
    """The service's settings as the tests use them (auth on)."""

    auth_required: bool = True


@contextmanager
def service(database: str, tmp: Path, **fields: Any) -> Iterator[tuple[TestClient, AccessStore]]:
    """A TestClient on a fresh app over ``database`` and the app's access store."""
    settings = ServiceSettings(output_dir=tmp, **fields)
    app = create_app(Services(settings, results=ResultsCatalog(database)))
    try:
        with TestClient(app) as client:
            yield client, app.state.access
    finally:
        app.state.catalog.close()


def user_key(access: AccessStore, name: str, role: str, organisation: str = "") -> dict[str, str]:
    """Headers with a new key of a new user."""
    access.create_user(name, role, organisation)
    return {"Authorization": f"Bearer {access.create_key(name)}"}


class IdentityProvider:
    """An RSA key pair, its JWKS, and tokens signed with it."""

    def __init__(self, kid: str = "test-key") -> None:
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def token(self, sub: str = "alice", aud: str = "eowatch", ttl: float = 300, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "aud": aud, "iat": now, "exp": now + int(ttl), **claims}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": self.kid})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVE = (
    "import sys; from tests.api.service import ServiceSettings; from eowatch.cli.serve import run_server; "
    "from eowatch.services import Services; "
    "run_server(Services(ServiceSettings()), '127.0.0.1', int(sys.argv[1]), 'warning')"
)


@contextmanager
def live_server(env: dict[str, str]) -> Iterator[str]:
    """``eowatch serve`` (with ServiceSettings from ``env``) in a subprocess on loopback."""
    import os

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(port)],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc)
        yield url
    finally:
        stop_process(proc)
