"""Label rasters: encodings, nodata, and the errors that name the fix."""

from __future__ import annotations

import numpy as np
import pytest

from eowatch.errors import InputError
from eowatch.learn.pairs import LabelledPair, read_labels
from tests.conftest import write_raster


def _pair(path, nodata=None):
    return LabelledPair("t", path, path, path, nodata)


def test_both_encodings_and_nodata(tmp_path):
    oscd = write_raster(tmp_path / "a.tif", np.array([[0, 1], [2, 1]], dtype=np.uint8))
    labels = read_labels(_pair(oscd), (2, 2))
    assert labels.known.tolist() == [[False, True], [True, True]] and labels.change_px == 1
    binary = write_raster(tmp_path / "b.tif", np.array([[0, 1], [255, 0]], dtype=np.uint8), nodata=255)
    labels = read_labels(_pair(binary), (2, 2))
    assert labels.labelled_px == 3 and labels.change.tolist() == [[False, True], [False, False]]


def test_wrong_shape_no_change_or_odd_values_are_input_errors(tmp_path):
    path = write_raster(tmp_path / "a.tif", np.array([[1, 2], [1, 1]], dtype=np.uint8))
    with pytest.raises(InputError, match="is 2x2 but the pair t is 3x2.*resample"):
        read_labels(_pair(path), (3, 2))
    none = write_raster(tmp_path / "n.tif", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(InputError, match="no change pixel"):
        read_labels(_pair(none), (2, 2))
    odd = write_raster(tmp_path / "o.tif", np.array([[7, 1], [2, 1]], dtype=np.uint8))
    with pytest.raises(InputError, match="1 = no change, 2 = change"):
        read_labels(_pair(odd), (2, 2))
    with pytest.raises(InputError, match="cannot read the label raster"):
        read_labels(_pair(tmp_path / "missing.tif"), (2, 2))
