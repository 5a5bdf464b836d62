"""Cloud, shadow and snow masks for a scene, from whatever the input offers:
the L2A scene classification (SCL) plus the shadows it misses, or, for L1C,
the offline s2cloudless model (optional extra ``eowatch[cloudmask]``) refined
with spectral tests; geometric cloud shadows for both.

L2A: the SCL is read per window at full resolution (classes no data, defective,
cloud shadow, cloud medium/high, cirrus and snow are no valid data). Sen2Cor's
shadow class is its weakest: in the validation of Baetens, Desjardins & Hagolle
(2019, Remote Sensing 11(4) 433) it finds a minority of the reference shadows,
which it often leaves as "dark area" (class 2) or vegetation. So the clouds SCL
found (medium/high probability, classes 8 and 9: thin cirrus casts no shadow
worth masking) are projected away from the sun as below, on a 60 m read of the
SCL and of B04/B08/B11, and the dark pixels they fall on are masked too
(``CloudMasking.extra``, OR'ed into each window's SCL mask).

The L1C path works on a grid 6x coarser than the 10 m grid (60 m), with these
rules (figures measured on the 8 OSCD city pairs, 2 dates each):

* s2cloudless (Zupanc 2017, Sinergise, "Improving cloud detection with machine
  learning"; the ``s2cloudless`` package): per-pixel LightGBM cloud probability
  from 10 L1C bands, averaged over 4 px, thresholded at 0.4 and dilated by 2 px,
  the authors' settings for 60 m. These blobs are the candidate clouds. On their
  own they also cover clear ground: 9.5 % of a clear winter Paris date (hazy
  city, blue path radiance) and bright roofs/construction in Hong Kong.
* Spectral evidence (Zhu & Woodcock 2012, RSE 118, "Object-based cloud and
  cloud shadow detection in Landsat imagery" (Fmask), eqs. 1-4): a candidate is
  kept only when at least one of its pixels has a model probability >= 0.4 and
  passes Fmask's potential-cloud tests: basic (SWIR2 B12 > 0.03, NDSI < 0.8,
  NDVI < 0.8), whiteness (sum of |visible - mean| / mean < 0.7), haze
  (HOT = B02 - 0.5 B04 - 0.08 > 0) and NIR/SWIR1 (B08 / B11 > 0.75, against
  bright rock and soil), and is bright in blue, B02 > 0.2. The last test is
  ours: the false blobs' brightest pixel reads B02 0.15-0.18 (Fmask's haze test
  alone passes winter haze), real cloud cores 0.22-0.39 at 60 m. Each candidate
  is kept or dropped whole, so a real cloud keeps its dilated edge.
* Cirrus (Zhu, Wang & Woodcock 2015, RSE 159, Fmask for Landsat 8, section
  2.2.1): a pixel with probability >= 0.4 and cirrus-band B10 > 0.01 is evidence
  as well (thin cirrus is dark in the visible but bright at 1.38 um).
* Cloud shadows (Fmask sections 3.1.3 and 3.2; ``eowatch.kernels.shadows``):
  potential shadow pixels are dark in both NIR and SWIR1 (B08 and B11 below the
  17.5th percentile of clear land minus 0.02: Fmask's flood-fill background and
  threshold, the land/water split of its eq. 5, here without the flood fill);
  each kept cloud is projected away from the sun for heights 200 m - 12 km and
  the best-matching height (dark share >= 0.3) gives its shadow, buffered by
  1 px (60 m; Fmask: 3 px at 30 m). Sun angles come from the STAC view extension
  (``view:sun_azimuth``, ``view:sun_elevation``) when the item has them,
  else from the acquisition time (NOAA solar position), else, for a date
  without a time of day, from Sentinel-2's estimated overpass time.

``cloud_masking`` returns what a windowed read masks and these figures (method,
cloud and shadow fractions, where the sun angles came from) for provenance;
``cloud_mask`` returns the whole mask."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rasterio.warp import transform as transform_points
from scipy import ndimage

from ..errors import InputError
from ..kernels.indices import ndvi, normalized_difference
from ..kernels.masks import scl_invalid
from ..kernels.shadows import cloud_shadows, sentinel2_overpass, solar_position
from ..model import Block, Grid
from .load import read_band, read_band_coarse
from .sources import Acquisition
from .windows import CoarseMask

__all__ = ["cloud_mask", "cloud_masking", "CloudMasking", "S2CLOUDLESS_BANDS"]

S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")
#: Read too when present, for the whiteness and NDSI tests.
_EXTRA_BANDS = ("B03",)
_PROB = 0.4  # s2cloudless threshold (the authors')
_BRIGHT_BLUE = 0.2  # B02 of a cloud core at 60 m (measured, see above)
_CIRRUS = 0.01  # B10, Zhu et al. 2015
_SHADOW_BUFFER_PX = 1  # 60 m at 60 m (Fmask: 3 px at 30 m)
#: SCL classes: cloud shadow; clouds (medium, high probability, cirrus); the clouds projected for shadows.
_SCL_SHADOW = 3
_SCL_CLOUDS = (8, 9, 10)
_SCL_SHADOW_CASTERS = (8, 9)
#: Bands of the potential-shadow (darkness) test.
_SHADOW_BANDS = ("B04", "B08", "B11")

SUN_METADATA = "metadata"
SUN_FROM_TIME = "estimated from acquisition time"
SUN_FROM_DATE = "estimated from date (Sentinel-2 overpass time)"
SUN_UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class CloudMasking:
    """How an acquisition's clouds are masked, and what was found (for provenance).

    ``mask`` is what a windowed read uses: ``"scl"`` (read per window),
    ``"none"``, or for s2cloudless a ``CoarseMask`` of cloud OR shadow;
    ``extra`` is masked besides the SCL (the shadows it missed), None if nothing.
    Fractions are of the valid coarse pixels (None without a coarse read);
    ``sun_source`` says where the sun angles for the shadows came from
    (``SUN_METADATA``, ``SUN_FROM_TIME``, ``SUN_FROM_DATE`` or
    ``SUN_UNAVAILABLE``: no shadows), None without geometric shadows."""

    mask: str | CoarseMask
    method: str
    extra: CoarseMask | None = None
    cloud_fraction: float | None = None
    shadow_fraction: float | None = None
    sun_source: str | None = None
    sun_azimuth: float | None = None
    sun_zenith: float | None = None


def cloud_mask(
    acq: Acquisition, grid: Grid, method: str = "auto", mask_snow: bool = True
) -> tuple[NDArray[np.bool_], str]:
    """Pixels of ``acq`` on ``grid`` that are cloud, shadow, cirrus (or snow):
    returns the mask and the method actually used (for provenance)."""
    if acq.sensor != "sentinel-2" or method == "none":
        return np.zeros(grid.shape, dtype=bool), "none"
    if method in ("auto", "scl") and "SCL" in acq.assets:
        scl, valid = read_band(acq.assets["SCL"], grid, categorical=True)
        masking = _scl_masking(acq, grid)
        missed = masking.extra.window(Block(0, 0, *grid.shape)) if masking.extra is not None else False
        return scl_invalid(scl, mask_snow) | ~valid | missed, masking.method
    if method == "scl":
        raise InputError(f"{acq.id} has no SCL band; use cloud_mask='s2cloudless' (L1C) or 'none'")
    if _use_s2cloudless(acq, method):
        return _s2cloudless(acq, grid), "s2cloudless"
    return np.zeros(grid.shape, dtype=bool), "none"


def cloud_masking(acq: Acquisition, grid: Grid, method: str = "auto") -> CloudMasking:
    """How a windowed read masks clouds, with the figures found: see ``CloudMasking``.
    Same choice as ``cloud_mask``."""
    if acq.sensor != "sentinel-2" or method == "none":
        return CloudMasking("none", "none")
    if method in ("auto", "scl") and "SCL" in acq.assets:
        return _scl_masking(acq, grid)
    if method == "scl":
        raise InputError(f"{acq.id} has no SCL band; use cloud_mask='s2cloudless' (L1C) or 'none'")
    if _use_s2cloudless(acq, method):
        return _s2cloudless_masking(acq, grid)
    return CloudMasking("none", "none")


def _scl_masking(acq: Acquisition, grid: Grid, factor: int = 6) -> CloudMasking:
    """The SCL (read per window) and the shadows of its clouds that it did not
    class as shadow, found on a grid ``factor`` times coarser (module docstring).
    Without sun angles, or without B04/B08/B11, the SCL alone (method ``"scl"``)."""
    sun = _sun_angles(acq, grid)
    if sun is None:
        return CloudMasking("scl", "scl", sun_source=SUN_UNAVAILABLE)
    if not set(_SHADOW_BANDS) <= set(acq.assets):
        return CloudMasking("scl", "scl")
    coarse = _coarse(grid, factor)
    scl, valid = read_band_coarse(acq.assets["SCL"], coarse, categorical=True)
    bands, bands_valid = _read_coarse(acq, _SHADOW_BANDS, coarse)
    valid &= bands_valid & (scl != 0)
    clear = valid & ~scl_invalid(scl)
    clouds = np.isin(scl, _SCL_SHADOW_CASTERS) & valid
    missed = _projected_shadows(clouds, bands, clear, valid, coarse, sun) & clear
    n_valid = max(int(valid.sum()), 1)
    return CloudMasking(
        mask="scl",
        method="scl+shadows",
        extra=CoarseMask(missed, grid.shape) if missed.any() else None,
        cloud_fraction=float((np.isin(scl, _SCL_CLOUDS) & valid).sum()) / n_valid,
        shadow_fraction=float(((scl == _SCL_SHADOW) & valid | missed).sum()) / n_valid,
        **_sun_fields(sun),
    )


def _use_s2cloudless(acq: Acquisition, method: str) -> bool:
    return method == "s2cloudless" or (
        method == "auto" and set(S2CLOUDLESS_BANDS) <= set(acq.assets) and _has_s2cloudless()
    )


def _has_s2cloudless() -> bool:
    """Whether s2cloudless is installed (found, not imported: its import takes ~1.4 s)."""
    return importlib.util.find_spec("s2cloudless") is not None


def _coarse(grid: Grid, factor: int) -> Grid:
    """The same bounds with pixels ``factor`` times larger."""
    from affine import Affine

    width, height = max(1, -(-grid.width // factor)), max(1, -(-grid.height // factor))
    t = grid.transform
    sx, sy = grid.width * t.a / width, grid.height * t.e / height
    return Grid(grid.crs, Affine(sx, 0, t.c, 0, sy, t.f), width, height)


def _s2cloudless(acq: Acquisition, grid: Grid, factor: int = 6) -> NDArray[np.bool_]:
    """s2cloudless clouds and their shadows (``_s2cloudless_masking``) as a full-size mask."""
    mask = _s2cloudless_masking(acq, grid, factor).mask
    assert isinstance(mask, CoarseMask)
    return mask.window(Block(0, 0, grid.height, grid.width))


def _s2cloudless_masking(acq: Acquisition, grid: Grid, factor: int = 6) -> CloudMasking:
    """s2cloudless on a grid ``factor`` times coarser (60 m for a 10 m grid, as the
    model's authors advise: it is a per-pixel model, and 36x fewer pixels make it
    routine on full tiles), its blobs kept where a pixel shows spectral cloud
    evidence, plus their geometric shadows (rules in the module docstring)."""
    if not _has_s2cloudless():
        raise InputError(
            "cloud_mask='s2cloudless' needs the optional extra: pip install 'eowatch[cloudmask]'"
        )
    acq.require(S2CLOUDLESS_BANDS)
    from s2cloudless import S2PixelCloudDetector

    coarse = _coarse(grid, factor)
    names = S2CLOUDLESS_BANDS + tuple(b for b in _EXTRA_BANDS if b in acq.assets)
    bands, valid = _read_coarse(acq, names, coarse)
    stack = np.stack([bands[b] for b in S2CLOUDLESS_BANDS], axis=-1)[np.newaxis]
    # The authors' settings for 60 m input: 4 px averaging, 2 px dilation.
    detector = S2PixelCloudDetector(threshold=_PROB, average_over=4, dilation_size=2, all_bands=False)
    prob = detector.get_cloud_probability_maps(stack)
    candidates = detector.get_mask_from_prob(prob)[0].astype(bool) & valid
    clouds = _with_evidence(candidates, _cloud_evidence(bands, prob[0]) & valid)
    sun = _sun_angles(acq, coarse)
    shadows = _projected_shadows(clouds, bands, valid & ~clouds, valid, coarse, sun)
    n_valid = max(int(valid.sum()), 1)
    return CloudMasking(
        mask=CoarseMask(clouds | shadows, grid.shape),
        method="s2cloudless",
        cloud_fraction=float(clouds.sum()) / n_valid,
        shadow_fraction=float((shadows & ~clouds).sum()) / n_valid,
        **_sun_fields(sun),
    )


def _read_coarse(
    acq: Acquisition, names: tuple[str, ...], coarse: Grid
) -> tuple[dict[str, NDArray[np.float32]], NDArray[np.bool_]]:
    """``names`` on the coarse grid (NaN as 0) and where all of them are valid."""
    bands: dict[str, NDArray[np.float32]] = {}
    valid = np.ones(coarse.shape, dtype=bool)
    for band in names:
        values, band_valid = read_band_coarse(acq.assets[band], coarse)
        bands[band] = np.nan_to_num(values, nan=0.0)
        valid &= band_valid
    return bands, valid


def _projected_shadows(
    clouds: NDArray[np.bool_],
    bands: dict[str, NDArray[np.float32]],
    clear: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    coarse: Grid,
    sun: tuple[float, float, str] | None,
) -> NDArray[np.bool_]:
    """The geometric shadows of ``clouds`` on pixels darker than the ``clear`` ground
    (rules in the module docstring); none without sun angles or clouds."""
    if sun is None or not clouds.any():
        return np.zeros(coarse.shape, dtype=bool)
    azimuth, zenith, _ = sun
    dark = _dark(bands, clear)
    return cloud_shadows(
        clouds, dark, _pixel_size_m(coarse), azimuth, zenith, valid=valid, buffer_px=_SHADOW_BUFFER_PX
    )


def _sun_fields(sun: tuple[float, float, str] | None) -> dict[str, Any]:
    """``CloudMasking``'s sun fields for the angles the shadows used."""
    if sun is None:
        return {"sun_source": SUN_UNAVAILABLE}
    return {"sun_source": sun[2], "sun_azimuth": sun[0], "sun_zenith": sun[1]}


