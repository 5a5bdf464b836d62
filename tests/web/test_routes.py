"""The web application's routes without a browser: config.json follows the
settings, the pages are public while the data needs a key, and no path leaves
the static folder."""

from __future__ import annotations

from pathlib import Path

from eowatch.settings import Settings
from eowatch.web.routes import STATIC, web_config

from ..api.service import service, user_key


def test_config_names_the_online_base_map_when_one_is_set(tmp_path: Path) -> None:
    template = "https://tiles.example.org/{z}/{x}/{y}.png"
    with service(f"sqlite:///{tmp_path / 'a.db'}", tmp_path, web_basemap_url=template,
                 web_basemap_attribution="© Example") as (client, _access):  # fmt: skip
        config = client.get("/app/config.json").json()
    assert config["basemap"] == {"url": template, "attribution": "© Example"}
    assert (STATIC / config["outlines"]).parent.name == "world-atlas"


def test_offline_outlines_by_default() -> None:
    assert web_config(Settings())["basemap"] is None
    online = web_config(Settings(web_basemap_url="https://tiles.example/{z}/{x}/{y}.png"))
    assert online["basemap"] == {"url": "https://tiles.example/{z}/{x}/{y}.png", "attribution": ""}


def test_pages_public_data_private_and_no_escape(tmp_path: Path) -> None:
    with service(f"sqlite:///{tmp_path / 'b.db'}", tmp_path) as (client, access):
        index = client.get("/app/")
        assert index.status_code == 200 and "<title>eowatch · map</title>" in index.text
        assert index.headers["cache-control"] == "no-cache"
        assert client.get("/app/css/app.css").headers["content-type"].startswith("text/css")
        assert client.get("/app/js/ops.js").headers["content-type"].startswith("text/javascript")
        escapes = ("/app/%2e%2e/routes.py", "/app/..%2f..%2fsettings.py", "/app/js/%2e%2e/%2e%2e/__init__.py")
        for escape in escapes:
            response = client.get(escape)
            assert response.status_code == 404, escape
            assert "import" not in response.text  # an error document, never the Python file
        missing = client.get("/app/nothing-here.js")
        assert missing.status_code == 404 and "no web application file" in missing.json()["description"]
        assert client.get("/collections").status_code == 401
        headers = user_key(access, "ana", "analyst")
        assert client.get("/collections", headers=headers).status_code == 200
        # a page fetched with a bad key still answers 401: credentials sent are always checked
        assert client.get("/app/", headers={"X-API-Key": "eow_wrong"}).status_code == 401
