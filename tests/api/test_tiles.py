"""XYZ tiles of result COGs: the change map in its colour table, the statistic
through a colour map, errors as 4xx, and the catalogue's access control."""

from __future__ import annotations

import io
from collections.abc import Iterator

import morecantile
import numpy as np
import pytest
import rasterio
from fastapi.testclient import TestClient
from PIL import Image

from eowatch.io.cog import validate_cog
from eowatch.store.auth import AccessStore

from .service import service, user_key

# rasterio 1.4's from_bounds (called by rio-tiler) multiplies Affines with `*`, which
# affine 3 flags as pending deprecation; not ours to fix, and harmless.
pytestmark = pytest.mark.filterwarnings("ignore:Use `@` matmul:PendingDeprecationWarning")
TMS = morecantile.tms.get("WebMercatorQuad")


@pytest.fixture(scope="module")
def app(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AccessStore]]:
    with service(database, tmp_path_factory.mktemp("tiles")) as pair:
        yield pair


@pytest.fixture(scope="module")
def admin(app: tuple[TestClient, AccessStore]) -> dict[str, str]:
    return user_key(app[1], "root", "admin")


@pytest.fixture(scope="module")
def item(app: tuple[TestClient, AccessStore], admin: dict[str, str]) -> dict:
    return app[0].get("/collections/urban/items?limit=1", headers=admin).json()["features"][0]


def _tile_url(item: dict, asset: str, zoom: int = 14) -> str:
    minx, miny, maxx, maxy = item["bbox"]
    t = TMS.tile((minx + maxx) / 2, (miny + maxy) / 2, zoom)
    return f"/collections/urban/items/{item['id']}/tiles/{asset}/{t.z}/{t.x}/{t.y}.png"


def _rgba(resp) -> np.ndarray:  # type: ignore[no-untyped-def]
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(resp.content))
    assert img.size == (256, 256)
    return np.asarray(img.convert("RGBA"))


def test_change_map_tile_uses_its_colour_table(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    client, _ = app
    rgba = _rgba(client.get(_tile_url(item, "change_map"), headers=admin))
    path, _ = app[0].app.state.catalog.asset_file("urban", item["id"], "change_map")  # type: ignore[attr-defined]
    with rasterio.open(path) as src:
        table = {tuple(v[:3]) for v in src.colormap(1).values()}
    opaque = rgba[rgba[..., 3] > 0][:, :3]
    assert len(opaque) > 0
    colours = {tuple(int(c) for c in px) for px in np.unique(opaque, axis=0)}
    assert colours <= table, colours - table


def test_statistic_tile_with_a_colormap(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    client, _ = app
    url = _tile_url(item, "statistic")
    viridis = _rgba(client.get(url, headers=admin))
    greys = _rgba(client.get(f"{url}?colormap_name=greys&rescale=0,5", headers=admin))
    assert len(np.unique(viridis[..., :3].reshape(-1, 3), axis=0)) > 10
    grey = greys[greys[..., 3] > 0][:, :3]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])


def test_tile_errors(app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict) -> None:
    client, _ = app
    base = f"/collections/urban/items/{item['id']}/tiles"
    url = _tile_url(item, "statistic")
    cases = {
        f"{url}?colormap_name=nope": (400, "unknown colormap_name"),
        f"{url}?rescale=5,1": (400, "rescale"),
        f"{url}?rescale=a,b": (400, "rescale"),
        f"{base}/statistic/3/0/0.png": (404, "outside the raster"),
        f"{base}/statistic/3/9/0.png": (404, "does not exist"),
        f"{base}/statistic/40/0/0.png": (404, "does not exist"),
        f"{base}/quicklook/14/0/0.png": (404, "not a raster"),
        f"{base}/nope/14/0/0.png": (404, "no asset"),
        f"{base}/..%2F..%2F..%2Fetc%2Fpasswd/14/0/0.png": (404, "nothing at"),
        f"{base}/..%2e%2e%5cetc%5cpasswd/14/0/0.png": (404, "no asset"),
        "/collections/urban/items/..%2F..%2Fetc/tiles/statistic/1/0/0.png": (404, "nothing at"),
        "/collections/urban/items/..%2e%2e/tiles/statistic/1/0/0.png": (400, "item id '....' is not valid"),
        f"/collections/urban/items/{item['id']}/assets/..%2Fitem.json": (404, "nothing at"),
        f"/collections/urban/items/{item['id']}/assets/%2e%2e": (404, "no asset"),
    }
    for path, (status, message) in cases.items():
        resp = client.get(path, headers=admin)
        assert resp.status_code == status, (path, resp.text)
        assert message in resp.json()["description"], (path, resp.json())
    assert client.get(f"{base}/statistic/x/0/0.png", headers=admin).status_code == 400


def test_tiles_follow_grants(app: tuple[TestClient, AccessStore], item: dict) -> None:
    client, access = app
    partner = user_key(access, "pia", "partner", "acme")
    url = _tile_url(item, "change_map")
    assert client.get(url, headers=partner).status_code == 404
    access.grant("acme", "urban")
    assert client.get(url, headers=partner).status_code == 200
    access.revoke("acme", "urban")
    assert client.get(url, headers=partner).status_code == 404


def test_imagery_tiles_are_the_visual_cogs_as_they_are(
    app: tuple[TestClient, AccessStore], admin: dict[str, str], item: dict
) -> None:
    """The before/after imagery (eowatch.products.visual): true colour drawn without a
    colour map, the two dates different, and opaque where the image has data."""
    client, _ = app
    before = _rgba(client.get(_tile_url(item, "before_visual", zoom=15), headers=admin))
    after = _rgba(client.get(_tile_url(item, "after_visual", zoom=15), headers=admin))
    inside = before[..., 3] == 255
    assert inside.mean() > 0.5 and np.all(before[~inside][:, 3] == 0)
    assert len(np.unique(before[inside][:, :3], axis=0)) > 1000  # imagery, not a colour ramp
    assert np.abs(before[inside][:, :3].astype(int) - after[inside][:, :3].astype(int)).mean() > 5
    path, _ = client.app.state.catalog.asset_file("urban", item["id"], "before_visual")  # type: ignore[attr-defined]
    with rasterio.open(path) as src:
        assert src.count == 3 and src.dtypes == ("uint8",) * 3 and src.nodata == 0
        assert src.tags()["eowatch_visual"] == "1"
    assert validate_cog(path) == []
