"""Omnibus likelihood-ratio change test for series of SAR intensity images.

Conradsen, Nielsen & Skriver (2016), "Determining the points of change in
time series of polarimetric SAR data", IEEE TGRS 54(5): test that ``k``
complex Wishart covariance matrices with ``n`` looks are equal, and factor the
test into the sequence ``R_j`` (equality at time ``j`` given equality up to
``j - 1``). The change maps follow A. J. Canty's ``sar_seq`` / Earth Engine
tutorial: for each starting image ``ell`` the ``R_{ell,j}`` are tested in
order, a change is accepted where both ``R_{ell,j}`` and the omnibus test
``Q_ell`` of the images ``ell..k`` are significant, and testing restarts at
the changed image.

Input is ``(k, p, rows, cols)``: ``k`` dates, ``p`` channels of per-look-averaged
intensity (the diagonal of the covariance matrix, e.g. VV and VH; ``p = 1`` for
single-pol), linear power, NaN = nodata, and the equivalent number of looks
``enl`` (``n`` above; non-integer values allowed).

Diagonal-only (dual-intensity) form. Without the cross-polarised covariance
term the ``p`` diagonal intensities are independent Gamma variables (the
diagonal of a complex Wishart matrix), so ``ln Q`` is the *sum* of ``p``
single-channel (``p = 1``) statistics. We therefore use the ``p = 1`` Bartlett
factor ``rho`` and second-order term ``omega2`` per channel, with
``f = p (k - 1)`` degrees of freedom for ``Q`` and ``f = p`` for ``R_j``
(``omega2`` summed over channels). Using the full-matrix ``p = 2`` constants
(``f = 4 (k - 1)``) on diagonal-only data would give far too few false alarms.
This is what Canty's dual-pol diagonal implementation does (``df = 2`` per
``R_j``). P-values use the mixture
``P(-2 rho ln Q > z) ~ (1 - omega2) P(chi2_f > z) + omega2 P(chi2_{f+4} > z)``.

Direction of a change (per interval, codes :data:`INCREASE`,
:data:`DECREASE`, :data:`MIXED`) follows Canty: the difference between the
image after the change and the mean of the images since the previous change is
positive definite (every channel increased), negative definite (every channel
decreased) or indefinite (mixed signs) - for diagonal matrices definiteness is
the sign pattern of the channel differences.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import special

__all__ = [
    "NO_CHANGE",
    "INCREASE",
    "DECREASE",
    "MIXED",
    "NODATA",
    "OmnibusResult",
    "omnibus_statistic",
    "omnibus_pvalue",
    "sequential_pvalues",
    "omnibus_change",
    "omnibus_two_date",
]

NO_CHANGE = 0
INCREASE = 1
DECREASE = 2
MIXED = 3
NODATA = 255


def _as_series(series: NDArray[np.floating]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Series as float64 ``(k, p, rows, cols)`` with NaN where invalid, and the valid mask."""
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 3:  # (k, rows, cols): single polarisation
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"series must be (k, p, rows, cols) or (k, rows, cols); got shape {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"the omnibus test needs at least 2 dates; got k={x.shape[0]}")
    with np.errstate(invalid="ignore"):
        valid = np.all(np.isfinite(x) & (x > 0), axis=(0, 1))
    return np.where(valid, x, np.nan), valid


def _check_enl(enl: float) -> None:
    if not enl > 0:
        raise ValueError(f"enl (equivalent number of looks) must be > 0; got {enl!r}")


def _mixture_sf(z: NDArray[np.float64], f: float, omega2: float) -> NDArray[np.float64]:
    """P-value of ``-2 rho ln Q = z`` under the chi-square mixture approximation."""
    z = np.maximum(z, 0.0)
    p = (1.0 - omega2) * special.chdtrc(f, z) + omega2 * special.chdtrc(f + 4.0, z)
    return np.asarray(np.clip(p, 0.0, 1.0), dtype=np.float64)


def omnibus_statistic(series: NDArray[np.floating], enl: float) -> NDArray[np.float64]:
    """``-2 ln Q`` of the omnibus test (no Bartlett factor), per pixel.

    ``ln Q = n sum_c [k ln k + sum_i ln x_ic - k ln sum_i x_ic]`` over channels
    ``c`` (Conradsen et al. 2016, eq. for ``p = 1`` per channel).
    """
    _check_enl(enl)
    x, _ = _as_series(series)
    k = x.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_q = enl * np.sum(k * np.log(k) + np.log(x).sum(axis=0) - k * np.log(x.sum(axis=0)), axis=0)
    return np.asarray(-2.0 * ln_q, dtype=np.float64)


