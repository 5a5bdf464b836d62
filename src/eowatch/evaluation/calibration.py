"""Is a preset's confidence a probability? The reliability table of flagged pixels
(confidence bins -> observed precision, count) and the expected calibration error
(ECE: the count-weighted mean gap between a bin's mean confidence and its precision;
Guo et al. 2017). A confidence of 0.8 should be right 8 times in 10."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["reliability"]


def reliability(
    confidence: NDArray[np.floating], correct: NDArray[np.bool_], bins: int = 10
) -> dict[str, Any]:
    """The reliability table of ``confidence`` (0..1, one per flagged pixel; NaN = not
    rated, left out) against whether each flag was right, over ``bins`` equal bins."""
    c = np.asarray(confidence, dtype=np.float64).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    if c.shape != ok.shape:
        raise ValueError(f"confidence and correct differ in size ({c.size} vs {ok.size})")
    rated = np.isfinite(c)
    c, ok = np.clip(c[rated], 0.0, 1.0), ok[rated]
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    table = []
    gap = 0.0
    for b in range(bins):
        inside = index == b
        n = int(inside.sum())
        row: dict[str, Any] = {"low": float(edges[b]), "high": float(edges[b + 1]), "count": n}
        if n:
            row["mean_confidence"] = float(c[inside].mean())
            row["precision"] = float(ok[inside].mean())
            gap += n * abs(row["mean_confidence"] - row["precision"])
        table.append(row)
    return {
        "bins": table,
        "rated": int(c.size),
        "unrated": int((~rated).sum()),
        "ece": float(gap / c.size) if c.size else None,
    }
