"""Omnibus test: false-alarm rates on simulated no-change speckle, detection of known changes."""

from __future__ import annotations

import numpy as np
import pytest

from eowatch.kernels import omnibus as om

ENL = 4.4
SIGMA = np.array([0.1, 0.02])  # VV, VH mean intensity


def _series(rng: np.random.Generator, k: int, shape: tuple[int, int], p: int = 2) -> np.ndarray:
    """No-change series: independent Gamma(ENL, sigma/ENL) intensities per channel and date
    (the diagonal of a complex Wishart matrix with ENL looks)."""
    sig = SIGMA[:p][None, :, None, None]
    return (rng.gamma(ENL, 1.0, (k, p) + shape) * sig / ENL).astype(np.float32)


@pytest.mark.parametrize("k", [2, 5])
def test_false_alarm_rate_matches_alpha(k: int) -> None:
    rng = np.random.default_rng(42 + k)
    x = _series(rng, k, (1000, 600))  # 600k pixels
    pv = om.omnibus_pvalue(x, ENL)
    seq = om.sequential_pvalues(x, ENL)
    for alpha in (0.01, 0.001):
        far = float(np.mean(pv < alpha))
        print(f"k={k} alpha={alpha}: omnibus false-alarm rate {far:.5f} ({far / alpha:.3f} x alpha)")
        assert abs(far / alpha - 1.0) < 0.2
        for j, s in enumerate(seq, start=2):
            far_j = float(np.mean(s < alpha))
            print(f"  R_{j}: {far_j:.5f} ({far_j / alpha:.3f} x alpha)")
            assert abs(far_j / alpha - 1.0) < 0.2


def test_single_pol_false_alarm_rate() -> None:
    rng = np.random.default_rng(7)
    x = _series(rng, 3, (1000, 600), p=1)[:, 0]  # (k, rows, cols) form
    pv = om.omnibus_pvalue(x, ENL)
    for alpha in (0.01, 0.001):
        far = float(np.mean(pv < alpha))
        print(f"p=1 k=3 alpha={alpha}: {far:.5f}")
        assert abs(far / alpha - 1.0) < 0.2


def test_sequential_change_maps_false_alarms() -> None:
    rng = np.random.default_rng(3)
    x = _series(rng, 5, (400, 400))
    res = om.omnibus_change(x, ENL, alpha=0.01)
    any_change = float(np.mean(res.frequency > 0))
    print(f"no-change series k=5: fraction with any change {any_change:.4f}")
    assert any_change < 0.015
    assert res.p_overall.shape == (400, 400)
    assert res.p_sequential.shape == (4, 4, 400, 400)
    assert np.isnan(res.p_sequential[1, 0]).all()  # interval 1 is not tested from ell = 2


@pytest.mark.parametrize(
    ("enl", "change_db", "min_rate"),
    # Single-look-ish data (ENL 4.4): a 3 dB change is only weakly detectable per pixel
    # (the log-intensity spread is ~2.2 dB per date); 10 dB is found reliably. After 7x7
    # multi-looking/filtering (ENL ~50) 3 dB is found reliably too.
    [(4.4, 3.0, 0.04), (4.4, 10.0, 0.85), (50.0, 3.0, 0.9)],
)
def test_two_date_detection_rate(enl: float, change_db: float, min_rate: float) -> None:
    rng = np.random.default_rng(5)
    sig = SIGMA[:, None, None]
    before = (rng.gamma(enl, 1.0, (2, 400, 400)) * sig / enl).astype(np.float32)
    after = (rng.gamma(enl, 1.0, (2, 400, 400)) * sig / enl).astype(np.float32)
    f = 10 ** (change_db / 10)
    after[:, 100:200, 100:200] *= f  # increase in both channels
    after[:, 250:350, 250:350] /= f  # decrease
    pv, codes = om.omnibus_two_date(before, after, enl, alpha=0.01)
    up = float(np.mean(codes[100:200, 100:200] == om.INCREASE))
    down = float(np.mean(codes[250:350, 250:350] == om.DECREASE))
    mask = np.ones((400, 400), bool)
    mask[100:200, 100:200] = mask[250:350, 250:350] = False
    far = float(np.mean(codes[mask] != om.NO_CHANGE))
    print(
        f"k=2 ENL={enl} +/-{change_db} dB: detection rate increase {up:.3f}, decrease {down:.3f}; "
        f"false alarms {far:.4f} (alpha 0.01)"
    )
    assert up > min_rate and down > min_rate
    assert far < 0.012


def test_series_change_maps_locate_changes() -> None:
    rng = np.random.default_rng(11)
    x = _series(rng, 5, (300, 300))
    x[2:, :, 50:150, 50:150] *= 10.0  # +10 dB from date 3: interval 2
    x[1:3, :, 180:280, 180:280] /= 10.0  # -10 dB at dates 2-3: intervals 1 (down) and 3 (up)
    res = om.omnibus_change(x, ENL, alpha=0.01)
    blk = (slice(50, 150), slice(50, 150))
    rate = float(np.mean(res.first_change[blk] == 2))
    print(f"k=5 ENL={ENL} +10 dB at interval 2: detected at the right interval in {rate:.3f} of pixels")
    assert rate > 0.8
    assert np.mean(res.direction[1][blk] == om.INCREASE) > 0.8
    blk2 = (slice(180, 280), slice(180, 280))
    both = float(np.mean((res.first_change[blk2] == 1) & (res.last_change[blk2] == 3)))
    print(f"k=5 -10 dB at interval 1 and back at 3: both intervals found in {both:.3f} of pixels")
    assert both > 0.7
    assert np.mean(res.frequency[blk2] == 2) > 0.7
    assert np.mean(res.direction[0][blk2] == om.DECREASE) > 0.8
    assert np.mean(res.direction[2][blk2] == om.INCREASE) > 0.7
    quiet = np.ones((300, 300), bool)
    quiet[40:160, 40:160] = quiet[170:290, 170:290] = False
    assert np.mean(res.frequency[quiet] > 0) < 0.015


def test_nodata_and_validation() -> None:
    rng = np.random.default_rng(0)
    x = _series(rng, 3, (20, 20))
    x[1, 0, 0, 0] = np.nan
    x[0, 1, 1, 1] = 0.0
    res = om.omnibus_change(x, ENL)
    assert not res.valid[0, 0] and not res.valid[1, 1]
    assert np.isnan(res.p_overall[0, 0])
    assert res.first_change[0, 0] == -1
    assert (res.direction[:, 0, 0] == om.NODATA).all()
    with pytest.raises(ValueError):
        om.omnibus_change(x[:1], ENL)
    with pytest.raises(ValueError):
        om.omnibus_change(x, ENL, alpha=0.0)
    with pytest.raises(ValueError):
        om.omnibus_pvalue(x, 0.0)