def _q_constants(k: int, p: int, n: float) -> tuple[float, float, float]:
    """(f, rho, omega2) of the omnibus test, diagonal form (p independent channels)."""
    rho = 1.0 - (k + 1.0) / (6.0 * n * k)  # p = 1: (2p^2-1)/(6(k-1)p) (k/n - 1/(nk))
    omega2 = -((k - 1.0) / 4.0) * (1.0 - 1.0 / rho) ** 2  # p = 1: the p^2(p^2-1) term vanishes
    return p * (k - 1.0), rho, p * omega2


def _r_constants(j: int, p: int, n: float) -> tuple[float, float, float]:
    """(f, rho, omega2) of R_j, diagonal form."""
    rho = 1.0 - (1.0 + 1.0 / (j * (j - 1.0))) / (6.0 * n)
    omega2 = -0.25 * (1.0 - 1.0 / rho) ** 2
    return float(p), rho, p * omega2


def omnibus_pvalue(series: NDArray[np.floating], enl: float) -> NDArray[np.float32]:
    """P-value of the omnibus test that all ``k`` dates are equal (NaN where invalid)."""
    _check_enl(enl)
    x, valid = _as_series(series)
    k, p = x.shape[:2]
    f, rho, omega2 = _q_constants(k, p, enl)
    stat = omnibus_statistic(x, enl)
    pv = _mixture_sf(np.where(valid, rho * stat, 0.0), f, omega2)
    return np.where(valid, pv, np.nan).astype(np.float32)


