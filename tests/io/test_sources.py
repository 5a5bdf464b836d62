from __future__ import annotations

import json

import numpy as np
import pytest

from eowatch.errors import InputError, InputReadError, MissingBandError
from eowatch.io.sources import S2_BANDS, resolve_input


def test_oscd_folder_gives_all_bands_and_the_date(paris):
    acq = resolve_input(paris / "imgs_1")
    assert acq.sensor == "sentinel-2"
    assert set(acq.assets) == set(S2_BANDS)
    assert acq.datetime is not None and acq.datetime.strftime("%Y%m%d") == "20161130"
    assert acq.assets["B04"].scale == pytest.approx(1e-4) and acq.assets["B04"].nodata == 0


def test_earth_search_v1_item_maps_common_names_and_prefers_cogs(shared_data):
    fc = json.loads((shared_data / "stac/earth_search_v1/sentinel-2-l2a_items.json").read_text())
    import pystac

    from eowatch.io.sources import acquisition_from_item

    acq = acquisition_from_item(pystac.Item.from_dict(fc["features"][0]))
    assert {"B02", "B04", "B08", "B11", "B12", "SCL"} <= set(acq.assets)
    red = acq.assets["B04"]
    assert red.href.startswith("https://") and red.href.endswith("B04.tif")  # COG, not the s3 JPEG2000
    # earthsearch:boa_offset_applied: the COG's DN are already shifted; the item's -0.1 is not applied
    assert (red.scale, red.offset) == (pytest.approx(1e-4), 0.0)
    assert (acq.assets["SCL"].scale, acq.assets["SCL"].offset) == (1.0, 0.0)


def test_planetary_computer_item_from_file(shared_data):
    acq = resolve_input(
        shared_data / "stac/planetary_computer/S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json"
    )
    assert acq.id.startswith("S2B_MSIL2A_20190629")
    assert "SCL" in acq.assets and acq.assets["B8A"].href.endswith("B8A_20m.tif")
    # processing baseline 02.12 < 04.00: no BOA offset
    assert acq.assets["B04"].offset == 0.0


def test_planetary_computer_s1_rtc_items(shared_data):
    import pystac

    from eowatch.io.sources import acquisition_from_item

    items = json.loads((shared_data / "stac/planetary_computer/sentinel-1-rtc_items.json").read_text())
    acq = acquisition_from_item(pystac.Item.from_dict(items[0]))
    assert acq.sensor == "sentinel-1" and set(acq.assets) == {"vv", "vh"}


def test_multiband_file_with_descriptions(raster_factory):
    data = np.ones((2, 4, 4), dtype=np.float32)
    path = raster_factory("s1.tif", data, descriptions=["VV", "VH"])
    acq = resolve_input(path)
    assert acq.sensor == "sentinel-1" and acq.assets["vh"].band_index == 2


def test_unknown_layouts_and_missing_inputs_are_explained(tmp_path, raster_factory):
    with pytest.raises(InputReadError, match="does not exist"):
        resolve_input(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no band rasters"):
        resolve_input(tmp_path / "empty")
    path = raster_factory("anon.tif", np.ones((3, 4, 4), dtype=np.uint16))
    with pytest.raises(InputError, match="set band descriptions"):
        resolve_input(path)
    bad = tmp_path / "broken_B04.tif"
    bad.write_text("not a tiff")
    with pytest.raises(InputReadError, match="cannot open"):
        resolve_input(bad)


def test_missing_band_names_the_band_and_the_fix(paris):
    acq = resolve_input(paris / "imgs_1")
    del acq.assets["B11"]
    with pytest.raises(MissingBandError, match=r"missing band\(s\) \['B11'\].*Add the missing band"):
        acq.require(("B04", "B11"))
