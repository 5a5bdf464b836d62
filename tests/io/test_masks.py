from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from eowatch.errors import InputError
from eowatch.io.load import pair_grid, reference_grid
from eowatch.io.masks import (
    SUN_FROM_DATE,
    SUN_METADATA,
    SUN_UNAVAILABLE,
    cloud_mask,
    cloud_masking,
)
from eowatch.io.sources import resolve_input
from eowatch.io.windows import CoarseMask
from eowatch.kernels.masks import scl_invalid
from eowatch.kernels.shadows import cloud_shadows, sentinel2_overpass, shadow_offsets, solar_position
from eowatch.model import Block


def test_scl_classes_masked():
    scl = np.arange(12, dtype=np.uint8)
    assert scl_invalid(scl).tolist() == [c in (0, 1, 3, 8, 9, 10, 11) for c in range(12)]
    assert not scl_invalid(scl, mask_snow=False)[11]


def test_s2cloudless_runs_offline_on_l1c(paris):
    """The optional offline model (shipped in its wheel) on the bundled L1C pair."""
    b, a = resolve_input(paris / "imgs_1"), resolve_input(paris / "imgs_2")
    grid = pair_grid(b, a)
    mask, method = cloud_mask(a, grid, "s2cloudless")
    assert method == "s2cloudless" and mask.shape == grid.shape
    # The Paris after date has small clouds; most of the scene is clear.
    assert 0.0 < mask.mean() < 0.2
    auto_mask, auto_method = cloud_mask(a, grid, "auto")
    assert auto_method == "s2cloudless" and (auto_mask == mask).all()
    assert cloud_mask(a, grid, "none")[1] == "none"


def test_scl_requested_without_scl_band(paris):
    acq = resolve_input(paris / "imgs_1")
    with pytest.raises(InputError, match="no SCL band"):
        cloud_mask(acq, pair_grid(acq, acq), "scl")


# --- s2cloudless refined with spectral evidence, and geometric cloud shadows ---------------------

# OSCD dates judged cloud-free from true-colour quicklooks (B04/B03/B02, 0..0.3): every date
# except paris imgs_2 (two cumulus and a shadow) and hongkong imgs_1 (one small cumulus).
# Before the spectral-evidence rule, bercy imgs_1 (same winter Paris tile as paris imgs_1)
# was 9.5 % masked, paris imgs_1 0.6 %, hongkong imgs_2 0.5 % (a bright roof complex).
OSCD_CLEAR = [
    (city, d)
    for city in ("aguasclaras", "beirut", "bercy", "bordeaux", "hongkong", "nantes", "paris", "rennes")
    for d in (1, 2)
    if (city, d) not in {("paris", 2), ("hongkong", 1)}
]


@pytest.mark.parametrize(("city", "date"), OSCD_CLEAR)
def test_s2cloudless_clear_oscd_dates_stay_clear(shared_data, city, date):
    acq = resolve_input(shared_data / "s2_pairs" / "oscd" / city / f"imgs_{date}")
    mask, method = cloud_mask(acq, reference_grid(acq), "s2cloudless")
    assert method == "s2cloudless"
    assert mask.mean() <= 0.01, f"{city} imgs_{date}: {100 * mask.mean():.1f} % masked on a clear date"


def test_paris_after_date_clouds_and_shadow_masked(paris):
    """The two cumulus of the Paris after date and the shadow of the southern one
    (dark in NIR/SWIR, B11 a quarter of the before date's; it used to come out as
    'water gain')."""
    acq = resolve_input(paris / "imgs_2")
    grid = reference_grid(acq)
    masking = cloud_masking(acq, grid, "s2cloudless")
    assert isinstance(masking.mask, CoarseMask) and masking.method == "s2cloudless"
    full = masking.mask.window(Block(0, 0, grid.height, grid.width))
    # Pixel boxes on the 10 m grid (408 x 390), from the quicklook.
    assert full[345:366, 185:206].all(), "southern cloud"
    assert full[35:56, 320:341].all(), "north-eastern cloud"
    assert full[186:222, 138:186].mean() > 0.95, "shadow of the southern cloud"
    assert 0.05 < masking.cloud_fraction < 0.1
    assert 0.01 < masking.shadow_fraction < 0.05
    # OSCD gives a date only: angles from Sentinel-2's overpass time (~11:00 UTC over Paris).
    assert masking.sun_source == SUN_FROM_DATE
    assert masking.sun_azimuth == pytest.approx(171, abs=3)
    assert masking.sun_zenith == pytest.approx(65, abs=2)
    assert (cloud_mask(acq, grid, "s2cloudless")[0] == full).all()


def test_small_cloud_kept(shared_data):
    """Hong Kong imgs_1: a small cumulus (B02 0.22 at 60 m) passes the evidence tests."""
    acq = resolve_input(shared_data / "s2_pairs" / "oscd" / "hongkong" / "imgs_1")
    mask, _ = cloud_mask(acq, reference_grid(acq), "s2cloudless")
    assert mask[342:354, 408:426].all()


