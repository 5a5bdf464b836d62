from __future__ import annotations

import numpy as np
import pytest

from eowatch.errors import InputError
from eowatch.io.load import pair_grid
from eowatch.io.masks import cloud_mask
from eowatch.io.sources import resolve_input
from eowatch.kernels.masks import scl_invalid


def test_scl_classes_masked():
    scl = np.arange(12, dtype=np.uint8)
    assert scl_invalid(scl).tolist() == [c in (0, 1, 3, 8, 9, 10, 11) for c in range(12)]
    assert not scl_invalid(scl, mask_snow=False)[11]


def test_s2cloudless_runs_offline_on_l1c(paris):
    """The optional offline model (shipped in its wheel) on the bundled L1C pair."""
    b, a = resolve_input(paris / "imgs_1"), resolve_input(paris / "imgs_2")
    grid = pair_grid(b, a)
    mask, method = cloud_mask(a, grid, "s2cloudless")
    assert method == "s2cloudless" and mask.shape == grid.shape
    # The Paris after date has small clouds; most of the scene is clear.
    assert 0.0 < mask.mean() < 0.2
    auto_mask, auto_method = cloud_mask(a, grid, "auto")
    assert auto_method == "s2cloudless" and (auto_mask == mask).all()
    assert cloud_mask(a, grid, "none")[1] == "none"


def test_scl_requested_without_scl_band(paris):
    acq = resolve_input(paris / "imgs_1")
    with pytest.raises(InputError, match="no SCL band"):
        cloud_mask(acq, pair_grid(acq, acq), "scl")