def _cloud_evidence(bands: dict[str, NDArray[np.float32]], prob: NDArray[np.floating]) -> NDArray[np.bool_]:
    """Pixels that the model finds probable and that look like cloud spectrally
    (Fmask potential-cloud tests, bright blue; or cirrus): see the module docstring."""
    b02, b04, b08, b11, b12 = (bands[b] for b in ("B02", "B04", "B08", "B11", "B12"))
    b03 = bands.get("B03")
    with np.errstate(divide="ignore", invalid="ignore"):
        basic = (b12 > 0.03) & ~(ndvi(b08, b04) >= 0.8)
        vis = [b02, b04] if b03 is None else [b02, b03, b04]
        mean_vis = sum(vis) / len(vis)
        whiteness = sum(np.abs(v - mean_vis) for v in vis) / mean_vis
        if b03 is not None:
            basic &= ~(normalized_difference(b03, b11) >= 0.8)  # NDSI: not snow
        nir_swir = b08 / b11 > 0.75
    haze = b02 - 0.5 * b04 - 0.08 > 0
    cloud_like = basic & (whiteness < 0.7) & haze & nir_swir & (b02 > _BRIGHT_BLUE)
    return np.asarray((prob >= _PROB) & (cloud_like | (bands["B10"] > _CIRRUS)), dtype=bool)


