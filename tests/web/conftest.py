"""Fixtures of the browser tests: ``eowatch serve --scheduler --worker`` in a
subprocess on loopback (SQLite database, discovery on a local catalogue holding
both dates of the bundled Paris pair), users with API keys, and Debian's
chromium driven by Playwright. Every page collects its console messages and
page errors; ``watched`` fails the test on any error among them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from eowatch.results import ResultsCatalog
from eowatch.store.auth import AccessStore

from ..api.service import free_port
from ..http_server import stop_process, wait_until_serving

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
VENDOR = REPO / "src" / "eowatch" / "web" / "static" / "vendor"
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _require(condition: bool, reason: str) -> None:
    """Skip where the browser or the web libraries are missing, but fail on CI."""
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Service:
    url: str
    database: str
    keys: dict[str, str]
    root: Path
    log: Path


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, paris: Path) -> Iterator[Service]:
    """The service with its scheduler and worker, and keys of an admin, an analyst and a partner
    (organisation ``acme``, no grant)."""
    _require((VENDOR / "leaflet" / "leaflet.js").is_file(), "web libraries missing: run scripts/setup_web.sh")
    root = tmp_path_factory.mktemp("web")
    catalog_dir = root / "catalog"
    catalog_dir.mkdir()
    shutil.copy(paris / "dates.txt", catalog_dir / "dates.txt")
    for n in (1, 2):
        shutil.copytree(paris / f"imgs_{n}", catalog_dir / f"imgs_{n}")
    database = f"sqlite:///{root / 'eowatch.db'}"
    catalog = ResultsCatalog(database)
    access = AccessStore(catalog.engine)
    keys = {}
    for name, role, org in (("ada", "admin", ""), ("ana", "analyst", "lab"), ("pat", "partner", "acme")):
        access.create_user(name, role, org)
        keys[name] = access.create_key(name)
    catalog.close()
    env = {
        **os.environ,
        "EOWATCH_OUTPUT_DIR": str(root / "out"),
        "EOWATCH_DATABASE_URL": database,
        "EOWATCH_AUTH_REQUIRED": "true",
        "EOWATCH_DISCOVERY_PROVIDER": "local",
        "EOWATCH_LOCAL_CATALOG_PATH": str(catalog_dir),
        "EOWATCH_LOCAL_CATALOG_DB": str(root / "local-index.db"),
        "EOWATCH_PAIR_MAX_GAP_DAYS": "400",  # the bundled dates are 342 days apart
        "EOWATCH_SCHEDULER_POLL_S": "1",
        "EOWATCH_WORKER_POLL_S": "0.5",
        "EOWATCH_WORKER_PROCESSES": "1",
    }
    port = free_port()
    log = root / "serve.log"
    eowatch = Path(sys.executable).with_name("eowatch")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(eowatch), "serve", "--scheduler", "--worker", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, proc, log=log)
        yield Service(url, database, keys, root, log)
    finally:
        stop_process(proc, timeout=40)  # the embedded worker may be finishing a job


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require(CHROMIUM.is_file(), f"{CHROMIUM} is missing: run scripts/setup_web.sh (installs chromium)")
    from playwright.sync_api import sync_playwright

    for old in ARTIFACTS.glob("*.png"):  # screenshots of this run only
        old.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class WatchedPage:
    """A page with everything it reported: console messages, uncaught errors and responses."""

    page: Any
    console: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    responses: list[Any] = field(default_factory=list)

    def shot(self, name: str) -> Path:
        """A full-page screenshot in test-artifacts/web/ (names start with the step number)."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def console_errors(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """Console errors and page errors, except messages containing one of ``allowed``."""
        found = [f"console: {m.text} ({m.location.get('url')})" for m in self.console if m.type == "error"]
        found += [f"pageerror: {e}" for e in self.errors]
        return [m for m in found if not any(a in m for a in allowed)]


@pytest.fixture
def watched(browser: Any) -> Iterator[Any]:
    """A factory of watched pages in fresh browser contexts (own sessionStorage each)."""
    opened: list[tuple[Any, WatchedPage]] = []

    def open_page() -> WatchedPage:
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page = context.new_page()
        # generous: a shared 2-core machine can stall a first page load for many seconds
        page.set_default_timeout(60_000)
        page.set_default_navigation_timeout(60_000)
        watched = WatchedPage(page)
        page.on("console", lambda message: watched.console.append(message))
        page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
        page.on("response", lambda response: watched.responses.append(response))
        opened.append((context, watched))
        return watched

    yield open_page
    for context, _page in opened:
        context.close()
