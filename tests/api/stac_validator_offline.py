"""Run the real ``stac-api-validator`` command line with its JSON-schema
downloads answered offline.

stac-validator (used by stac-api-validator and stac-check) downloads the STAC
JSON schemas at run time, and this machine has no internet. Every schema fetch
goes through ``stac_validator.utilities.fetch_and_parse_file``; this wrapper
answers it, in order, from:

1. the STAC 1.1.0 core and GeoJSON schemas shipped inside pystac
   (``pystac/validation/jsonschemas``), under their canonical URLs;
2. a schema cache folder (``EOWATCH_STAC_SCHEMA_CACHE``, default
   ``~/.cache/eowatch/stac-schemas``) laid out as ``<host>/<path>``, which a
   machine with internet fills by itself (the file is saved on the first fetch);
3. the network;
4. for STAC *extension* schemas only (``stac-extensions.github.io``) that none
   of the above can provide: an open schema (``{}``), and the URL is reported
   on stderr as ``OFFLINE-SCHEMA <url>`` so the test can show what was not
   checked. Core schemas are never replaced: a missing one is an error.

Everything else (the requests to the API, the conformance checks, pystac
hydration, stac-check) is the validator's own code, unchanged.
Usage: ``python stac_validator_offline.py <stac-api-validator arguments>``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pystac
from stac_validator import utilities

_PYSTAC_SCHEMAS = Path(pystac.__file__).parent / "validation" / "jsonschemas"
_CORE = "https://schemas.stacspec.org/v1.1.0/"
_CACHE = Path(
    os.environ.get("EOWATCH_STAC_SCHEMA_CACHE", Path.home() / ".cache" / "eowatch" / "stac-schemas")
)
_original_fetch = utilities.fetch_and_parse_file
_memo: dict[str, Any] = {}


def _bundled(url: str) -> Path | None:
    if url.startswith(_CORE) and "/json-schema/" in url:
        return _PYSTAC_SCHEMAS / "stac-spec" / "v1.1.0" / url.rsplit("/", 1)[1]
    if url.startswith("https://geojson.org/schema/"):
        return _PYSTAC_SCHEMAS / "geojson" / url.rsplit("/", 1)[1]
    return None


def _cache_path(url: str) -> Path:
    parsed = urlparse(url)
    return _CACHE / parsed.netloc / parsed.path.lstrip("/")


def fetch(input_path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    url = input_path.split("#", 1)[0]
    if not url.startswith(("http://", "https://")):
        return _original_fetch(input_path, headers)  # type: ignore[no-any-return]
    if url in _memo:
        return _memo[url]  # type: ignore[no-any-return]
    for path in (_bundled(url), _cache_path(url)):
        if path is not None and path.is_file():
            _memo[url] = json.loads(path.read_text())
            return _memo[url]  # type: ignore[no-any-return]
    try:
        data = _original_fetch(input_path, headers)
    except Exception:
        if urlparse(url).netloc != "stac-extensions.github.io":
            raise
        print(f"OFFLINE-SCHEMA {url}", file=sys.stderr, flush=True)
        data = {}
    else:
        if "schema" in url:
            cached = _cache_path(url)
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(data))
    _memo[url] = data
    return data  # type: ignore[no-any-return]


def main() -> None:
    utilities.fetch_and_parse_file = fetch
    from stac_api_validator.__main__ import main as validator_main

    validator_main(prog_name="stac-api-validator")


if __name__ == "__main__":
    main()
