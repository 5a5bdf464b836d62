"""Orfeo ToolBox as the reference for Sentinel-1 GRD: calibration and terrain correction.

``otb_calibrate`` runs ``otbcli_SARCalibration`` (DN -> sigma0/gamma0/beta0, optional thermal noise
removal) and ``otb_orthorectify`` runs ``otbcli_OrthoRectification`` onto a given map grid, each in a
subprocess with a timeout. What OTB 8.1 needs, found on the shared Rome product:

* ``-in`` is the measurement TIFF itself, inside its SAFE layout: OTB derives
  ``annotation/<tiff stem>.xml``, ``annotation/calibration/{calibration,noise}-<stem>.xml`` and
  ``manifest.safe`` from its path. ``manifest.safe``, the SAFE folder or GDAL's
  ``SENTINEL1_CALIB:UNCALIB:...`` subdataset are refused.
* The TIFF must carry ``TIFFTAG_IMAGEDESCRIPTION`` starting with ``Sentinel-1`` (a real measurement has
  ``Sentinel-1B IW GRD HR L1``): OTB's Sentinel-1 metadata reader keys on it. Without it (the shared
  placeholder) OTB says ``otbSarRadiometricCalibrationToImageFilter was not able to fetch the SARCalib
  metadata.`` GCPs in the TIFF are not needed: OTB takes them, and the orbit, from the annotation.
* A DEM with heights above EGM96 (e.g. Copernicus, SRTM) needs ``-elev.geoid``: PROJ's
  ``egm96_15.gtx`` works. Without it OTB takes the DEM heights as ellipsoidal (~45 m too low at Rome,
  ~4.5 px range shift); with no DEM at all it orthorectifies on the ellipsoid.

Usage::

    python benchmarks/otb_s1.py --safe S1B_IW_GRDH_...SAFE --out out/otb_s1 [--pol vv] [--lut sigma]
        [--keep-noise] [--dem DIR] [--geoid auto|none|FILE] [--grid EPSG ULX ULY WIDTH HEIGHT SPACING]
        [--ram 2048] [--timeout 3600]

writes ``<out>/<lut>0_<pol>.tif`` and ``<out>/<lut>0_<pol>_ortho.tif`` and prints the wall times as
JSON. Without ``--grid`` the grid is the scene's footprint in its UTM zone at 10 m.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal, NamedTuple

from affine import Affine

CALIBRATION = "otbcli_SARCalibration"
ORTHO = "otbcli_OrthoRectification"
LUTS = ("sigma", "gamma", "beta", "dn")
#: EGM96 grids as packaged (Debian proj-data; the PROJ CDN name).
GEOIDS = (Path("/usr/share/proj/egm96_15.gtx"), Path("/usr/share/proj/us_nga_egm96_15.tif"))


class OtbError(RuntimeError):
    """An OTB application failed, timed out or is not installed."""


class OtbNotFoundError(OtbError):
    """The OTB command-line application is not on PATH."""


class Grid(NamedTuple):
    """A north-up output grid: EPSG code, affine transform (upper-left corner), size in pixels."""

    epsg: int
    transform: Affine
    width: int
    height: int


def otb_calibrate(
    measurement: Path,
    out: Path,
    lut: str = "sigma",
    remove_noise: bool = True,
    ram_mb: int = 2048,
    *,
    box: tuple[int, int, int, int] | None = None,
    timeout: float = 3600,
    threads: int | None = None,
) -> Path:
    """Calibrate a GRD measurement TIFF to float32 ``lut`` nought (``dn``: amplitude, uncalibrated).

    ``box`` = (x0, y0, width, height) writes only that region (OTB's ``box`` extended filename);
    the output then has the region's size, with its offset in the geotransform.
    """
    if lut not in LUTS:
        raise ValueError(f"lut must be one of {LUTS}, not {lut!r}")
    target = f"{out}?&box={':'.join(map(str, box))}" if box else str(out)
    args = ["-in", str(measurement), "-out", target, "float", "-lut", lut]
    args += ["-removenoise", str(remove_noise).lower(), "-ram", str(ram_mb)]
    try:
        _run(CALIBRATION, args, timeout, threads)
    except OtbError as err:
        if "SARCalib metadata" in str(err):
            raise OtbError(
                f"{err}\nOTB found no Sentinel-1 calibration for {measurement}: it needs the measurement "
                "TIFF of a SAFE (annotation/ and manifest.safe beside measurement/) whose "
                "TIFFTAG_IMAGEDESCRIPTION starts with 'Sentinel-1'"
            ) from err
        raise
    return Path(out)


def otb_orthorectify(
    image: Path,
    out: Path,
    grid: Grid | tuple[int, Affine, int, int],
    dem_dir: Path | None,
    ram_mb: int = 2048,
    *,
    geoid: Path | Literal["auto"] | None = "auto",
    interpolator: str = "bco",
    grid_spacing: float | None = None,
    timeout: float = 3600,
    threads: int | None = None,
) -> Path:
    """Orthorectify a sensor-geometry image (a measurement or OTB's calibrated output) onto ``grid``.

    ``dem_dir`` holds only DEM tiles (any GDAL raster, lon/lat); None is the ellipsoid. ``geoid``
    "auto" uses PROJ's EGM96 grid when a DEM is given (DEM heights above EGM96) and none without;
    None never uses one. ``grid_spacing`` is OTB's deformation grid step in map units (its default 4).
    """
    epsg, transform, width, height = grid
    if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
        raise ValueError(f"grid must be north-up with positive x and negative y spacing: {transform}")
    if geoid == "auto":
        geoid = _egm96() if dem_dir is not None else None
    args = ["-io.in", str(image), "-io.out", str(out), "float", "-map", "epsg", "-map.epsg.code", str(epsg)]
    args += [
        "-outputs.mode",
        "auto",
        "-outputs.ulx",
        str(float(transform.c)),
        "-outputs.uly",
        str(float(transform.f)),
    ]
    args += ["-outputs.sizex", str(width), "-outputs.sizey", str(height)]
    args += ["-outputs.spacingx", str(float(transform.a)), "-outputs.spacingy", str(float(transform.e))]
    args += ["-interpolator", interpolator, "-opt.ram", str(ram_mb)]
    if dem_dir is not None:
        args += ["-elev.dem", str(dem_dir)]
    if geoid is not None:
        args += ["-elev.geoid", str(geoid)]
    if grid_spacing is not None:
        args += ["-opt.gridspacing", str(float(grid_spacing))]
    _run(ORTHO, args, timeout, threads)
    return Path(out)


def scene_grid(safe: Path, spacing: float = 10.0) -> Grid:
    """The scene footprint (its geolocation grid) in its UTM zone, snapped to ``spacing``."""
    from pyproj import Transformer

    annotation = next(Path(safe).glob("annotation/*.xml"))
    points = ET.parse(annotation).getroot().iterfind("geolocationGrid/geolocationGridPointList/*")
    lonlat = [(float(p.findtext("longitude")), float(p.findtext("latitude"))) for p in points]
    lon, lat = (sum(v) / len(v) for v in zip(*lonlat, strict=True))
    epsg = (32600 if lat >= 0 else 32700) + int((lon + 180) // 6) + 1
    xs, ys = Transformer.from_crs(4326, epsg, always_xy=True).transform(*zip(*lonlat, strict=True))
    x0, y1 = math.floor(min(xs) / spacing) * spacing, math.ceil(max(ys) / spacing) * spacing
    width, height = math.ceil((max(xs) - x0) / spacing), math.ceil((y1 - min(ys)) / spacing)
    return Grid(epsg, Affine(spacing, 0, x0, 0, -spacing, y1), width, height)


def _egm96() -> Path:
    for path in GEOIDS:
        if path.is_file():
            return path
    raise OtbError(
        f"no EGM96 geoid grid found (looked for {', '.join(map(str, GEOIDS))}; Debian: proj-data); "
        "pass geoid=<file> or geoid=None to take the DEM heights as ellipsoidal"
    )


def _run(app: str, args: list[str], timeout: float, threads: int | None) -> None:
    exe = shutil.which(app)
    if exe is None:
        raise OtbNotFoundError(f"{app} not found on PATH: install Orfeo ToolBox (Debian/Ubuntu: otb-bin)")
    env = dict(os.environ)
    if threads:
        env["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(threads)
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as err:
        raise OtbError(f"{app} timed out after {timeout} s") from err
    if proc.returncode != 0:
        lines = (proc.stdout + proc.stderr).replace("\r", "\n").splitlines()
        why = [line for line in lines if "FATAL" in line or "ERROR" in line] or lines[-10:]
        raise OtbError(f"{app} failed (exit {proc.returncode}): " + "\n".join(why))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--safe", type=Path, required=True, help="the .SAFE folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--pol", default="vv", help="polarisation (default vv)")
    parser.add_argument("--lut", default="sigma", choices=LUTS)
    parser.add_argument("--keep-noise", action="store_true", help="no thermal noise removal")
    parser.add_argument("--dem", type=Path, help="folder of DEM tiles (default: the ellipsoid)")
    parser.add_argument("--geoid", default="auto", help="auto (PROJ's EGM96 with --dem), none or a file")
    parser.add_argument("--grid", nargs=6, metavar=("EPSG", "ULX", "ULY", "WIDTH", "HEIGHT", "SPACING"))
    parser.add_argument("--grid-spacing", type=float, default=None, help="OTB's deformation grid step (m)")
    parser.add_argument("--box", type=int, nargs=4, metavar=("X", "Y", "W", "H"), help="calibrate a window only")
    parser.add_argument("--ram", type=int, default=2048, help="OTB RAM budget (MB)")
    parser.add_argument("--timeout", type=float, default=3600, help="per application (s)")
    args = parser.parse_args(argv)

    (measurement,) = args.safe.glob(f"measurement/*-{args.pol.lower()}-*.tiff")
    if args.grid:
        epsg, ulx, uly, width, height, spacing = args.grid
        s = float(spacing)
        grid = Grid(int(epsg), Affine(s, 0, float(ulx), 0, -s, float(uly)), int(width), int(height))
    else:
        grid = scene_grid(args.safe)
    choice = args.geoid.lower()
    geoid: Path | Literal["auto"] | None = (
        "auto" if choice == "auto" else None if choice == "none" else Path(args.geoid)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    calibrated = args.out / f"{args.lut}0_{args.pol.lower()}.tif"
    ortho = calibrated.with_name(f"{calibrated.stem}_ortho.tif")

    t0 = time.perf_counter()
    box = tuple(args.box) if args.box else None
    otb_calibrate(measurement, calibrated, args.lut, not args.keep_noise, args.ram, box=box, timeout=args.timeout)
    t1 = time.perf_counter()
    otb_orthorectify(calibrated, ortho, grid, args.dem, args.ram, geoid=geoid, grid_spacing=args.grid_spacing,
                     timeout=args.timeout)  # fmt: skip
    t2 = time.perf_counter()
    report = {
        "measurement": str(measurement),
        "calibrated": str(calibrated),
        "ortho": str(ortho),
        "grid": {
            "epsg": grid.epsg,
            "transform": list(grid.transform)[:6],
            "width": grid.width,
            "height": grid.height,
        },  # fmt: skip
        "calibrate_s": round(t1 - t0, 2),
        "orthorectify_s": round(t2 - t1, 2),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
