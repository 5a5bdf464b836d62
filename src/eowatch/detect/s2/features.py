"""Per-pixel features of the learned Sentinel-2 change model (``s2-learned``).

One function computes them for a window and for a training pair alike, so that the
model sees at inference exactly what it was trained on. They build on s2-imad's
fitted MAD transform (``IMADFit``): the calibrated chi-square and its local means
(the unsupervised evidence and its surroundings), the log-ratios of the after date
(radiometrically normalised onto the before date) to the before date, and three
spectral indices of both dates and their change. Local means are box means over
``LOCAL_SIZES`` pixels, NaN-aware (invalid pixels are left out of the mean), from
summed-area tables at the rated pixels only; a window needs ``HALO`` pixels of context
on every side.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from ...kernels.jit import kernel
from ...kernels.labels import Components, components
from ...model import Scene
from .common import CLASSIFY_BANDS, bands_of, normalised

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_BANDS",
    "HALO",
    "LOCAL_SIZES",
    "REGION_FEATURE_NAMES",
    "pixel_features",
    "region_features",
]

#: Bands the features read (10 m and the two SWIR bands).
FEATURE_BANDS = CLASSIFY_BANDS
#: Box sizes (px) of the local means.
LOCAL_SIZES = (3, 7, 15)
HALO = max(LOCAL_SIZES) // 2
_INDICES = ("ndvi", "ndwi", "ndbi")
_EPS = np.float32(1.0)  # DN (reflectance x 10000): keeps log-ratios of dark pixels finite

FEATURE_NAMES: tuple[str, ...] = (
    "log_chi2",
    *(f"log_chi2_mean{s}" for s in LOCAL_SIZES),
    "log_chi2_std7",
    *(f"logratio_{b}" for b in FEATURE_BANDS),
    *(f"logratio_{b}_mean7" for b in ("B04", "B08", "B11")),
    *(f"{i}_before" for i in _INDICES),
    *(f"{i}_after" for i in _INDICES),
    *(f"{i}_change" for i in _INDICES),
    *(f"{i}_change_mean7" for i in _INDICES),
    "brightness_before",
    "brightness_after",
)


def _nd(a: NDArray[np.float32], b: NDArray[np.float32]) -> NDArray[np.float32]:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float32] = ((a - b) / (a + b)).astype(np.float32)
    return out


def _indices(bands: dict[str, NDArray[np.float32]]) -> dict[str, NDArray[np.float32]]:
    return {
        "ndvi": _nd(bands["B08"], bands["B04"]),
        "ndwi": _nd(bands["B03"], bands["B08"]),
        "ndbi": _nd(bands["B11"], bands["B08"]),
    }


def _log_ratio(after: NDArray[np.float32], before: NDArray[np.float32]) -> NDArray[np.float32]:
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float32] = np.log(
            (np.maximum(after, 0) + _EPS) / (np.maximum(before, 0) + _EPS)
        ).astype(np.float32)
    return out


class _Boxes:
    """NaN-aware box means at a few pixels (``at``) from summed-area tables: the mean of
    the finite pixels of the box inside the window (four look-ups per pixel and size, not
    a filter over the whole window)."""

    def __init__(self, at: NDArray[np.intp], width: int) -> None:
        rows, cols = np.divmod(at, width)
        self.rows, self.cols = rows.astype(np.int64), cols.astype(np.int64)

    def mean(self, values: NDArray[np.float32], sizes: tuple[int, ...]) -> list[NDArray[np.float32]]:
        """Box means of ``values`` (NaN where the box holds no finite value) for each size."""
        sums, counts = _summed_area(np.ascontiguousarray(values, dtype=np.float32))
        out = []
        for size in sizes:
            mean = np.empty(self.rows.size, dtype=np.float32)
            _box_means(sums, counts, self.rows, self.cols, size // 2, mean)
            out.append(mean)
        return out


@kernel
def _summed_area(values: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.int32]]:
    rows, cols = values.shape
    sums = np.zeros((rows + 1, cols + 1), dtype=np.float64)
    counts = np.zeros((rows + 1, cols + 1), dtype=np.int32)
    for r in range(rows):
        run_sum = 0.0
        run_count = 0
        for c in range(cols):
            v = values[r, c]
            if np.isfinite(v):
                run_sum += v
                run_count += 1
            sums[r + 1, c + 1] = sums[r, c + 1] + run_sum
            counts[r + 1, c + 1] = counts[r, c + 1] + run_count
    return sums, counts


@kernel
def _box_means(
    sums: NDArray[np.float64],
    counts: NDArray[np.int32],
    rows: NDArray[np.int64],
    cols: NDArray[np.int64],
    k: int,
    out: NDArray[np.float32],
) -> None:
    height, width = sums.shape[0] - 1, sums.shape[1] - 1
    for i in range(rows.size):
        r0, r1 = max(rows[i] - k, 0), min(rows[i] + k + 1, height)
        c0, c1 = max(cols[i] - k, 0), min(cols[i] + k + 1, width)
        n = counts[r1, c1] - counts[r0, c1] - counts[r1, c0] + counts[r0, c0]
        if n > 0:
            out[i] = (sums[r1, c1] - sums[r0, c1] - sums[r1, c0] + sums[r0, c0]) / n
        else:
            out[i] = np.nan


def pixel_features(
    before: Scene,
    after: Scene,
    chi2: NDArray[np.float32],
    normalise: dict[str, tuple[float, float]],
    at: NDArray[np.intp],
) -> NDArray[np.float32]:
    """(len(at), len(FEATURE_NAMES)) float32 features of the window's pixels at flat
    indices ``at`` (valid ones); ``chi2`` is the calibrated MAD chi-square (NaN where
    invalid), ``normalise`` the after date's (gain, offset) per band. Only the local means
    are computed over the whole window, every other feature at ``at`` alone."""
    valid = before.valid & after.valid & np.isfinite(chi2)
    b = bands_of(before)
    a = normalised(bands_of(after), normalise)
    boxes = _Boxes(at, valid.shape[1])

    def invalid_nan(x: NDArray[np.float32]) -> NDArray[np.float32]:
        return np.where(valid, x, np.float32(np.nan)).astype(np.float32)

    def mean_at(x: NDArray[np.float32], size: int) -> NDArray[np.float32]:
        return boxes.mean(x, (size,))[0]

    log_chi2 = invalid_nan(np.log1p(np.maximum(chi2, 0)))
    cols: list[NDArray[np.float32]] = [log_chi2.ravel()[at]]
    cols.extend(boxes.mean(log_chi2, LOCAL_SIZES))
    square = mean_at(log_chi2 * log_chi2, 7)
    cols.append(np.sqrt(np.maximum(square - cols[2] ** 2, 0)).astype(np.float32))
    b_at = {k: b[k].ravel()[at] for k in b}
    a_at = {k: a[k].ravel()[at] for k in a}
    cols.extend(_log_ratio(a_at[k], b_at[k]) for k in FEATURE_BANDS)
    cols.extend(mean_at(invalid_nan(_log_ratio(a[k], b[k])), 7) for k in ("B04", "B08", "B11"))
    ib, ia = _indices(b_at), _indices(a_at)
    cols.extend(ib[i] for i in _INDICES)
    cols.extend(ia[i] for i in _INDICES)
    cols.extend((ia[i] - ib[i]).astype(np.float32) for i in _INDICES)
    ib_full, ia_full = _indices(b), _indices(a)
    cols.extend(mean_at(invalid_nan(ia_full[i] - ib_full[i]), 7) for i in _INDICES)
    scale = np.float32(1.0 / (4 * 10000.0))
    cols.append(((b_at["B02"] + b_at["B03"] + b_at["B04"] + b_at["B08"]) * scale).astype(np.float32))
    cols.append(((a_at["B02"] + a_at["B03"] + a_at["B04"] + a_at["B08"]) * scale).astype(np.float32))
    return np.ascontiguousarray(np.stack(cols, axis=1), dtype=np.float32)


#: Per-region features of the region stage (``region_features``), in order.
REGION_FEATURE_NAMES = ("mean_p", "max_p", "std_p", "log_area_px", "share_above_half")


def region_features(
    probability: NDArray[np.float32], threshold: float
) -> tuple[Components, NDArray[np.float32]]:
    """The 4-connected regions where the pixel change probability exceeds ``threshold``
    (as ``regions_above`` finds them) and their features (count, REGION_FEATURE_NAMES)."""
    with np.errstate(invalid="ignore"):
        found = components(probability > np.float32(threshold), 4)
    values = probability.ravel()[found.inside]
    out = np.empty((found.count, len(REGION_FEATURE_NAMES)), dtype=np.float32)
    _region_stats(found.pixel_labels, values, out)
    return found, out


@kernel
def _region_stats(labels: NDArray[np.int32], values: NDArray[np.float32], out: NDArray[np.float32]) -> None:
    n = out.shape[0]
    count = np.zeros(n, dtype=np.int64)
    total = np.zeros(n, dtype=np.float64)
    square = np.zeros(n, dtype=np.float64)
    top = np.zeros(n, dtype=np.float64)
    above = np.zeros(n, dtype=np.int64)
    for i in range(labels.size):
        k = labels[i] - 1
        v = values[i]
        count[k] += 1
        total[k] += v
        square[k] += v * v
        top[k] = max(top[k], v)
        if v > 0.5:
            above[k] += 1
    for k in range(n):
        mean = total[k] / count[k]
        out[k, 0] = mean
        out[k, 1] = top[k]
        out[k, 2] = np.sqrt(max(square[k] / count[k] - mean * mean, 0.0))
        out[k, 3] = np.log(count[k])
        out[k, 4] = above[k] / count[k]
