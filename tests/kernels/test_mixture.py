"""Two-Gaussian mixtures and the bimodality test: one population never gets a split,
two do, near the valley between them; the tiled search finds populations too small
(or too large) for the whole histogram."""

import numpy as np
import pytest
from scipy import stats

from eowatch.kernels.mixture import Mixture, bimodal_split, fit_mixture, tiled_split


def _speckle_db(rng: np.random.Generator, size: int | tuple[int, ...], enl: float = 4.4) -> np.ndarray:
    return 10 * np.log10(rng.gamma(enl, 1 / enl, size))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_gaussian_is_not_split(seed: int) -> None:
    v = np.random.default_rng(seed).normal(-10, 2, 100_000)
    split = bimodal_split(v)
    assert not split.supported and split.threshold is None
    assert split.mixture is not None and split.mixture.ashman_d < 1.7  # ~1.5: far from 2
    assert "unimodal" in split.reason


def test_skewed_speckle_is_not_split() -> None:
    # Single-look-ish speckle in dB is skewed (a long dark tail): still one population.
    split = bimodal_split(_speckle_db(np.random.default_rng(3), 100_000, enl=1.0))
    assert not split.supported


def test_two_populations_split_near_the_valley() -> None:
    rng = np.random.default_rng(4)
    water, land = rng.normal(-20, 1.5, 15_000), rng.normal(-8, 2.0, 85_000)
    split = bimodal_split(np.concatenate([water, land]))
    assert split.supported and split.mixture is not None
    m = split.mixture
    assert m.means == pytest.approx((-20, -8), abs=0.3)
    assert m.weights == pytest.approx((0.15, 0.85), abs=0.02)
    assert m.ashman_d > 4
    # The Bayes boundary of the true components, and the histogram's valley.
    x = np.linspace(-18, -10, 8001)
    diff = 0.15 * stats.norm.pdf(x, -20, 1.5) - 0.85 * stats.norm.pdf(x, -8, 2.0)
    bayes = x[np.argmin(np.abs(diff))]
    assert split.threshold == pytest.approx(bayes, abs=0.4)
    counts, edges = np.histogram(np.concatenate([water, land]), bins=120, range=(-26, 0))
    inner = (edges[:-1] > -20) & (edges[:-1] < -8)
    valley = edges[:-1][inner][np.argmin(counts[inner])]
    assert split.threshold == pytest.approx(valley, abs=1.0)


def test_small_component_and_contrast_rules() -> None:
    rng = np.random.default_rng(5)
    few = np.concatenate([rng.normal(-20, 1, 500), rng.normal(-8, 1, 99_500)])
    assert not bimodal_split(few, min_weight=0.02).supported  # 0.5 % < 2 %
    close = np.concatenate([rng.normal(-10, 0.5, 50_000), rng.normal(-7, 0.5, 50_000)])
    assert bimodal_split(close).supported  # D ~ 6: clearly two fields...
    refused = bimodal_split(close, min_gap=5.0)  # ...but 3 dB apart is not water vs land
    assert not refused.supported and "apart" in refused.reason


def test_degenerate_inputs() -> None:
    assert fit_mixture(np.full(1000, 3.0)) is None
    assert fit_mixture(np.array([1.0, np.nan, 2.0])) is None
    assert not bimodal_split(np.array([np.nan] * 50)).supported
    assert not tiled_split(np.full((64, 64), np.nan)).supported


def test_crossing_of_equal_components_is_the_midpoint() -> None:
    m = Mixture((0.5, 0.5), (-4.0, 2.0), (1.0, 1.0))
    assert m.crossing() == pytest.approx(-1.0)
    assert m.ashman_d == pytest.approx(np.sqrt(2) * 6 / np.sqrt(2))
    # A heavier right component pushes the boundary towards the left one.
    assert Mixture((0.1, 0.9), (-4.0, 2.0), (1.0, 1.0)).crossing() < -1.0


def test_tiled_search_finds_a_small_lake() -> None:
    rng = np.random.default_rng(6)
    image = -8 + _speckle_db(rng, (256, 256), enl=30)  # filtered land
    image[100:124, 40:70] = -20 + _speckle_db(rng, (24, 30), enl=30)  # 1.1 % water
    assert not bimodal_split(image, min_weight=0.02).supported  # lost in the whole histogram
    split = tiled_split(image, min_gap=5.0)
    assert split.supported and split.tiles >= 2
    assert -19 < split.threshold < -10
    assert "sub-tiles bimodal" in split.reason


def test_tiled_search_on_one_population_finds_nothing() -> None:
    rng = np.random.default_rng(7)
    land = -8 + _speckle_db(rng, (256, 256), enl=30)
    split = tiled_split(land, min_gap=5.0)
    assert not split.supported
    described = split.describe()
    assert described["supported"] is False and "reason" in described


def test_edges_along_the_tile_grid_fall_back_to_the_whole_image() -> None:
    rng = np.random.default_rng(8)
    image = -8 + _speckle_db(rng, (128, 128), enl=30)
    image[32:96, 32:96] = -21 + _speckle_db(rng, (64, 64), enl=30)  # every sub-tile one-sided
    split = tiled_split(image, min_gap=5.0)
    assert split.supported and split.tiles == 0
    assert -19 < split.threshold < -10
    assert "no bimodal sub-tile; whole image: bimodal" == split.reason
