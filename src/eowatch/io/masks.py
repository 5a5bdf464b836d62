"""Cloud, shadow and snow masks for a scene, from whatever the input offers:
the L2A scene classification (SCL) or, for L1C, the offline s2cloudless model
(optional extra ``eowatch[cloudmask]``)."""

from __future__ import annotations

import importlib.util

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..kernels.masks import scl_invalid
from ..model import Block, Grid
from .load import read_band
from .sources import Acquisition
from .windows import CoarseMask

__all__ = ["cloud_mask", "window_cloud_mask", "S2CLOUDLESS_BANDS"]

S2CLOUDLESS_BANDS = ("B01", "B02", "B04", "B05", "B08", "B8A", "B09", "B10", "B11", "B12")


def cloud_mask(
    acq: Acquisition, grid: Grid, method: str = "auto", mask_snow: bool = True
) -> tuple[NDArray[np.bool_], str]:
    """Pixels of ``acq`` on ``grid`` that are cloud, shadow, cirrus (or snow):
    returns the mask and the method actually used (for provenance)."""
    if acq.sensor != "sentinel-2" or method == "none":
        return np.zeros(grid.shape, dtype=bool), "none"
    if method in ("auto", "scl") and "SCL" in acq.assets:
        scl, valid = read_band(acq.assets["SCL"], grid, categorical=True)
        return scl_invalid(scl, mask_snow) | ~valid, "scl"
    if method == "scl":
        raise InputError(f"{acq.id} has no SCL band; use cloud_mask='s2cloudless' (L1C) or 'none'")
    if method == "s2cloudless" or (
        method == "auto" and set(S2CLOUDLESS_BANDS) <= set(acq.assets) and _has_s2cloudless()
    ):
        return _s2cloudless(acq, grid), "s2cloudless"
    return np.zeros(grid.shape, dtype=bool), "none"


def window_cloud_mask(acq: Acquisition, grid: Grid, method: str = "auto") -> tuple[str | CoarseMask, str]:
    """How a windowed read masks clouds: ``"scl"`` (read per window), a
    ``CoarseMask`` (s2cloudless, computed once at 60 m) or ``"none"``; and the
    method name for provenance. Same choice as ``cloud_mask``."""
    if acq.sensor != "sentinel-2" or method == "none":
        return "none", "none"
    if method in ("auto", "scl") and "SCL" in acq.assets:
        return "scl", "scl"
    if method == "scl":
        raise InputError(f"{acq.id} has no SCL band; use cloud_mask='s2cloudless' (L1C) or 'none'")
    if method == "s2cloudless" or (
        method == "auto" and set(S2CLOUDLESS_BANDS) <= set(acq.assets) and _has_s2cloudless()
    ):
        return _s2cloudless_coarse(acq, grid), "s2cloudless"
    return "none", "none"


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
    """s2cloudless on ``grid`` (see ``_s2cloudless_coarse``), as a full-size mask."""
    return _s2cloudless_coarse(acq, grid, factor).window(Block(0, 0, grid.height, grid.width))


def _s2cloudless_coarse(acq: Acquisition, grid: Grid, factor: int = 6) -> CoarseMask:
    """s2cloudless on a grid ``factor`` times coarser (60 m for a 10 m grid, as the
    model's authors advise: it is a per-pixel model, and 36x fewer pixels make it
    routine on full tiles), looked up on ``grid`` by nearest neighbour."""
    if not _has_s2cloudless():
        raise InputError(
            "cloud_mask='s2cloudless' needs the optional extra: pip install 'eowatch[cloudmask]'"
        )
    acq.require(S2CLOUDLESS_BANDS)
    from s2cloudless import S2PixelCloudDetector

    coarse = _coarse(grid, factor)
    stack = np.empty((1, *coarse.shape, len(S2CLOUDLESS_BANDS)), dtype=np.float32)
    valid = np.ones(coarse.shape, dtype=bool)
    for i, band in enumerate(S2CLOUDLESS_BANDS):
        stack[0, ..., i], band_valid = read_band(acq.assets[band], coarse)
        valid &= band_valid
    # The authors' settings for 60 m input: 4 px averaging, 2 px dilation.
    detector = S2PixelCloudDetector(threshold=0.4, average_over=4, dilation_size=2, all_bands=False)
    clouds = detector.get_cloud_masks(np.nan_to_num(stack, nan=0.0))[0].astype(bool) & valid
    return CoarseMask(clouds, grid.shape)
