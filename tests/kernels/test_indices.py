import numpy as np
import pytest

from eowatch.errors import MissingBandError
from eowatch.kernels import indices as ix


def test_normalized_difference_values_and_zero_denominator():
    a = np.array([0.3, 0.0, 0.2, np.nan], dtype=np.float32)
    b = np.array([0.1, 0.0, 0.2, 0.1], dtype=np.float32)
    out = ix.normalized_difference(a, b)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[:1], [0.5], rtol=1e-6)
    assert np.isnan(out[1]) and np.isnan(out[3])
    assert out[2] == 0.0


def test_index_formulas():
    blue, green, red, nir, swir1, swir2 = 0.05, 0.08, 0.06, 0.40, 0.20, 0.10
    assert ix.ndvi(nir, red) == pytest.approx((nir - red) / (nir + red), rel=1e-6)
    assert ix.ndwi(green, nir) == pytest.approx((green - nir) / (green + nir), rel=1e-6)
    assert ix.ndbi(swir1, nir) == pytest.approx((swir1 - nir) / (swir1 + nir), rel=1e-6)
    assert ix.nbr(nir, swir2) == pytest.approx((nir - swir2) / (nir + swir2), rel=1e-6)
    expected_bsi = ((swir1 + red) - (nir + blue)) / ((swir1 + red) + (nir + blue))
    assert ix.bsi(blue, red, nir, swir1) == pytest.approx(expected_bsi, rel=1e-6)


def test_compute_index_registry_matches_functions():
    rng = np.random.default_rng(0)
    bands = {
        b: rng.uniform(0.01, 0.5, (4, 5)).astype(np.float32)
        for b in ("B02", "B03", "B04", "B08", "B11", "B12")
    }
    for name, needed in ix.INDEX_BANDS.items():
        direct = ix.INDEX_FUNCTIONS[name](*(bands[b] for b in needed))
        np.testing.assert_array_equal(ix.compute_index(name, bands), direct)
    np.testing.assert_allclose(
        ix.compute_index("NDVI", bands),
        (bands["B08"] - bands["B04"]) / (bands["B08"] + bands["B04"]),
        rtol=1e-5,
    )


def test_compute_index_errors():
    with pytest.raises(KeyError, match="unknown index"):
        ix.compute_index("evi9", {})
    with pytest.raises(MissingBandError, match="B11"):
        ix.compute_index("ndbi", {"B08": np.ones(2)})
