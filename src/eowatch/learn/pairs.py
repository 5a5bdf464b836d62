"""Labelled pairs for training: OSCD-layout folders, or any pair with a label raster.

A label raster is on the pixel grid of the before date (the grid every run of the pair
uses) with one of two encodings: 1 = no change, 2 = change (0 = unknown; OSCD's) or
0 = no change, 1 = change; pixels equal to its nodata value (or the one given) are
unknown. ``read_labels`` checks the shape, the values and that there is change to learn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..io.load import plain_band_nodata, read_plain_band

__all__ = ["LabelledPair", "Labels", "OSCD_LICENCE", "oscd_pairs", "read_labels"]

OSCD_LICENCE = "CC BY-NC-SA (OSCD change maps, Daudt et al. IGARSS 2018; non-commercial)"


@dataclass(frozen=True)
class LabelledPair:
    """A before/after pair (folders or files ``plan_pair`` accepts) and its label raster."""

    name: str
    before: Path
    after: Path
    label: Path
    nodata: float | None = None
    licence: str = "unknown"
    source: str = ""
    #: "1/2" (1 = no change, 2 = change, 0 = unknown), "0/1", or "auto" (from the values).
    encoding: str = "auto"
    #: Refuse labels without change (a label raster); analysts' verdicts may all be false alarms.
    require_change: bool = True


@dataclass(frozen=True)
class Labels:
    """Which pixels are labelled (``known``) and which of them changed (``change``)."""

    known: NDArray[np.bool_]
    change: NDArray[np.bool_]

    @property
    def labelled_px(self) -> int:
        return int(self.known.sum())

    @property
    def change_px(self) -> int:
        return int((self.change & self.known).sum())


def oscd_pairs(root: Path, licence: str = OSCD_LICENCE) -> list[LabelledPair]:
    """The labelled cities of an OSCD-layout folder (``<city>/imgs_1``, ``imgs_2``,
    ``cm/<city>-cm.tif``), sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root} is not a folder; give an OSCD-layout folder (<city>/imgs_1, imgs_2, cm/)")
    pairs = [
        LabelledPair(
            c.name, c / "imgs_1", c / "imgs_2", c / "cm" / f"{c.name}-cm.tif", None, licence, "OSCD", "1/2"
        )
        for c in sorted(root.iterdir())
        if (c / "imgs_1").is_dir() and (c / "imgs_2").is_dir() and (c / "cm" / f"{c.name}-cm.tif").is_file()
    ]
    if not pairs:
        raise InputError(f"no labelled OSCD city (<city>/imgs_1, imgs_2 and cm/<city>-cm.tif) under {root}")
    return pairs


def read_labels(pair: LabelledPair, shape: tuple[int, int]) -> Labels:
    """The pair's labels on a grid of ``shape`` (rows, cols)."""
    try:
        raw = np.asarray(read_plain_band(pair.label))
    except Exception as exc:  # rasterio's errors and missing files alike
        raise InputError(
            f"cannot read the label raster {pair.label}: {exc}; give a readable GeoTIFF"
        ) from None
    if raw.shape != tuple(shape):
        raise InputError(
            f"label raster {pair.label} is {raw.shape[0]}x{raw.shape[1]} but the pair {pair.name} is "
            f"{shape[0]}x{shape[1]} on the before date's grid; resample the labels onto that grid"
        )
    nodata = pair.nodata if pair.nodata is not None else plain_band_nodata(pair.label)
    usable = np.ones(raw.shape, dtype=bool) if nodata is None else raw != nodata
    if raw.dtype.kind == "f":
        usable &= np.isfinite(raw)
    values = set(np.unique(raw[usable]).tolist())
    oscd = pair.encoding == "1/2" or (pair.encoding == "auto" and 2 in values)
    if values <= {0, 1, 2} and oscd:
        known, change = usable & (raw >= 1), raw == 2  # OSCD: 1 no change, 2 change, 0 unknown
    elif values <= {0, 1} and pair.encoding != "1/2":
        known, change = usable, raw == 1
    else:
        raise InputError(
            f"label raster {pair.label} holds values {sorted(values)[:8]}; use 1 = no change, 2 = change "
            "(0 = unknown) or 0 = no change, 1 = change, with a nodata value for unknown pixels"
        )
    labels = Labels(known, change & known)
    if labels.change_px == 0 and pair.require_change:
        raise InputError(
            f"label raster {pair.label} has no change pixel (of {labels.labelled_px} labelled); a model "
            "needs examples of change: add a pair with change or fix the encoding/nodata value"
        )
    if labels.labelled_px == 0:
        raise InputError(f"label raster {pair.label} labels no pixel of the pair {pair.name}")
    if labels.change_px == labels.labelled_px and pair.require_change:
        raise InputError(f"label raster {pair.label} has no 'no change' pixel; check the label encoding")
    return labels