def test_sun_angles_from_metadata_win(paris):
    acq = resolve_input(paris / "imgs_2")
    # The sun at the file name's time (2017-11-07 10:52:29 UTC) over Paris, as a STAC item carries it.
    acq.properties.update({"view:sun_azimuth": 168.9, "view:sun_elevation": 24.4})
    grid = reference_grid(acq)
    masking = cloud_masking(acq, grid, "s2cloudless")
    assert masking.sun_source == SUN_METADATA
    assert (masking.sun_azimuth, masking.sun_zenith) == pytest.approx((168.9, 65.6))
    assert isinstance(masking.mask, CoarseMask)
    assert masking.mask.window(Block(0, 0, grid.height, grid.width))[186:222, 138:186].mean() > 0.95


def test_sun_unavailable_without_a_date(paris):
    acq = resolve_input(paris / "imgs_2")
    acq.datetime = None
    masking = cloud_masking(acq, reference_grid(acq), "s2cloudless")
    assert masking.sun_source == SUN_UNAVAILABLE and masking.shadow_fraction == 0.0
    assert masking.cloud_fraction > 0.05


@pytest.mark.parametrize(
    ("when", "bbox", "azimuth", "elevation", "tol_az"),
    [
        # Earth Search v1 item S2A_13TDE_20231008_0_L2A (whole tile, Colorado): ESA's tile-mean
        # sun angles (view:sun_*) against ours at the tile's centre and the item's datetime.
        ("2023-10-08T18:02:55", (-106.18316, 39.65576, -104.88457, 40.65079), 164.1246, 42.6191, 0.5),
        # Planetary Computer S2B_MSIL2A_20190629T212529_R043_T06VVN (Alaska, s2:mean_solar_*):
        # the tile spans 2 degrees of longitude at 61 N, so its mean azimuth is ~1 degree off the centre's.
        ("2019-06-29T21:25:29", (-148.86876, 60.3363, -146.81763, 61.33432), 170.1480, 90 - 37.9129, 1.5),
    ],
)
def test_solar_position_matches_esa_metadata(when, bbox, azimuth, elevation, tol_az):
    lon, lat = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    az, zen = solar_position(datetime.fromisoformat(when).replace(tzinfo=UTC), lon, lat)
    assert az == pytest.approx(azimuth, abs=tol_az)
    assert zen == pytest.approx(90 - elevation, abs=0.5)


@pytest.mark.parametrize(
    ("when", "lon", "lat"),
    [
        ("2023-10-08T18:02:55", -105.534, 40.153),  # S2A_13TDE (Earth Search v1)
        ("2019-06-29T21:25:29", -147.843, 60.835),  # S2B T06VVN (Planetary Computer)
        ("2025-07-31T13:03:27", -40.088, -4.636),  # S2B_24MUV (Earth Search v1)
        ("2025-07-31T13:19:22", -59.505, -60.442),  # S2B_20EPT (Earth Search v1)
    ],
)
def test_sentinel2_overpass_time(when, lon, lat):
    """Estimated pass times against the items' datetimes: within 10 min (the
    across-track position in the 290 km swath shifts the local time by up to ~8 min)."""
    actual = datetime.fromisoformat(when).replace(tzinfo=UTC)
    estimate = sentinel2_overpass(actual.replace(hour=0, minute=0, second=0), lon, lat)
    assert abs((estimate - actual).total_seconds()) < 600


def _square_scene(sun_azimuth: float, sun_zenith: float, pixel_m: float = 60.0):
    """A 9x9 px cloud in the middle of a 101x101 scene and dark squares where its
    shadow falls at 1 km height for the given sun, and mirrored about the cloud."""
    cloud = np.zeros((101, 101), dtype=bool)
    cloud[46:55, 46:55] = True
    d = 1000 * np.tan(np.radians(sun_zenith)) / pixel_m
    az = np.radians(sun_azimuth)
    dr, dc = round(d * np.cos(az)), round(-d * np.sin(az))  # rows grow southwards
    dark = np.zeros_like(cloud)
    dark[46 + dr : 55 + dr, 46 + dc : 55 + dc] = True
    dark[46 - dr : 55 - dr, 46 - dc : 55 - dc] = True  # a decoy on the sunny side
    return cloud, dark, (dr, dc)


@pytest.mark.parametrize(
    ("azimuth", "side"),
    [(135.0, (-1, -1)), (180.0, (-1, 0)), (90.0, (0, -1)), (225.0, (-1, 1)), (45.0, (1, -1))],
)
def test_shadow_falls_opposite_the_sun(azimuth, side):
    """Sun in the south-east (azimuth 135, clockwise from north): the shadow lies
    north-west of the cloud (up and left on a north-up image); and so on around."""
    cloud, dark, (dr, dc) = _square_scene(azimuth, 45.0)
    assert (np.sign(dr), np.sign(dc)) == side
    shadow = cloud_shadows(cloud, dark, 60.0, azimuth, 45.0, buffer_px=0)
    expected = np.zeros_like(cloud)
    expected[46 + dr : 55 + dr, 46 + dc : 55 + dc] = True
    assert (shadow == expected).all()
    first = shadow_offsets(60.0, azimuth, 45.0)[0]
    assert (np.sign(first[0]), np.sign(first[1])) == side


