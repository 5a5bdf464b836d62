"""End to end over real HTTP on loopback: the service runs in a subprocess
(``eowatch serve``'s ``run_server``; GDAL calls hold the GIL, so no in-process
server thread), keys come from the ``eowatch admin`` commands, a process runs
asynchronously on the bundled pair, its product is found in STAC search and
tiled; then a schemathesis fuzz run against the served OpenAPI document."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .service import REPO, live_server

ADMIN = "from eowatch.cli.serve import admin; admin()"


def _admin(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", ADMIN, *args],
        env={**os.environ, **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
def env(paris: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tmp = tmp_path_factory.mktemp("e2e")
    return {
        "EOWATCH_OUTPUT_DIR": str(tmp / "out"),
        "EOWATCH_DATABASE_URL": f"sqlite:///{tmp / 'service.db'}",
        "EOWATCH_AUTH_REQUIRED": "true",
        "EOWATCH_PROCESS_INPUT_ROOTS": json.dumps([str(paris)]),
    }


@pytest.fixture(scope="module")
def server(env: dict[str, str]) -> Iterator[str]:
    with live_server(env) as url:
        yield url


@pytest.fixture(scope="module")
def admin_key(env: dict[str, str]) -> str:
    key = _admin(env, "create-user", "root", "--role", "admin", "--with-key")
    assert key.startswith("eow_")
    return key


def test_async_process_to_search_to_tile(
    server: str, env: dict[str, str], admin_key: str, paris: Path
) -> None:
    key = _admin(env, "create-user", "ana", "--role", "analyst", "--with-key")
    analyst = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server, timeout=60) as http:
        assert http.get("/collections").status_code == 401
        body = {
            "inputs": {"before": str(paris / "imgs_1"), "after": str(paris / "imgs_2"), "collection": "paris"}
        }
        resp = http.post(
            "/processes/s2-imad/execution", json=body, headers={**analyst, "Prefer": "respond-async"}
        )
        assert resp.status_code == 201, resp.text
        location = resp.headers["location"]
        assert location.startswith(f"{server}/jobs/") and resp.json()["status"] in ("accepted", "running")
        progress, deadline = [], time.monotonic() + 90
        while True:
            status = http.get(location, headers=analyst).json()
            progress.append(status["progress"])
            if status["status"] in ("successful", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["status"] == "successful", status
        assert progress == sorted(progress) and progress[-1] == 100
        results = http.get(f"{location}/results", headers=analyst).json()
        item = http.get(results["item"]["href"], headers=analyst).json()
        found = http.get(f"/search?ids={item['id']}&collections=paris", headers=analyst).json()
        assert [f["id"] for f in found["features"]] == [item["id"]]
        minx, miny, maxx, maxy = item["bbox"]
        import morecantile

        t = morecantile.tms.get("WebMercatorQuad").tile((minx + maxx) / 2, (miny + maxy) / 2, 14)
        tile = http.get(f"{results['item']['href']}/tiles/change_map/{t.z}/{t.x}/{t.y}.png", headers=analyst)
        assert tile.status_code == 200 and tile.content[:8] == b"\x89PNG\r\n\x1a\n"

        # a partner sees the collection only while its organisation holds the grant
        partner = {
            "X-API-Key": _admin(
                env, "create-user", "pia", "--role", "partner", "--organisation", "acme", "--with-key"
            )
        }
        assert http.get(results["item"]["href"], headers=partner).status_code == 404
        _admin(env, "grant", "acme", "paris")
        assert http.get(results["item"]["href"], headers=partner).status_code == 200
        assert http.get(results["change_map"]["href"], headers=partner).status_code == 200
        _admin(env, "revoke", "acme", "paris")
        assert http.get(results["item"]["href"], headers=partner).status_code == 404
        assert http.get("/search?collections=paris", headers=partner).json()["numberMatched"] == 0

        metrics = http.get("/metrics").text
        assert 'eowatch_jobs{kind="process",state="succeeded"} 1.0' in metrics
        assert 'eowatch_job_duration_seconds_count{outcome="successful",preset="s2-imad"} 1.0' in metrics
        assert http.get("/readyz").json()["status"] == "ready"


@pytest.mark.skipif(
    not shutil.which("schemathesis", path=str(Path(sys.executable).parent)),
    reason="schemathesis is not installed",
)
@pytest.mark.parametrize("role", ["admin", "analyst", "partner"])
def test_schemathesis_finds_no_server_errors(
    server: str, env: dict[str, str], admin_key: str, role: str
) -> None:
    """Every operation of the OpenAPI document, as each role: valid and invalid data
    (mode all), the coverage, fuzzing and stateful phases; no answer may be a 5xx."""
    new_user = ("create-user", f"fuzz-{role}", "--role", role, "--organisation", "acme", "--with-key")
    key = admin_key if role == "admin" else _admin(env, *new_user)
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"), "run", f"{server}/openapi.json",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--mode", "all", "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", "20", "--seed", "1", "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=300, cwd=REPO, env={**os.environ, "NO_COLOR": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "Stateful" in done.stdout