def sequential_pvalues(series: NDArray[np.floating], enl: float) -> NDArray[np.float32]:
    """P-values of ``R_j`` for ``j = 2..k`` (shape ``(k - 1, rows, cols)``).

    ``ln R_j = n sum_c [j ln j - (j-1) ln(j-1) + (j-1) ln s_{j-1} + ln x_j - j ln s_j]``
    with ``s_j`` the sum of the first ``j`` intensities of channel ``c``. Under
    no change the ``R_j`` are independent (Conradsen et al. 2016).
    """
    _check_enl(enl)
    x, valid = _as_series(series)
    k, p = x.shape[:2]
    out = np.full((k - 1,) + x.shape[2:], np.nan, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        logx = np.log(x)
        cum = np.cumsum(x, axis=0)
        logs = np.log(cum)
        for j in range(2, k + 1):
            c = j * np.log(j) - (j - 1) * np.log(j - 1)
            ln_r = enl * np.sum(c + (j - 1) * logs[j - 2] + logx[j - 1] - j * logs[j - 1], axis=0)
            f, rho, omega2 = _r_constants(j, p, enl)
            pv = _mixture_sf(np.where(valid, -2.0 * rho * ln_r, 0.0), f, omega2)
            out[j - 2] = np.where(valid, pv, np.nan)
    return out


@dataclass
class OmnibusResult:
    """Output of :func:`omnibus_change` for ``k`` dates (``k - 1`` intervals).

    Change maps use 1-based interval numbers (interval ``i`` is between dates
    ``i`` and ``i + 1``) and 0 for no change; -1 marks nodata in the int maps.
    """

    #: P-value of the omnibus test over all dates, ``(rows, cols)``.
    p_overall: NDArray[np.float32]
    #: P-values of ``Q_ell`` for the series starting at date ``ell`` = 1..k-1, ``(k-1, rows, cols)``.
    p_omnibus: NDArray[np.float32]
    #: P-values of ``R_{ell,j}``: ``[ell-1, i-1]`` tests interval ``i`` (dates i, i+1) for the
    #: series starting at ``ell`` (NaN for ``i < ell``), ``(k-1, k-1, rows, cols)``.
    p_sequential: NDArray[np.float32]
    #: First interval with change (0 = none), int16.
    first_change: NDArray[np.int16]
    #: Last interval with change (0 = none), int16.
    last_change: NDArray[np.int16]
    #: Number of changes, int16.
    frequency: NDArray[np.int16]
    #: Per-interval direction codes, uint8 ``(k-1, rows, cols)``.
    direction: NDArray[np.uint8]
    #: True where every date and channel held a positive finite intensity.
    valid: NDArray[np.bool_]
    alpha: float


def omnibus_change(series: NDArray[np.floating], enl: float, alpha: float = 0.01) -> OmnibusResult:
    """Sequential omnibus change detection of a series (Conradsen et al. 2016, Canty's sar_seq).

    For each start ``ell`` (1-based) the omnibus p-value of dates ``ell..k``
    and the ``R_{ell,j}`` p-values are computed. A pixel whose last change is at
    interval ``ell - 1`` (0 for ``ell = 1``) gets a change at interval
    ``ell + j - 2`` for the first ``j`` with ``p(R_{ell,j}) < alpha`` and
    ``p(Q_ell) < alpha``; testing then restarts at the changed date. Direction
    compares the changed date with the mean of the dates since the last change.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive); got {alpha!r}")
    _check_enl(enl)
    x, valid = _as_series(series)
    k = x.shape[0]
    shape = x.shape[2:]
    p_omni = np.full((k - 1,) + shape, np.nan, dtype=np.float32)
    p_seq = np.full((k - 1, k - 1) + shape, np.nan, dtype=np.float32)
    for ell in range(1, k):
        sub = x[ell - 1 :]
        p_omni[ell - 1] = omnibus_pvalue(sub, enl)
        p_seq[ell - 1, ell - 1 :] = sequential_pvalues(sub, enl)

    last = np.zeros(shape, dtype=np.int16)
    first = np.zeros(shape, dtype=np.int16)
    freq = np.zeros(shape, dtype=np.int16)
    changed = np.zeros((k - 1,) + shape, dtype=bool)
    for ell in range(1, k):
        q_sig = p_omni[ell - 1] < alpha
        for i in range(ell, k):  # interval i between dates i and i+1
            tst = (p_seq[ell - 1, i - 1] < alpha) & q_sig & (last == ell - 1) & valid
            last[tst] = i
            freq[tst] += 1
            first[tst & (first == 0)] = i
            changed[i - 1] |= tst

    # Direction: date after the change minus the running mean since the last change.
    direction = np.zeros((k - 1,) + shape, dtype=np.uint8)
    mean = x[0].copy()
    count = np.ones(shape)
    with np.errstate(invalid="ignore"):
        for i in range(1, k):
            img = x[i]
            diff = img - mean
            up = np.all(diff > 0, axis=0)
            down = np.all(diff < 0, axis=0)
            ch = changed[i - 1]
            d = np.where(up, INCREASE, np.where(down, DECREASE, MIXED)).astype(np.uint8)
            direction[i - 1] = np.where(ch, d, NO_CHANGE)
            count = count + 1
            mean = mean + (img - mean) / count
            mean = np.where(ch, img, mean)
            count = np.where(ch, 1.0, count)
    direction[:, ~valid] = NODATA
    for arr in (first, last, freq):
        arr[~valid] = -1
    return OmnibusResult(
        p_overall=p_omni[0],
        p_omnibus=p_omni,
        p_sequential=p_seq,
        first_change=first,
        last_change=last,
        frequency=freq,
        direction=direction,
        valid=valid,
        alpha=alpha,
    )


def omnibus_two_date(
    before: NDArray[np.floating], after: NDArray[np.floating], enl: float, alpha: float = 0.01
) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
    """Two-date (``k = 2``) test of ``(p, rows, cols)`` or ``(rows, cols)`` intensities.

    Returns the p-value (NaN where invalid) and direction codes
    (:data:`NO_CHANGE`, :data:`INCREASE`, :data:`DECREASE`, :data:`MIXED`,
    :data:`NODATA`) at level ``alpha``.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive); got {alpha!r}")
    b = np.asarray(before, dtype=np.float64)
    a = np.asarray(after, dtype=np.float64)
    if b.shape != a.shape:
        raise ValueError(f"before and after must have the same shape; got {b.shape} and {a.shape}")
    x, valid = _as_series(np.stack([b, a]))
    pv = omnibus_pvalue(x, enl)
    with np.errstate(invalid="ignore"):
        diff = x[1] - x[0]
        d = np.where(
            np.all(diff > 0, axis=0), INCREASE, np.where(np.all(diff < 0, axis=0), DECREASE, MIXED)
        ).astype(np.uint8)
    codes = np.where(pv < alpha, d, NO_CHANGE).astype(np.uint8)
    codes[~valid] = NODATA
    return pv, codes
