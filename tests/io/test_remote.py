"""Remote reads have limits: a server that never answers fails the read in bounded
time with a retryable error, and a server that comes back is asked again (GDAL
would otherwise answer from its memory of the failure). Loopback servers only."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from eowatch.errors import InputReadError, RemoteReadError
from eowatch.io.remote import RemoteLimits, apply_limits, current_limits, open_raster
from eowatch.io.sources import resolve_input
from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings
from tests.http_server import serve, serve_silent

FAST = RemoteLimits(timeout_s=1, connect_timeout_s=1, retries=0, retry_delay_s=0.1)
#: Far above what the limits allow (1 s, no retry) and far below "forever".
BOUND_S = 30


@pytest.fixture(autouse=True)
def _restore_limits():
    before = current_limits()
    yield
    apply_limits(before)


def _band(folder: Path, name: str = "T31UDQ_20200101T000000_B04.tif") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    profile = dict(driver="GTiff", width=32, height=32, count=1, dtype="uint16", crs="EPSG:32631",
                   transform=Affine(10, 0, 600000, 0, -10, 5400000))  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((1, 32, 32), 1200, dtype=np.uint16))
    return path


@pytest.mark.parametrize(
    ("read", "name", "message"),
    [(open_raster, "T31UDQ_20200101T000000_B04.tif", "did not answer in time"),
     (resolve_input, "item.json", "cannot read STAC Item")],
    ids=["gdal", "stac"],
)  # fmt: skip
def test_reads_of_a_silent_server_fail_in_bounded_time(read, name, message):
    apply_limits(FAST)
    with serve_silent() as url:
        start = time.monotonic()
        with pytest.raises(RemoteReadError, match=message):
            read(f"{url}/{name}")
        assert time.monotonic() - start < BOUND_S


def test_a_server_that_refuses_connections_is_a_retryable_failure():
    import socket

    apply_limits(FAST)
    with socket.socket() as probe:  # a loopback port nothing listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteReadError, match="unreachable") as caught:
        open_raster(f"http://127.0.0.1:{port}/T31UDQ_20200101T000000_B04.tif")
    assert caught.value.retryable


def test_a_run_on_a_silent_input_fails_with_a_retryable_error(tmp_path):
    settings = Settings(
        output_dir=tmp_path / "out", http_timeout_s=1, http_connect_timeout_s=1, http_retries=0
    )
    after = _band(tmp_path / "after")
    with serve_silent() as url:
        start = time.monotonic()
        with pytest.raises(RemoteReadError) as caught:
            detect_pair(DetectRequest(f"{url}/T31UDQ_20200101T000000_B04.tif", str(after)), settings)
        assert time.monotonic() - start < BOUND_S
    assert caught.value.retryable
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())  # no folder, not even a hidden partial one


def test_a_server_that_comes_back_is_asked_again(tmp_path):
    apply_limits(FAST)
    _band(tmp_path / "www")
    with serve(tmp_path / "www", fail_first=1) as url:
        href = f"{url}/T31UDQ_20200101T000000_B04.tif"
        with pytest.raises(RemoteReadError, match="503"):
            open_raster(href)
        with open_raster(href) as ds:  # GDAL alone keeps answering 503 from its cache here
            assert ds.read(1).mean() == 1200


def test_a_stac_item_that_comes_back_is_read(tmp_path):
    apply_limits(FAST)
    _band(tmp_path / "www")
    red = {"href": "T31UDQ_20200101T000000_B04.tif", "type": "image/tiff; application=geotiff"}
    item = {
        "type": "Feature", "stac_version": "1.0.0", "id": "s2-test", "geometry": None, "links": [],
        "properties": {"datetime": "2020-01-01T00:00:00Z"}, "assets": {"red": red},
    }  # fmt: skip
    (tmp_path / "www" / "item.json").write_text(json.dumps(item))
    with serve(tmp_path / "www", fail_first=1) as url:
        with pytest.raises(RemoteReadError):
            resolve_input(f"{url}/item.json")
        acq = resolve_input(f"{url}/item.json")
    assert acq.assets["B04"].href.endswith("T31UDQ_20200101T000000_B04.tif")


def test_a_missing_remote_file_is_not_retryable(tmp_path):
    apply_limits(FAST)
    (tmp_path / "www").mkdir()
    with serve(tmp_path / "www") as url:
        with pytest.raises(InputReadError) as caught:
            open_raster(f"{url}/missing.tif")
    assert not caught.value.retryable and not isinstance(caught.value, RemoteReadError)


def test_gdal_options_follow_the_settings():
    limits = RemoteLimits.from_settings(
        Settings(http_timeout_s=12.5, http_connect_timeout_s=3, http_retries=2)
    )
    apply_limits(limits)
    config = limits.gdal_config()
    assert config["GDAL_HTTP_TIMEOUT"] == "13" and config["GDAL_HTTP_CONNECTTIMEOUT"] == "3"
    assert config["GDAL_HTTP_MAX_RETRY"] == "2" and config["GDAL_HTTP_LOW_SPEED_TIME"] == "13"
    assert rasterio.env.get_gdal_config("GDAL_HTTP_TIMEOUT") in (13, "13")
