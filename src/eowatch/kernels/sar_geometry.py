"""Range-Doppler geometry of a zero-Doppler SAR image (Sentinel-1 GRD): where on the
image a point on the ground is.

A ground point P (geodetic lon, lat, ellipsoidal height -> ECEF) is imaged at the
azimuth time t when the satellite S(t) sees it broadside: (P - S(t)) . V(t) = 0 (zero
Doppler), solved by Newton's method on a polynomial fit of the orbit state vectors. Its
line is ``(t - t_first_line) / azimuth_time_interval``; its slant range R = |P - S(t)|
becomes a ground range through the product's slant-to-ground polynomials (interpolated
linearly between their azimuth times) and a pixel by the range pixel spacing.

Times are seconds after the product's first line; lon/lat in degrees.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .jit import kernel

__all__ = ["Orbit", "fit_orbit", "radar_coordinates", "look_geometry", "ORBIT_DEGREE"]

#: Degree of the orbit polynomial: 16 state vectors 10 s apart are fitted to millimetres.
ORBIT_DEGREE = 7
Orbit = tuple[NDArray[np.float64], float, float]  # coefficients (3, d+1), t_ref, t_scale


def fit_orbit(
    times: NDArray[np.float64], positions: NDArray[np.float64], degree: int = ORBIT_DEGREE
) -> Orbit:
    """A polynomial in scaled time ``u = (t - t_ref) / t_scale`` through the state vectors'
    positions (least squares; lowest power first)."""
    t_ref = float((times[0] + times[-1]) / 2)
    t_scale = float(max((times[-1] - times[0]) / 2, 1.0))
    u = (times - t_ref) / t_scale
    deg = min(degree, len(times) - 1)
    coeffs = np.stack([np.polynomial.polynomial.polyfit(u, positions[:, k], deg) for k in range(3)])
    return coeffs.astype(np.float64), t_ref, t_scale


@kernel
def _ecef(lon: float, lat: float, h: float, a: float, e2: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    s = math.sin(phi)
    n = a / math.sqrt(1.0 - e2 * s * s)
    return (
        (n + h) * math.cos(phi) * math.cos(lam),
        (n + h) * math.cos(phi) * math.sin(lam),
        (n * (1 - e2) + h) * s,
    )


@kernel
def _state(c: NDArray[np.float64], u: float, t_scale: float, k: int) -> tuple[float, float, float]:
    """Position, velocity and acceleration of coordinate ``k`` at scaled time ``u`` (Horner)."""
    d = c.shape[1] - 1
    p, v, acc = c[k, d], 0.0, 0.0
    for j in range(d - 1, -1, -1):
        acc = acc * u + 2.0 * v
        v = v * u + p
        p = p * u + c[k, j]
    return p, v / t_scale, acc / (t_scale * t_scale)


@kernel
def _radar_coordinates(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    h: NDArray[np.float64],
    coeffs: NDArray[np.float64],
    t_ref: float,
    t_scale: float,
    a: float,
    b: float,
    srgr_times: NDArray[np.float64],
    srgr_origins: NDArray[np.float64],
    srgr_coefficients: NDArray[np.float64],
    azimuth_time_interval: float,
    range_pixel_spacing: float,
    t_guess: float,
    line: NDArray[np.float64],
    pixel: NDArray[np.float64],
) -> None:
    e2 = 1.0 - (b * b) / (a * a)
    t = t_guess
    m = srgr_times.size
    for i in range(lon.size):
        if not (math.isfinite(lon[i]) and math.isfinite(lat[i]) and math.isfinite(h[i])):
            line[i] = np.nan
            pixel[i] = np.nan
            continue
        px, py, pz = _ecef(lon[i], lat[i], h[i], a, e2)
        if not math.isfinite(t):
            t = t_guess
        dx = dy = dz = 0.0
        for _ in range(12):  # converges in 2-4 from the neighbour's time
            u = (t - t_ref) / t_scale
            sx, vx, ax = _state(coeffs, u, t_scale, 0)
            sy, vy, ay = _state(coeffs, u, t_scale, 1)
            sz, vz, az = _state(coeffs, u, t_scale, 2)
            dx, dy, dz = px - sx, py - sy, pz - sz
            f = dx * vx + dy * vy + dz * vz
            df = -(vx * vx + vy * vy + vz * vz) + dx * ax + dy * ay + dz * az
            step = f / df
            t -= step
            if abs(step) < 1e-9:
                break
        rng = math.sqrt(dx * dx + dy * dy + dz * dz)
        j = 0
        while j < m - 2 and srgr_times[j + 1] <= t:
            j += 1
        j1 = min(j + 1, m - 1)
        w = 0.0 if j1 == j else min(max((t - srgr_times[j]) / (srgr_times[j1] - srgr_times[j]), 0.0), 1.0)
        ground = 0.0
        for jj, weight in ((j, 1.0 - w), (j1, w)):
            x = rng - srgr_origins[jj]
            g = 0.0
            for k in range(srgr_coefficients.shape[1] - 1, -1, -1):
                g = g * x + srgr_coefficients[jj, k]
            ground += weight * g
        line[i] = t / azimuth_time_interval
        pixel[i] = ground / range_pixel_spacing


def radar_coordinates(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    h: NDArray[np.float64],
    orbit: Orbit,
    ellipsoid: tuple[float, float],
    srgr: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]],
    azimuth_time_interval: float,
    range_pixel_spacing: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(line, pixel) image coordinates (pixel centres at integers) of geodetic points,
    shaped like ``lon``; NaN where an input is NaN. ``srgr``: the conversions' azimuth
    times, slant range origins and coefficients."""
    shape = np.shape(lon)
    flat = [np.ascontiguousarray(v, dtype=np.float64).ravel() for v in (lon, lat, h)]
    line, pixel = np.empty(flat[0].size), np.empty(flat[0].size)
    coeffs, t_ref, t_scale = orbit
    srgr_times, origins, coefficients = (np.ascontiguousarray(v, dtype=np.float64) for v in srgr)
    _radar_coordinates(
        flat[0],
        flat[1],
        flat[2],
        coeffs,
        t_ref,
        t_scale,
        ellipsoid[0],
        ellipsoid[1],
        srgr_times,
        origins,
        coefficients,
        azimuth_time_interval,
        range_pixel_spacing,
        t_ref,
        line,
        pixel,
    )
    return line.reshape(shape), pixel.reshape(shape)


