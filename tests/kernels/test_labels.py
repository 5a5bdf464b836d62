import numpy as np
import pytest
from scipy import ndimage

from eowatch.kernels.labels import label


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("seed", range(30))
def test_labels_equal_scipy_including_numbering(seed, connectivity):
    rng = np.random.default_rng(seed)
    mask = rng.random((int(rng.integers(1, 60)), int(rng.integers(1, 60)))) < rng.uniform(0.05, 0.9)
    ours, n = label(mask, connectivity)
    structure = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    theirs, n_theirs = ndimage.label(mask, structure=structure)
    assert n == n_theirs
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == np.int32


def test_corner_touch_joins_only_with_8_connectivity_and_bad_input():
    mask = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=bool)
    assert label(mask, 4)[1] == 2 and label(mask, 8)[1] == 1
    assert label(np.zeros((4, 5), bool), 8)[1] == 0
    with pytest.raises(ValueError, match="connectivity"):
        label(mask, 6)
    with pytest.raises(ValueError, match="2-D"):
        label(np.zeros(5, bool))
