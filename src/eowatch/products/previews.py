"""What the quicklook shows of one date: true colour when the run read it, else its
first band (in dB for radar, whose linear power is too skewed to look at)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ..io.windows import SceneSpec

__all__ = ["preview_panel", "display_bands", "TRUE_COLOUR"]

TRUE_COLOUR = ("B04", "B03", "B02")


def display_bands(source: SceneSpec) -> tuple[str, ...]:
    """The bands a date is shown with: true colour when the run reads it, else the first."""
    return TRUE_COLOUR if all(b in source.bands for b in TRUE_COLOUR) else source.bands[:1]


def preview_panel(source: SceneSpec, valid: NDArray[np.bool_]) -> NDArray[np.float32]:
    """One date at the shape of ``valid`` (the reduced change map's valid pixels), NaN elsewhere."""
    bands = display_bands(source)
    values = source.preview(bands, valid.shape)
    if bands != TRUE_COLOUR and source.acq.sensor == "sentinel-1":
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (10.0 * np.log10(np.maximum(values, 1e-6))).astype(np.float32)
    return np.where(valid, values, np.nan).astype(np.float32)
