"""Pixel masks from quality layers."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["SCL_CLASSES", "SCL_INVALID", "scl_invalid"]

#: Sentinel-2 L2A scene classification values (ESA L2A product format).
SCL_CLASSES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",
    3: "cloud shadow",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow or ice",
}
#: Classes that are never a valid observation of the ground.
SCL_INVALID = (0, 1, 3, 8, 9, 10)
SCL_SNOW = 11


def scl_invalid(scl: NDArray[np.floating] | NDArray[np.integer], mask_snow: bool = True) -> NDArray[np.bool_]:
    """True where the SCL says no data, defective, cloud, cirrus or shadow
    (and snow/ice when ``mask_snow``): changes there cannot be trusted."""
    codes = SCL_INVALID + ((SCL_SNOW,) if mask_snow else ())
    return np.isin(np.asarray(scl).astype(np.int16), codes)
