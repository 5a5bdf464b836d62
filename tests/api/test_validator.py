"""The public STAC API conformance checker, run against the live server.

The server runs in a subprocess (``eowatch catalog serve``): GDAL calls hold
the GIL, so an in-process server thread could starve. The validator runs in
another subprocess through ``stac_validator_offline.py``, which answers its
JSON-schema downloads offline (see that module for how and what)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ..http_server import stop_process, wait_until_serving

WRAPPER = Path(__file__).with_name("stac_validator_offline.py")
FOOTPRINT = (
    '{"type":"Polygon","coordinates":[[[2.30,48.79],[2.36,48.79],[2.36,48.85],[2.30,48.85],[2.30,48.79]]]}'
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def live_server(database: str) -> Iterator[str]:
    port = _free_port()
    code = "from eowatch.cli.catalog import catalog; catalog()"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database",
            database,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # The validator checks the public STAC API, not access control (tested in test_auth).
        env={**os.environ, "EOWATCH_AUTH_REQUIRED": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, path="/")
        yield url
    finally:
        stop_process(proc)


def test_stac_api_validator_reports_no_errors(live_server: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(WRAPPER),
            "--root-url",
            live_server,
            "--conformance",
            "core",
            "--conformance",
            "features",
            "--conformance",
            "item-search",
            "--collection",
            "urban",
            "--geometry",
            FOOTPRINT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = result.stdout[result.stdout.find("Warnings:") :]
    offline = sorted(
        {line.split()[1] for line in result.stderr.splitlines() if line.startswith("OFFLINE-SCHEMA")}
    )
    print(report)
    print("extension schemas unavailable offline (not checked):", offline or "none")
    assert "Errors: none" in result.stdout, report + result.stderr[-3000:]
    assert result.returncode == 0, report
