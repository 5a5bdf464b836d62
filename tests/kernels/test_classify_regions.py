"""Regions keep their class when their mean rule terms support it (not only when every
pixel does), and lose it to "other change" when the means contradict it."""

from __future__ import annotations

import numpy as np

from eowatch.detect.base import PixelValues
from eowatch.detect.s2.common import CANDIDATE, regions_above
from eowatch.kernels import classify
from eowatch.model import Block

SHAPE = (6, 8)


def _terms(dndvi: np.ndarray) -> np.ndarray:
    """Rule terms (``classify.RULE_TERMS`` order) where only dNDVI says anything."""
    rows = {name: np.full(dndvi.shape, np.nan) for name in classify.RULE_TERMS}
    rows["dndvi"] = dndvi
    return np.stack([rows[k] for k in classify.RULE_TERMS]).astype(np.float16)


def _run(dndvi_left: np.ndarray, dndvi_right: np.ndarray) -> np.ndarray:
    """Two regions (columns 0-2 and 5-7), each of 2 x 3 pixels with the given dNDVI."""
    statistic = np.zeros(SHAPE, dtype=np.float32)
    codes = np.zeros(SHAPE, dtype=np.uint8)
    dndvi = np.zeros(SHAPE)
    for cols, values in ((slice(0, 3), dndvi_left), (slice(5, 8), dndvi_right)):
        statistic[2:4, cols] = 10
        dndvi[2:4, cols] = values.reshape(2, 3)
    at = np.flatnonzero(statistic > 1)
    terms = {name: np.full(at.size, np.nan) for name in classify.RULE_TERMS}
    terms["dndvi"] = dndvi.ravel()[at]
    codes.ravel()[at] = CANDIDATE | classify.support_of_terms(terms)
    pixels = PixelValues(SHAPE[1], [(Block(0, 0, *SHAPE), at.astype(np.int32), _terms(dndvi.ravel()[at]))])
    return regions_above(codes, statistic, 1.0, pixels)


def test_a_region_keeps_its_class_on_its_mean_terms():
    # Left: 5 pixels lost vegetation strongly, one only a little (-0.1): the mean -0.43 holds.
    # Right: 4 pixels at -0.25 and 2 gaining 0.3: the majority says loss, the mean -0.07 does not.
    classes = _run(np.array([-0.5, -0.5, -0.5, -0.5, -0.5, -0.1]), np.array([-0.25] * 4 + [0.3, 0.3]))
    assert (classes[2:4, 0:3] == classify.VEGETATION_LOSS).all()  # one polygon, no "other" sliver
    assert (classes[2:4, 5:8] == classify.OTHER_CHANGE).all()
    assert (classes[:2] == 0).all() and (classes[4:] == 0).all()


def test_without_terms_a_region_needs_every_pixel_to_support_its_class():
    statistic = np.zeros(SHAPE, dtype=np.float32)
    statistic[2:4, 0:3] = 10
    at = np.flatnonzero(statistic > 1)
    dndvi = np.array([-0.5, -0.5, -0.5, -0.5, -0.5, -0.1])
    terms = {name: np.full(at.size, np.nan) for name in classify.RULE_TERMS}
    terms["dndvi"] = dndvi
    codes = np.zeros(SHAPE, dtype=np.uint8)
    codes.ravel()[at] = CANDIDATE | classify.support_of_terms(terms)
    classes = regions_above(codes, statistic, 1.0, None)
    assert (classes[2:4, 0:3] == classify.OTHER_CHANGE).all()
