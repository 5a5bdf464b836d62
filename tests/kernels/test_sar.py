"""SAR helpers: units, ENL estimation, log-ratio and bright-target rule."""

from __future__ import annotations

import numpy as np
import pytest

from eowatch.kernels import sar


def test_db_round_trip_and_floor() -> None:
    x = np.array([1.0, 0.1, 0.01, 0.0, -1.0, np.nan], dtype=np.float32)
    db = sar.to_db(x, floor_db=-50.0)
    np.testing.assert_allclose(db[:3], [0.0, -10.0, -20.0], atol=1e-5)
    assert db[3] == pytest.approx(-50.0) and db[4] == pytest.approx(-50.0)
    assert np.isnan(db[5])
    back = sar.from_db(db[:3])
    np.testing.assert_allclose(back, x[:3], rtol=1e-5)
    floored = sar.from_db(np.array([-60.0, -10.0, np.nan]), floor_db=-40.0)
    np.testing.assert_allclose(floored[:2], [1e-4, 0.1], rtol=1e-5)
    assert np.isnan(floored[2])
    assert db.dtype == np.float32 and back.dtype == np.float32


def test_looks_like_db() -> None:
    rng = np.random.default_rng(0)
    lin = rng.gamma(4.4, 0.05 / 4.4, 10000).astype(np.float32)
    assert not sar.looks_like_db(lin)
    assert sar.looks_like_db(sar.to_db(lin))
    assert sar.looks_like_db(np.array([-12.0, -8.0, 2.0, np.nan]))
    assert not sar.looks_like_db(np.array([np.nan]))


@pytest.mark.parametrize("enl", [1.0, 4.4, 10.0])
def test_estimate_enl_recovers_known_enl(enl: float) -> None:
    rng = np.random.default_rng(int(enl * 10))
    # Piecewise-constant field (64x64 blocks, 20 dB range) with one textured half.
    field = np.kron(rng.uniform(0.01, 1.0, (8, 8)), np.ones((64, 64)))
    field[:256] *= rng.gamma(3.0, 1.0 / 3.0, (256, 512))
    x = (rng.gamma(enl, 1.0, field.shape) * field / enl).astype(np.float32)
    x[:5, :5] = np.nan
    est = sar.estimate_enl(x)
    print(f"ENL {enl}: estimated {est:.2f}")
    assert est == pytest.approx(enl, rel=0.1)


def test_estimate_enl_too_small() -> None:
    assert np.isnan(sar.estimate_enl(np.ones((10, 10), np.float32)))


def test_log_ratio() -> None:
    before = np.array([[0.1, 0.1], [1.0, np.nan]], dtype=np.float32)
    after = np.array([[1.0, 0.01], [1.0, 1.0]], dtype=np.float32)
    lr = sar.log_ratio(before, after)
    np.testing.assert_allclose(lr[0], [10.0, -10.0], atol=1e-5)
    assert lr[1, 0] == pytest.approx(0.0)
    assert np.isnan(lr[1, 1])
    assert np.isnan(sar.log_ratio(np.array([0.0]), np.array([1.0]))[0])


def test_bright_target_change_codes() -> None:
    before = np.array([[-20.0, -5.0, -20.0, -30.0, -45.0, -20.0, np.nan]])
    after = np.array([[-5.0, -20.0, -14.0, -18.0, -8.0, -11.0, -5.0]])
    codes = sar.bright_target_change(before, after)
    # appeared, disappeared, too small a change, neither date bright, below the floor,
    # 9 dB only, nodata
    expected = [
        [sar.INCREASE, sar.DECREASE, sar.NO_CHANGE, sar.NO_CHANGE, sar.NO_CHANGE, sar.NO_CHANGE, sar.NODATA]
    ]
    np.testing.assert_array_equal(codes, expected)
    assert codes.dtype == np.uint8


def test_direction_codes() -> None:
    change = np.array([2.0, -2.0, 2.0, np.nan])
    codes = sar.direction_codes(change, np.array([True, True, False, True]))
    np.testing.assert_array_equal(codes, [sar.INCREASE, sar.DECREASE, sar.NO_CHANGE, sar.NODATA])


def test_nodata_code_matches_model() -> None:
    from eowatch.model import NO_CHANGE_CLASS, NO_DATA_CLASS

    assert sar.NODATA == NO_DATA_CLASS and sar.NO_CHANGE == NO_CHANGE_CLASS


def test_acd_composite() -> None:
    before = np.array([[-25.0, 0.0], [-12.5, np.nan]])
    after = np.array([[0.0, -25.0], [-12.5, 5.0]])
    rgb = sar.acd_composite(before, after, vmin=-25.0, vmax=0.0)
    assert rgb.shape == (3, 2, 2) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], [[0, 255], [128, 0]])
    np.testing.assert_array_equal(rgb[1], [[255, 0], [128, 255]])
    np.testing.assert_array_equal(rgb[1], rgb[2])
    with pytest.raises(ValueError):
        sar.acd_composite(before, after, vmin=0.0, vmax=0.0)