@kernel
def _look_geometry(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    h: NDArray[np.float64],
    t: NDArray[np.float64],
    coeffs: NDArray[np.float64],
    t_ref: float,
    t_scale: float,
    a: float,
    b: float,
    look: NDArray[np.float64],
    plane: NDArray[np.float64],
) -> None:
    e2 = 1.0 - (b * b) / (a * a)
    for i in range(lon.size):
        px, py, pz = _ecef(lon[i], lat[i], h[i], a, e2)
        u = (t[i] - t_ref) / t_scale
        sx, vx, _ = _state(coeffs, u, t_scale, 0)
        sy, vy, _ = _state(coeffs, u, t_scale, 1)
        sz, vz, _ = _state(coeffs, u, t_scale, 2)
        lx, ly, lz = sx - px, sy - py, sz - pz
        norm = math.sqrt(lx * lx + ly * ly + lz * lz)
        lx, ly, lz = lx / norm, ly / norm, lz / norm
        # normal of the image (slant range, azimuth) plane: look x velocity
        qx, qy, qz = ly * vz - lz * vy, lz * vx - lx * vz, lx * vy - ly * vx
        norm = math.sqrt(qx * qx + qy * qy + qz * qz)
        qx, qy, qz = qx / norm, qy / norm, qz / norm
        phi, lam = math.radians(lat[i]), math.radians(lon[i])
        sp, cp, sl, cl = math.sin(phi), math.cos(phi), math.sin(lam), math.cos(lam)
        for k, (x, y, z) in enumerate(((lx, ly, lz), (qx, qy, qz))):
            east = -sl * x + cl * y
            north = -sp * cl * x - sp * sl * y + cp * z
            up = cp * cl * x + cp * sl * y + sp * z
            out = look if k == 0 else plane
            sign = 1.0 if (k == 0 or up >= 0.0) else -1.0  # the plane normal points up
            out[i, 0], out[i, 1], out[i, 2] = sign * east, sign * north, sign * up


def look_geometry(
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    h: NDArray[np.float64],
    time: NDArray[np.float64],
    orbit: Orbit,
    ellipsoid: tuple[float, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unit vectors in local east/north/up at each point imaged at azimuth ``time`` (s after
    the first line): towards the satellite (``look``), and normal to the image plane
    (slant range x azimuth), pointing up (``plane``); each shaped ``lon.shape + (3,)``.

    With a terrain facet's unit normal n, its area seen in one radar pixel, projected
    perpendicular to the look (the gamma0 reference area of Small 2011) is the pixel's
    slant-plane area times (n . look) / (n . plane): Ulander (1996)'s projection angle
    for a facet covering the pixel."""
    shape = np.shape(lon)
    x, y, z, t = (np.ascontiguousarray(v, dtype=np.float64).ravel() for v in (lon, lat, h, time))
    look, plane = np.empty((x.size, 3)), np.empty((x.size, 3))
    coeffs, t_ref, t_scale = orbit
    _look_geometry(x, y, z, t, coeffs, t_ref, t_scale, ellipsoid[0], ellipsoid[1], look, plane)
    return look.reshape(*shape, 3), plane.reshape(*shape, 3)