def test_shadow_geometry_non_square_pixels():
    """Geographic grids have pixels narrower east-west than north-south: the offset in
    columns is the ground distance over the column size."""
    offsets = shadow_offsets((60.0, 40.0), 90.0, 45.0, heights=(1200.0, 1200.0))
    assert offsets.tolist() == [[0, -30]]


def test_shadow_needs_a_dark_match():
    cloud, dark, _ = _square_scene(135.0, 45.0)
    assert not cloud_shadows(cloud, np.zeros_like(dark), 60.0, 135.0, 45.0).any()
    # Dark ground far off the sun's line is no shadow either.
    far = np.zeros_like(dark)
    far[80:95, 5:20] = True
    assert not cloud_shadows(cloud, far, 60.0, 135.0, 45.0).any()
    # The buffer grows the match, never onto the cloud.
    shadow = cloud_shadows(cloud, dark, 60.0, 135.0, 45.0, buffer_px=2)
    assert shadow.sum() > 81 and not (shadow & cloud).any()


# --- L2A: the SCL plus the shadows of its clouds that it missed ----------------------------------


def _with_scl(tmp_path, acq, grid, scl_of_grid):
    """``acq`` (real L1C bands) with an SCL band written on ``grid`` from ``scl_of_grid``.
    The SCL is made up here (no real L2A pixels are in the shared data); the bands,
    clouds and shadow are the real ones of the Paris after date."""
    import rasterio

    from eowatch.io.sources import Acquisition, BandAsset

    path = tmp_path / "SCL.tif"
    profile = dict(driver="GTiff", width=grid.width, height=grid.height, count=1, dtype="uint8")
    with rasterio.open(path, "w", crs=grid.crs, transform=grid.transform, **profile) as ds:
        ds.write(scl_of_grid.astype("uint8"), 1)
    return Acquisition(acq.id, acq.sensor, {**acq.assets, "SCL": BandAsset(str(path))}, acq.datetime)


def test_l2a_shadow_that_scl_missed_is_masked(paris, tmp_path):
    """An SCL that found the two cumulus of the Paris after date as cloud (class 9) but
    left their shadow as vegetation (class 4), as Sen2Cor often does: the shadow is
    projected from SCL's clouds and masked in every window read."""
    from eowatch.io.windows import SceneSpec

    acq = resolve_input(paris / "imgs_2")
    grid = reference_grid(acq)
    full = Block(0, 0, grid.height, grid.width)
    l1c = cloud_masking(acq, grid, "s2cloudless")
    assert isinstance(l1c.mask, CoarseMask)
    shadow_box = (slice(186, 222), slice(138, 186))
    clouds = l1c.mask.window(full).copy()
    clouds[shadow_box] = False  # the shadow is not in this SCL
    l2a = _with_scl(tmp_path, acq, grid, np.where(clouds, 9, 4))
    masking = cloud_masking(l2a, grid)
    assert masking.mask == "scl" and masking.method == "scl+shadows"
    assert masking.extra is not None and masking.extra.window(full)[shadow_box].mean() > 0.95
    assert 0.01 < masking.shadow_fraction < 0.05
    assert masking.sun_source == SUN_FROM_DATE
    with SceneSpec(l2a, grid, ("B04",), cloud=masking.mask, extra_cloud=masking.extra).open() as reader:
        scene, masked = reader.read(full)
    assert masked[shadow_box].mean() > 0.95 and not scene.valid[shadow_box].any()
    assert masked[345:366, 185:206].all(), "SCL's own cloud"
    assert (cloud_mask(l2a, grid)[0] == masked).all()


def test_l2a_clear_scl_adds_nothing(paris, tmp_path):
    """Without clouds in the SCL nothing is projected: a clear bright scene keeps every pixel."""
    acq = resolve_input(paris / "imgs_1")
    grid = reference_grid(acq)
    masking = cloud_masking(_with_scl(tmp_path, acq, grid, np.full(grid.shape, 5)), grid)
    assert masking.method == "scl+shadows" and masking.extra is None
    assert masking.cloud_fraction == 0.0 and masking.shadow_fraction == 0.0


def test_l2a_without_sun_angles_is_scl_alone(paris, tmp_path):
    acq = resolve_input(paris / "imgs_2")
    acq.datetime = None
    grid = reference_grid(acq)
    masking = cloud_masking(_with_scl(tmp_path, acq, grid, np.full(grid.shape, 9)), grid)
    assert (masking.mask, masking.method, masking.extra) == ("scl", "scl", None)
    assert masking.sun_source == SUN_UNAVAILABLE
