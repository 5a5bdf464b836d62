"""A local STAC API that serves recorded real responses, run in a subprocess.

Two kinds of dataset, both under ``/{scenario}/{dataset}``:

* cassettes (vcrpy YAML recorded from Earth Search v1): the landing page and the
  ``POST /search`` pages are replayed as recorded, with the upstream host
  rewritten to this server. Pages are matched like vcrpy does (method and
  path), the ``next`` token in the body choosing the recorded page;
* item sets (real STAC Items from files): ``/search`` (GET and POST) filters them
  by collections, intersects/bbox and datetime, and pages them with ``next``
  links (Earth Search style: POST body token, ``merge: false``).

``scenario`` injects faults: ``ok``; ``flaky-N-CODE-NONCE`` answers CODE to the
first N requests under that prefix; ``fail-CODE`` always answers CODE;
``slow-SECONDS`` waits before answering; ``garbage`` answers ``/search`` with
HTML. ``/{scenario}/token/{collection}`` is a Planetary Computer SAS token
endpoint (response shaped as the real one: ``token`` and ``msft:expiry``).

Usage: ``python stac_replay.py CONFIG.json`` prints the port, then serves.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

UPSTREAM = "https://earth-search.aws.element84.com/v1"
CONFORMANCE = [
    "https://api.stacspec.org/v1.0.0/core",
    "https://api.stacspec.org/v1.0.0/item-search",
    "https://api.stacspec.org/v1.0.0/ogcapi-features",
]


@contextmanager
def serve(config: dict[str, Any], workdir: Path) -> Iterator[str]:
    """Run the replay server for ``config`` in a subprocess; yields its base URL."""
    path = workdir / "stac_replay.json"
    path.write_text(json.dumps(config))
    from tests.http_server import server_process  # client side only: this file also runs as a script

    with server_process([sys.executable, "-u", __file__, str(path)]) as url:
        yield url


# --- server side (runs in the subprocess) -------------------------------------


def _load_cassette(path: str) -> list[dict[str, Any]]:
    import yaml

    return list(yaml.safe_load(Path(path).read_text())["interactions"])


def _parse_dt(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class State:
    def __init__(self, config: dict[str, Any]) -> None:
        self.cassettes = {name: _load_cassette(p) for name, p in config.get("cassettes", {}).items()}
        self.landing = next(
            i["response"]["body"]["string"]
            for i in _load_cassette(config["landing_cassette"])
            if i["request"]["method"] == "GET"
        )
        self.items = {name: json.loads(Path(p).read_text()) for name, p in config.get("datasets", {}).items()}
        self.counters: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, scenario: str) -> int:
        with self.lock:
            self.counters[scenario] = self.counters.get(scenario, 0) + 1
            return self.counters[scenario]


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass

    def _send(self, code: int, body: str | bytes, ctype: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._handle("POST", self.rfile.read(length) if length else b"")

    def _handle(self, method: str, raw: bytes) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        if len(parts) < 2:
            return self._send(404, '{"code": "NotFound"}')
        scenario, dataset, rest = parts[0], parts[1], parts[2:]
        base = f"http://{self.headers['Host']}/{scenario}/{dataset}"
        count = self.state.hit(scenario)
        kind, *args = scenario.split("-")
        if kind == "flaky" and count <= int(args[0]):
            return self._send(int(args[1]), '{"code": "ServiceUnavailable", "description": "try again"}')
        if kind == "fail":
            return self._send(int(args[0]), '{"code": "InternalServerError", "description": "boom"}')
        if kind == "slow":
            time.sleep(float(args[0]))
        if kind == "garbage" and rest == ["search"]:
            return self._send(200, "<html><body>Gateway error</body></html>", "text/html")
        if dataset == "token":
            expiry = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            token = f"st=2024-04-19&se={expiry[:10]}&sp=rl&sv=2021-06-08&sr=c&skoid=replay&sig=replay%3D"
            return self._send(200, json.dumps({"msft:expiry": expiry, "token": token}))
        body: dict[str, Any] = json.loads(raw) if raw else {}
        if not rest:
            return self._landing(dataset, base)
        if rest == ["conformance"]:
            return self._send(200, json.dumps({"conformsTo": CONFORMANCE}))
        if rest == ["search"] and dataset in self.state.cassettes:
            return self._replay(dataset, method, body, base)
        if rest == ["search"] and dataset in self.state.items:
            params = body if method == "POST" else _query_params(url.query)
            return self._search(dataset, method, params, base)
        return self._send(404, '{"code": "NotFound"}')

    def _landing(self, dataset: str, base: str) -> None:
        if dataset in self.state.cassettes:
            return self._send(200, self.state.landing.replace(UPSTREAM, base))
        landing = {
            "type": "Catalog", "stac_version": "1.0.0", "id": dataset, "description": "replay",
            "conformsTo": CONFORMANCE,
            "links": [
                {"rel": "self", "href": base, "type": "application/json"},
                {"rel": "root", "href": base, "type": "application/json"},
                {"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": "GET"},
                {"rel": "search", "href": f"{base}/search", "type": "application/geo+json", "method": "POST"},
            ],
        }  # fmt: skip
        return self._send(200, json.dumps(landing))

    def _replay(self, dataset: str, method: str, body: dict[str, Any], base: str) -> None:
        token = body.get("next")
        for interaction in self.state.cassettes[dataset]:
            req = interaction["request"]
            if req["method"] != method or not req["uri"].endswith("/search"):
                continue
            recorded = json.loads(req["body"] or "{}")
            if recorded.get("next") == token:
                text = interaction["response"]["body"]["string"]
                return self._send(interaction["response"]["status"]["code"], text.replace(UPSTREAM, base))
        return self._send(
            404, json.dumps({"code": "NotFound", "description": f"no recording for next={token}"})
        )

    def _search(self, dataset: str, method: str, params: dict[str, Any], base: str) -> None:
        from shapely.geometry import box, shape

        items = self.state.items[dataset]
        collections = params.get("collections")
        if isinstance(collections, str):
            collections = collections.split(",")
        area = None
        if params.get("intersects"):
            area = shape(params["intersects"])
        elif params.get("bbox"):
            bbox = params["bbox"]
            area = box(*(float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)))
        start = end = None
        if params.get("datetime"):
            a, _, b = str(params["datetime"]).partition("/")
            start, end = (
                (_parse_dt(a) if a not in ("", "..") else None),
                (_parse_dt(b) if b not in ("", "..") else None),
            )
        selected = []
        for item in items:
            if not isinstance(item, dict):
                selected.append(item)  # malformed: served as is
                continue
            if collections and item.get("collection") not in collections:
                continue
            if (
                area is not None
                and item.get("bbox")
                and not box(*item["bbox"][:2], *item["bbox"][-2:]).intersects(area)
            ):
                continue
            when = _parse_dt((item.get("properties") or {}).get("datetime") or "")
            if when is not None and ((start and when < start) or (end and when > end)):
                continue
            selected.append(item)
        selected.sort(key=_sort_key, reverse=True)
        limit = int(params.get("limit") or 10)
        offset = int(params.get("next") or 0)
        page = selected[offset : offset + limit]
        links: list[dict[str, Any]] = [{"rel": "root", "href": base, "type": "application/json"}]
        if offset + limit < len(selected):
            nxt = str(offset + limit)
            if method == "POST":
                links.append({"rel": "next", "href": f"{base}/search", "method": "POST", "merge": False,
                              "body": {**params, "next": nxt}})  # fmt: skip
            else:
                query = {**{k: v for k, v in params.items() if k != "next"}, "next": nxt}
                links.append({"rel": "next", "href": f"{base}/search?{urlencode(query)}", "method": "GET"})
        out = {"type": "FeatureCollection", "features": page, "links": links,
               "numberMatched": len(selected), "numberReturned": len(page)}  # fmt: skip
        return self._send(200, json.dumps(out), "application/geo+json")


def _sort_key(item: Any) -> str:
    return str((item.get("properties") or {}).get("datetime")) if isinstance(item, dict) else ""


def _query_params(query: str) -> dict[str, Any]:
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
    if "intersects" in params:
        params["intersects"] = json.loads(params["intersects"])
    return params


def main(config_path: str) -> None:
    Handler.state = State(json.loads(Path(config_path).read_text()))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1])