def _with_evidence(candidates: NDArray[np.bool_], evidence: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The connected blobs of ``candidates`` that hold at least one ``evidence`` pixel."""
    labels, n = ndimage.label(candidates, structure=np.ones((3, 3), dtype=bool))
    keep = np.zeros(n + 1, dtype=bool)
    keep[labels[evidence & candidates]] = True
    keep[0] = False
    return np.asarray(keep[labels], dtype=bool)


def _dark(bands: dict[str, NDArray[np.float32]], clear: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Potential shadow: dark in NIR (B08) and SWIR1 (B11), below the 17.5th
    percentile of clear land minus 0.02 (Fmask's flood-fill background and threshold)."""
    b04, b08, b11 = bands["B04"], bands["B08"], bands["B11"]
    vegetation = ndvi(b08, b04)
    water = ((vegetation < 0.01) & (b08 < 0.11)) | ((vegetation < 0.1) & (b08 < 0.05))  # Fmask eq. 5
    land = clear & ~water
    if land.sum() < 0.01 * land.size:
        land = clear
    if not land.any():
        return np.zeros(b08.shape, dtype=bool)
    nir_bg, swir_bg = np.percentile(b08[land], 17.5), np.percentile(b11[land], 17.5)
    return np.asarray((b08 < nir_bg - 0.02) & (b11 < swir_bg - 0.02), dtype=bool)


def _sun_angles(acq: Acquisition, grid: Grid) -> tuple[float, float, str] | None:
    """(azimuth, zenith, source) of the sun over the scene, degrees; None when
    neither the metadata nor a date give them, or the grid is not north-up."""
    t = grid.transform
    if t.b != 0 or t.d != 0 or t.e >= 0:
        return None  # the shadow offsets assume rows grow southwards
    props = acq.properties
    azimuth, elevation = props.get("view:sun_azimuth"), props.get("view:sun_elevation")
    if azimuth is not None and elevation is not None:
        return float(azimuth), 90.0 - float(elevation), SUN_METADATA
    when = acq.datetime
    if when is None:
        return None
    left, bottom, right, top = grid.bounds
    xs, ys = transform_points(grid.crs, "EPSG:4326", [(left + right) / 2], [(bottom + top) / 2])
    lon, lat = float(xs[0]), float(ys[0])
    if (when.hour, when.minute, when.second, when.microsecond) == (0, 0, 0, 0):
        # A date alone (OSCD's dates.txt): Sentinel-2 passes at about 10:30 local solar time.
        azimuth, zenith = solar_position(sentinel2_overpass(when, lon, lat), lon, lat)
        return azimuth, zenith, SUN_FROM_DATE
    azimuth, zenith = solar_position(when, lon, lat)
    return azimuth, zenith, SUN_FROM_TIME


def _pixel_size_m(grid: Grid) -> tuple[float, float]:
    """(row, column) pixel size in metres at the grid's centre (spherical Earth on
    geographic grids, as ``Grid.pixel_area_m2``)."""
    rx, ry = grid.resolution
    if not grid.crs.is_geographic:
        factor = grid.crs.linear_units_factor[1] if grid.crs.linear_units_factor else 1.0
        return ry * factor, rx * factor
    radius = 6371007.2
    lat = math.radians((grid.bounds[1] + grid.bounds[3]) / 2)
    return math.radians(ry) * radius, math.radians(rx) * radius * math.cos(lat)
