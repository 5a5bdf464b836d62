"""Standard tiles for stock clients: a TileJSON whose XYZ URLs are signed for the caller,
so GDAL (through rasterio), QGIS, Leaflet or OpenLayers need no header; no-change pixels
transparent in the PNG itself; forged, expired or misused signatures refused; grants
checked on every tile; cache lifetimes within the signature's."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image
from rasterio.windows import from_bounds

from eowatch.api.signing import tile_scope
from eowatch.store.auth import AccessStore, Principal

from .service import live_server, service, user_key

pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
TMS = morecantile.tms.get("WebMercatorQuad")
KEY = "a-test-signing-key-0123456789abcdef"


@pytest.fixture(scope="module")
def app(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path_factory.mktemp("signed"), tile_signing_key=KEY, tile_cache_s=60) as pair:
        yield pair


@pytest.fixture(scope="module")
def admin(app: tuple[TestClient, AccessStore]) -> dict[str, str]:
    return user_key(app[1], "tilejson-root", "admin")


@pytest.fixture(scope="module")
def item(app: tuple[TestClient, AccessStore], admin: dict[str, str]) -> dict:
    return app[0].get("/collections/urban/items?limit=1", headers=admin).json()["features"][0]


def _tilejson(client: TestClient, item: dict, headers: dict[str, str], query: str = "") -> httpx.Response:
    return client.get(
        f"/collections/urban/items/{item['id']}/tiles/change_map/tilejson.json{query}", headers=headers
    )


def _tile(template: str, item: dict, zoom: int = 14) -> str:
    minx, miny, maxx, maxy = item["bbox"]
    t = TMS.tile((minx + maxx) / 2, (miny + maxy) / 2, zoom)
    url = template.replace("{z}", str(t.z)).replace("{x}", str(t.x)).replace("{y}", str(t.y))
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"  # the TestClient's server: path and query


def _rgba(resp: httpx.Response) -> np.ndarray:
    assert resp.status_code == 200, resp.text
    return np.asarray(Image.open(io.BytesIO(resp.content)).convert("RGBA"))


def test_tilejson_gives_signed_urls_that_need_no_header(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    client, _ = app
    doc = _tilejson(client, item, admin).json()
    assert doc["tilejson"] == "3.0.0" and doc["scheme"] == "xyz"
    assert 0 <= doc["minzoom"] <= doc["maxzoom"] <= 24
    west, south, east, north = doc["bounds"]
    minx, miny, maxx, maxy = item["bbox"]
    assert west <= minx + 1e-3 and east >= maxx - 1e-3 and south <= miny + 1e-3 and north >= maxy - 1e-3
    (template,) = doc["tiles"]
    assert re.search(r"/tiles/change_map/\{z\}/\{x\}/\{y\}\.png\?sig=[\w-]+\.[\w-]+$", template), template
    assert client.get(_tile(template, item)).status_code == 200  # no header at all (auth is required)
    assert client.get(_tile(template, item).split("?")[0]).status_code == 401  # nor signature


def test_no_change_is_transparent_in_the_png(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    client, _ = app
    template = _tilejson(client, item, admin).json()["tiles"][0]
    default = _rgba(client.get(_tile(template, item)))
    opaque_doc = _tilejson(client, item, admin, "?no_change=opaque").json()
    assert opaque_doc["tiles"][0].endswith("&no_change=opaque")
    opaque = _rgba(client.get(_tile(opaque_doc["tiles"][0], item)))
    black = np.all(opaque[..., :3] == 0, axis=-1) & (opaque[..., 3] == 255)  # class 0 in the colour table
    assert black.sum() > 1000  # most of the tile is unchanged
    assert np.all(default[black][:, 3] == 0)  # ... and see-through by default
    changed = (default[..., 3] > 0).sum()
    assert 0 < changed < (opaque[..., 3] > 0).sum()


def test_forged_expired_and_misused_signatures(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    client, _ = app
    template = _tilejson(client, item, admin).json()["tiles"][0]
    url = _tile(template, item)
    payload, mac = url.split("sig=")[1].split(".")
    forged = url.replace(mac, ("A" if mac[0] != "A" else "B") + mac[1:])
    resp = client.get(forged)
    assert resp.status_code == 401 and "not valid" in resp.json()["description"]
    signer = client.app.state.tile_signer  # type: ignore[attr-defined]
    old = signer.sign(
        Principal("tilejson-root", "admin"),
        tile_scope("urban", item["id"], "change_map"),
        now=time.time() - 3600,
    )
    resp = client.get(url.replace(f"{payload}.{mac}", old.signature))
    assert resp.status_code == 401 and "expired" in resp.json()["description"]
    other = url.replace("/tiles/change_map/", "/tiles/statistic/")
    resp = client.get(other)
    assert resp.status_code == 403 and "another layer" in resp.json()["description"]
    # The signature of another server (another key) is forged for this one.
    assert client.get(url.replace(f"{payload}.{mac}", f"{payload}.{mac[::-1]}")).status_code == 401


def test_signed_tiles_follow_grants_and_cache_briefly(
    app: tuple[TestClient, AccessStore], item: dict
) -> None:
    client, access = app
    partner = user_key(access, "tilejson-pia", "partner", "tilejson-acme")
    assert _tilejson(client, item, partner).status_code == 404  # not granted: as if missing
    access.grant("tilejson-acme", "urban")
    template = _tilejson(client, item, partner).json()["tiles"][0]
    resp = client.get(_tile(template, item))
    assert resp.status_code == 200
    max_age = int(resp.headers["cache-control"].split("max-age=")[1])
    assert 0 < max_age <= 60
    access.revoke("tilejson-acme", "urban")
    assert client.get(_tile(template, item)).status_code == 404  # the next tile after revocation


def test_gdal_reads_the_signed_xyz_layer(
    database: str, app: tuple[TestClient, AccessStore], item: dict, tmp_path: Path
) -> None:
    """A stock client: GDAL's WMS driver (TMS/XYZ mode) through rasterio, against the
    real server on loopback, with the URL from the TileJSON and no header."""
    key = user_key(app[1], "tilejson-gdal", "analyst")
    env = {
        "EOWATCH_DATABASE_URL": database,
        "EOWATCH_OUTPUT_DIR": str(tmp_path),
        "EOWATCH_AUTH_REQUIRED": "true",
        "EOWATCH_TILE_SIGNING_KEY": KEY,
    }
    zoom = 15
    with live_server(env) as server, httpx.Client(base_url=server, timeout=30) as http:
        doc = http.get(
            f"/collections/urban/items/{item['id']}/tiles/change_map/tilejson.json", headers=key
        ).json()
        template = doc["tiles"][0].replace("{z}", "${z}").replace("{x}", "${x}").replace("{y}", "${y}")
        half = 20037508.342789244
        server_url = template.replace("&", "&amp;")
        xml = f"""<GDAL_WMS><Service name="TMS"><ServerUrl>{server_url}</ServerUrl></Service>
<DataWindow><UpperLeftX>{-half}</UpperLeftX><UpperLeftY>{half}</UpperLeftY><LowerRightX>{half}</LowerRightX>
<LowerRightY>{-half}</LowerRightY><TileLevel>{zoom}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY>
<YOrigin>top</YOrigin></DataWindow><Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX>
<BlockSizeY>256</BlockSizeY><BandsCount>4</BandsCount><ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes></GDAL_WMS>"""
        west, south, east, north = item["bbox"]
        low, high = TMS.xy(west, south), TMS.xy(east, north)
        with rasterio.Env(GDAL_HTTP_TIMEOUT=30), rasterio.open(xml) as src:
            assert src.crs.to_epsg() == 3857 and src.count == 4
            window = from_bounds(low.x, low.y, high.x, high.y, src.transform).round_offsets().round_lengths()
            rgba = src.read(window=window)
        assert http.get(template.split("?")[0].replace("${z}/${x}/${y}", "0/0/0")).status_code == 401
    assert rgba.shape[0] == 4 and rgba.shape[1] > 50 and rgba.shape[2] > 50
    alpha = rgba[3]
    assert 0 < (alpha > 0).sum() < alpha.size  # changes drawn, no-change see-through
