"""Test support: a writable copy of a Sentinel-1 GRD SAFE whose measurement TIFF looks like a real one.

The shared Rome product keeps its real annotation, calibration and noise XML, but its measurement is a
constant-zero placeholder without GCPs or TIFF tags, which tools that read the measurement TIFF itself
(Orfeo ToolBox, for one) refuse. ``measured_safe`` copies the SAFE and writes each polarisation's
measurement the way the ESA processor does: uint16 at the annotation's size, the annotation's
geolocation grid as GCPs (pixel/line -> lon/lat/height, EPSG:4326), and the three TIFF tags of a real
GRD measurement, e.g. ``TIFFTAG_IMAGEDESCRIPTION=Sentinel-1B IW GRD HR L1``,
``TIFFTAG_SOFTWARE=Sentinel-1 IPF 003.40``, ``TIFFTAG_DATETIME=2021:12:23 06:06:18``.

Unlike a real one (stripped, uncompressed, ~850 MB) it is tiled and ZSTD compressed, and the DN are
given only inside ``window`` with a constant elsewhere, so a full-size product costs a few MB and
seconds to write.
"""

from __future__ import annotations

import shutil
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import numpy as np
import rasterio
from rasterio.control import GroundControlPoint
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

# A DN source: an array for the window, or f(rows, cols) -> DN for absolute pixel indices
# (broadcast 2-D grids of one block).
DN = np.ndarray | Callable[[np.ndarray, np.ndarray], np.ndarray]
BLOCK = 512
_RESOLUTION = {"F": "FR", "H": "HR", "M": "MR"}


def dn_pattern(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Default DN: a smooth, never-zero pattern of the absolute pixel position (1..1000)."""
    return 1 + (rows // 7 + cols // 5) % 1000


def measured_safe(
    src_safe: Path,
    dest_dir: Path,
    dn: DN | dict[str, DN] | None = None,
    window: tuple[int, int, int, int] | None = None,
    *,
    fill: int = 0,
) -> Path:
    """Copy ``src_safe`` into ``dest_dir`` and write its measurement TIFF(s); returns the new SAFE.

    ``window`` is ``(row0, row1, col0, col1)`` (half open; default the whole image); inside it the DN
    come from ``dn`` (an array of the window's shape, a callable, or ``dn_pattern`` when None; or a
    dict of those by polarisation, ``{"vv": ..., "vh": ...}``),
    outside it every pixel is ``fill``. One measurement is written per annotation XML (polarisation).
    """
    src_safe, dest = Path(src_safe), Path(dest_dir) / Path(src_safe).name
    for src in sorted(src_safe.rglob("*")):  # copy files only: the shared tree is read-only
        if src.is_file() and src.parent.name != "measurement":
            (dest / src.relative_to(src_safe)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest / src.relative_to(src_safe))
    (dest / "measurement").mkdir(parents=True, exist_ok=True)
    tags = _tiff_tags(dest)
    for annotation in sorted((dest / "annotation").glob("*.xml")):
        pol = annotation.stem.split("-")[3]
        source = dn.get(pol) if isinstance(dn, dict) else dn  # one DN source per polarisation
        _write_measurement(
            dest / "measurement" / f"{annotation.stem}.tiff", annotation, tags, source, window, fill
        )
    return dest


def measurement_path(safe: Path, polarisation: str = "vv") -> Path:
    """The measurement TIFF of one polarisation in a SAFE folder."""
    (path,) = Path(safe).glob(f"measurement/*-{polarisation.lower()}-*.tiff")
    return path


def geolocation_gcps(annotation: Path) -> list[GroundControlPoint]:
    """The annotation's geolocation grid as GCPs (col=pixel, row=line, x=lon, y=lat, z=height)."""
    points = ET.parse(annotation).getroot().iterfind("geolocationGrid/geolocationGridPointList/*")
    return [
        GroundControlPoint(
            row=float(p.findtext("line")),
            col=float(p.findtext("pixel")),
            x=float(p.findtext("longitude")),
            y=float(p.findtext("latitude")),
            z=float(p.findtext("height")),
            id=str(i),
        )
        for i, p in enumerate(points, start=1)
    ]


def _tiff_tags(safe: Path) -> dict[str, str]:
    """The TIFF tags the IPF writes, from the manifest (mission, mode, product, IPF version, time)."""
    mission, mode, product = safe.name.split("_")[:3]  # e.g. S1B, IW, GRDH
    manifest = ET.parse(safe / "manifest.safe").getroot()
    ns = {"safe": "http://www.esa.int/safe/sentinel-1.0"}
    processing = manifest.find(".//safe:processing", ns)  # the outermost: the GRD post-processing
    software = processing.find("safe:facility/safe:software", ns)
    stop = datetime.fromisoformat(processing.get("stop"))
    resolution = _RESOLUTION[product[3]]
    return {
        "TIFFTAG_IMAGEDESCRIPTION": f"Sentinel-{mission[1:]} {mode} {product[:3]} {resolution} L1",
        "TIFFTAG_SOFTWARE": f"{software.get('name')} {software.get('version')}",
        "TIFFTAG_DATETIME": stop.strftime("%Y:%m:%d %H:%M:%S"),
    }


def _write_measurement(
    path: Path,
    annotation: Path,
    tags: dict[str, str],
    dn: DN | None,
    window: tuple[int, int, int, int] | None,
    fill: int,
) -> None:
    info = ET.parse(annotation).getroot().find("imageAnnotation/imageInformation")
    width, height = int(info.findtext("numberOfSamples")), int(info.findtext("numberOfLines"))
    row0, row1, col0, col1 = window or (0, height, 0, width)
    if not (0 <= row0 < row1 <= height and 0 <= col0 < col1 <= width):
        raise ValueError(f"window {window} outside the {height} x {width} image")
    dn = dn_pattern if dn is None else dn
    if isinstance(dn, np.ndarray) and dn.shape != (row1 - row0, col1 - col0):
        raise ValueError(f"dn has shape {dn.shape}, window is {(row1 - row0, col1 - col0)}")
    constant = np.full((BLOCK, BLOCK), fill, np.uint16)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint16", tiled=True)
    profile.update(blockxsize=BLOCK, blockysize=BLOCK, compress="zstd", photometric="minisblack")
    with warnings.catch_warnings():  # rasterio warns before the GCPs are set
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        ds = rasterio.open(path, "w", **profile)
    with ds:
        ds.gcps = (geolocation_gcps(annotation), "EPSG:4326")
        ds.update_tags(**tags)
        for r in range(0, height, BLOCK):
            for c in range(0, width, BLOCK):
                h, w = min(BLOCK, height - r), min(BLOCK, width - c)
                block = constant[:h, :w]
                # the part of this block inside the window, in absolute pixel indices
                r0, r1, c0, c1 = max(r, row0), min(r + h, row1), max(c, col0), min(c + w, col1)
                if r0 < r1 and c0 < c1:
                    block = block.copy()
                    if isinstance(dn, np.ndarray):
                        values = dn[r0 - row0 : r1 - row0, c0 - col0 : c1 - col0]
                    else:
                        values = dn(*np.mgrid[r0:r1, c0:c1])
                    block[r0 - r : r1 - r, c0 - c : c1 - c] = np.clip(np.rint(values), 0, 65535)
                ds.write(block, 1, window=Window(c, r, w, h))
