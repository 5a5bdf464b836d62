"""Regions of a change map and their zonal statistics.

A region is a 4-connected set of pixels of one change class (as GDAL's polygonizer
sees them). ``class_regions`` labels them in one pass over the changed pixels
(``eowatch.kernels.labels``); only the rare components that hold several classes
(adjacent regions of different classes) are split, inside their bounding boxes, so
the cost does not grow with the number of classes. ``zonal_statistics`` reduces
per-pixel values to per-region figures with ``np.bincount`` (no loop over pixels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from .labels import components

__all__ = ["Regions", "class_regions", "zonal_statistics", "nanmean_by_label"]

_CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity, as GDAL's polygonize default


@dataclass(frozen=True)
class Regions:
    """Connected regions: label image (0 = background), the class of each label, and
    the labelled pixels as flat indices (ascending) with their labels."""

    labels: NDArray[np.int32]
    label_class: NDArray[np.int64]  # index 0 unused
    inside: NDArray[np.int64]
    pixel_labels: NDArray[np.int64]

    @property
    def count(self) -> int:
        return len(self.label_class) - 1


def class_regions(classes: NDArray[np.uint8], changed: NDArray[np.bool_]) -> Regions:
    """The 4-connected regions of equal class among the ``changed`` pixels."""
    found = components(changed, 4)
    labels, n, inside = found.image(changed.shape), found.count, found.inside
    if n == 0:
        return Regions(labels, np.zeros(1, dtype=np.int64), inside, np.zeros(0, dtype=np.int64))
    pixel_labels = found.pixel_labels.astype(np.int64)
    # Pixels per (label, class): the class of each label, and the labels holding several.
    counts = found.value_counts(classes.ravel()[inside])
    label_class = counts.argmax(axis=1).astype(np.int64)
    label_class[0] = 0
    mixed = np.flatnonzero((counts[1:] > 0).sum(axis=1) > 1) + 1
    if mixed.size:
        label_class = _split_mixed(labels, classes, mixed, label_class)
        pixel_labels = labels.ravel()[inside].astype(np.int64)
    return Regions(labels, label_class, inside, pixel_labels)


def _split_mixed(
    labels: NDArray[np.int32],
    classes: NDArray[np.uint8],
    mixed: NDArray[np.intp],
    label_class: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Relabel (in place) each multi-class component into one label per class region."""
    classes_out = [int(c) for c in label_class]
    slices = ndimage.find_objects(labels)
    for label in mixed:
        window = slices[label - 1]
        assert window is not None
        view = labels[window]
        component = view == label
        sub_classes = classes[window]
        for i, value in enumerate(np.unique(sub_classes[component])):
            parts, n = ndimage.label(component & (sub_classes == value), structure=_CROSS)
            # The component's own label goes to its first region; the others get new ones.
            reuse = [int(label)] if i == 0 else []
            if reuse:
                classes_out[label] = int(value)
            new = reuse + list(range(len(classes_out), len(classes_out) + n - len(reuse)))
            classes_out.extend([int(value)] * (n - len(reuse)))
            lut = np.asarray([0, *new], dtype=np.int32)
            inside = parts > 0
            view[inside] = lut[parts[inside]]
    return np.asarray(classes_out, dtype=np.int64)


def zonal_statistics(
    regions: Regions,
    statistic: NDArray[np.floating[Any]],
    confidence_of: Callable[[NDArray[np.floating[Any]]], NDArray[np.float32]] | None = None,
) -> dict[str, NDArray[Any]]:
    """Per region (index = label - 1): pixel count, mean and max of the finite statistic,
    and the mean confidence of its pixels (``confidence_of`` the statistic; NaN without)."""
    idx = regions.pixel_labels - 1
    n = regions.count
    values = np.asarray(statistic).ravel()[regions.inside].astype(np.float64)
    maxima = np.full(n, -np.inf)
    np.maximum.at(maxima, idx, np.where(np.isfinite(values), values, -np.inf))
    confidence = (
        nanmean_by_label(idx, np.asarray(confidence_of(values)).astype(np.float64), n)
        if confidence_of is not None
        else np.full(n, np.nan)
    )
    return {
        "pixel_count": np.bincount(idx, minlength=n),
        "mean_statistic": nanmean_by_label(idx, values, n),
        "max_statistic": np.where(np.isfinite(maxima), maxima, np.nan),
        "confidence": confidence,
    }


def nanmean_by_label(idx: NDArray[np.int64], values: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Mean of the finite ``values`` per label (NaN where a label has none)."""
    finite = np.isfinite(values)
    sums = np.bincount(idx[finite], weights=values[finite], minlength=n)
    counts = np.bincount(idx[finite], minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: NDArray[np.float64] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out
