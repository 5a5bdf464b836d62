"""Geometric cloud shadows and the sun's position (pure numpy/scipy, no I/O).

``cloud_shadows`` follows the shadow matching of Fmask (Zhu & Woodcock 2012,
RSE 118, section 3.1.3/3.2, as implemented in python-fmask): each cloud object
is moved away from the sun, for cloud heights from 200 m to 12 km, and the
height whose footprint lands best on dark pixels (similarity = dark share of
the footprint's cloud-free pixels, best above 0.3) gives that cloud's shadow:
the dark pixels under the footprint, buffered. Without thermal data the clouds
are flat (one height per object), as in Fmask for Sentinel-2. Matching each
object, rather than keeping the dark pixels of every height's footprint,
matters: with a low sun a 12 km cloud throws its shadow 30 km, and the union
over all heights would mask every river and lake along that strip.

``solar_position`` is NOAA's "General Solar Position Calculations" (Spencer
1971 Fourier series for the equation of time and the declination; NOAA Global
Monitoring Division): about 0.2 degrees, plenty for shadows at 60 m.
``sentinel2_overpass`` estimates the UTC time at which Sentinel-2 sees a place
on a given day: the orbit is sun-synchronous with a descending node at 10:30
mean local solar time and an inclination of 98.62 degrees (ESA Sentinel-2 user
handbook); away from the equator the local time of the pass shifts by
asin(tan(lat) / tan(180 - i)) of hour angle (later in the north, ~+29 min at
40 N), from the orbit's spherical geometry.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

__all__ = [
    "cloud_shadows",
    "shadow_offsets",
    "solar_position",
    "sentinel2_overpass",
    "S2_LTDN_HOURS",
    "S2_INCLINATION_DEG",
]

#: Sentinel-2's mean local solar time at the descending node (hours).
S2_LTDN_HOURS = 10.5
#: Sentinel-2's orbit inclination (degrees).
S2_INCLINATION_DEG = 98.62


def shadow_offsets(
    pixel_size_m: float | tuple[float, float],
    sun_azimuth: float,
    sun_zenith: float,
    heights: tuple[float, float] = (200.0, 12000.0),
) -> NDArray[np.int64]:
    """(row, col) pixel offsets from a cloud to its shadow, one per cloud
    height from ``heights[0]`` to ``heights[1]`` metres, in steps of at most one
    pixel. Rows grow southwards (north up) and the sun azimuth is clockwise from
    north: a shadow lies ``height * tan(zenith)`` away from the cloud, opposite
    the sun. ``pixel_size_m`` is (row, col) metres, or one value for both."""
    py, px = (pixel_size_m, pixel_size_m) if isinstance(pixel_size_m, int | float) else pixel_size_m
    az, tan_z = math.radians(sun_azimuth), math.tan(math.radians(min(sun_zenith, 89.0)))
    # Per metre of ground distance: north (= up = -row) by -cos(az), east (= +col) by -sin(az).
    per_m = np.array([math.cos(az) / py, -math.sin(az) / px])
    d0, d1 = heights[0] * tan_z, heights[1] * tan_z
    steps = max(1, math.ceil((d1 - d0) * float(np.abs(per_m).max())))
    dist = np.linspace(d0, d1, steps + 1)
    offsets = np.rint(dist[:, None] * per_m[None, :]).astype(np.int64)
    keep = np.ones(len(offsets), dtype=bool)
    keep[1:] = (offsets[1:] != offsets[:-1]).any(axis=1)
    return np.asarray(offsets[keep], dtype=np.int64)


def cloud_shadows(
    cloud: NDArray[np.bool_],
    dark: NDArray[np.bool_],
    pixel_size_m: float | tuple[float, float],
    sun_azimuth: float,
    sun_zenith: float,
    heights: tuple[float, float] = (200.0, 12000.0),
    valid: NDArray[np.bool_] | None = None,
    min_similarity: float = 0.3,
    buffer_px: int = 2,
    max_steps: int = 512,
) -> NDArray[np.bool_]:
    """Shadow pixels of the cloud objects in ``cloud``: per object, the cloud
    height whose projected footprint best matches ``dark`` (NIR/SWIR-dark
    pixels); the dark pixels under that footprint, dilated by ``buffer_px``,
    outside the clouds. Objects whose best match has a dark share below
    ``min_similarity``, or whose footprint lies mostly off the image or on other
    clouds, get no shadow. At most ``max_steps`` heights are tried (evenly
    spread: a sun low enough to need more throws long shadows anyway)."""
    cloud = np.asarray(cloud, dtype=bool)
    h, w = cloud.shape
    shadow = np.zeros((h, w), dtype=bool)
    labels, n = ndimage.label(cloud, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return shadow
    offsets = shadow_offsets(pixel_size_m, sun_azimuth, sun_zenith, heights)
    # Offsets longer than the image land nowhere (a low sun throws 12 km clouds' shadows far).
    offsets = offsets[(np.abs(offsets[:, 0]) < h) & (np.abs(offsets[:, 1]) < w)]
    if len(offsets) == 0:
        return shadow
    if len(offsets) > max_steps:
        offsets = offsets[np.linspace(0, len(offsets) - 1, max_steps).round().astype(np.int64)]
    # Pad by the largest offset so that every shifted pixel lands in the arrays (off-image = not seen).
    mr, mc = (int(v) for v in np.abs(offsets).max(axis=0))
    pw = w + 2 * mc
    free = ~cloud if valid is None else (valid & ~cloud)  # where a shadow can be seen
    free_p = np.zeros((h + 2 * mr, pw), dtype=bool)
    free_p[mr : mr + h, mc : mc + w] = free
    dark_p = np.zeros_like(free_p)
    dark_p[mr : mr + h, mc : mc + w] = dark & free
    free_flat, dark_flat = free_p.ravel(), dark_p.ravel()
    rr, cc = np.nonzero(labels)
    ll = labels[rr, cc]
    size = np.bincount(ll, minlength=n + 1)
    flat = (rr + mr) * pw + (cc + mc)
    best = np.zeros(n + 1)
    best_k = np.full(n + 1, -1, dtype=np.int64)
    for k, (dr, dc) in enumerate(offsets):
        target = flat + (dr * pw + dc)
        area = np.bincount(ll, weights=free_flat[target], minlength=n + 1)
        hits = np.bincount(ll, weights=dark_flat[target], minlength=n + 1)
        # Judge a height only on at least half the object's footprint (not off-image, not on cloud).
        sim = np.where(2 * area >= size, hits / np.maximum(area, 1), 0.0)
        better = sim > best
        best[better], best_k[better] = sim[better], k
    matched = (best >= min_similarity) & (best_k >= 0)
    matched[0] = False
    sel = matched[ll]
    if not sel.any():
        return shadow
    dr, dc = offsets[best_k[ll[sel]]].T
    r2, c2 = rr[sel] + dr, cc[sel] + dc
    inside = (r2 >= 0) & (r2 < h) & (c2 >= 0) & (c2 < w)
    shadow[r2[inside], c2[inside]] = True
    shadow &= dark
    if buffer_px > 0:
        # The penumbra and the flat-cloud approximation blur the edges: a small buffer, as in Fmask.
        yy, xx = np.mgrid[-buffer_px : buffer_px + 1, -buffer_px : buffer_px + 1]
        shadow = ndimage.binary_dilation(shadow, structure=yy * yy + xx * xx <= buffer_px * buffer_px)
    shadow &= ~cloud
    if valid is not None:
        shadow &= valid
    return np.asarray(shadow, dtype=bool)


def solar_position(when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Sun (azimuth clockwise from north, zenith) in degrees at ``when`` (naive
    datetimes are taken as UTC) over ``lon``/``lat`` degrees: NOAA's general
    solar position formulas (see the module docstring)."""
    t = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    year_days = 366 if (t.year % 4 == 0 and (t.year % 100 != 0 or t.year % 400 == 0)) else 365
    hours = t.hour + t.minute / 60 + (t.second + t.microsecond * 1e-6) / 3600
    g = 2 * math.pi / year_days * (t.timetuple().tm_yday - 1 + (hours - 12) / 24)  # fractional year
    eqtime = 229.18 * (
        0.000075
        + 0.001868 * math.cos(g)
        - 0.032077 * math.sin(g)
        - 0.014615 * math.cos(2 * g)
        - 0.040849 * math.sin(2 * g)
    )  # minutes
    decl = (
        0.006918
        - 0.399912 * math.cos(g)
        + 0.070257 * math.sin(g)
        - 0.006758 * math.cos(2 * g)
        + 0.000907 * math.sin(2 * g)
        - 0.002697 * math.cos(3 * g)
        + 0.00148 * math.sin(3 * g)
    )  # radians
    true_solar_min = hours * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_z = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zenith = math.degrees(math.acos(max(-1.0, min(1.0, cos_z))))
    azimuth = math.degrees(
        math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))
    )
    return (azimuth + 180.0) % 360.0, zenith


def sentinel2_overpass(day: datetime, lon: float, lat: float) -> datetime:
    """The UTC time at which Sentinel-2 passes over ``lon``/``lat`` on ``day``
    (its date is used): 10:30 mean local solar time at the descending node,
    shifted with latitude by the orbit's inclination (see the module docstring)."""
    lat_r, incl_r = math.radians(max(-80.0, min(80.0, lat))), math.radians(180 - S2_INCLINATION_DEG)
    ratio = math.tan(lat_r) / math.tan(incl_r)
    local_hours = S2_LTDN_HOURS + math.degrees(math.asin(max(-1.0, min(1.0, ratio)))) / 15
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return midnight + timedelta(hours=local_hours - lon / 15)
