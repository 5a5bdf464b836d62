"""Iteratively reweighted multivariate alteration detection (IR-MAD).

Nielsen, A. A. (2007) "The regularized iteratively reweighted MAD method for
change detection in multi- and hyperspectral data", IEEE Trans. Image
Processing 16(2), 463-478; relative radiometric normalisation after Canty &
Nielsen (2008) "Automatic radiometric normalization of multitemporal
satellite imagery with the iteratively re-weighted MAD transformation",
Remote Sensing of Environment 112(3), 1025-1036.

Method. For before/after samples ``x``, ``y`` (N, p), a weighted canonical
correlation analysis finds projections ``U = A^T (x - mx)`` and
``V = B^T (y - my)`` with unit variance and canonical correlations ``rho``.
The MAD variates are ``M = U - V`` with variance ``2 (1 - rho)``, mutually
uncorrelated, so ``Z = sum_i (M_i / sigma_i)^2`` is approximately chi-square
with ``p`` degrees of freedom at no-change pixels. Each iteration reweights
every pixel by its no-change probability ``P(chi2_p > Z)`` from the previous
one, so changed pixels gradually drop out of the statistics, until the
canonical correlations move less than ``tol``.

Scale of the MAD variates. Nielsen's weighted variance ``2 (1 - rho)`` is
not a consistent estimate for the no-change pixels: the weights P(chi2 > Z)
favour pixels with small MADs, so the estimated variance shrinks at every
iteration (with one band the iteration collapses; with four bands the
no-change chi-square ends ~3x too large). By default (``scale="robust"``)
the chi-square therefore uses a robust scale per MAD variate (median
centre, 1.4826 x median absolute deviation over the sample pixels whose
previous no-change probability is at least 1e-3, valid while fewer than
half of the pixels changed); the canonical analysis
itself stays weighted as in Nielsen (2007). ``scale="weighted"`` gives the
literal method.

Conventions here: canonical correlations (and MAD variates) are sorted in
*ascending* order of ``rho`` as in Canty's reference code, so MAD 1 carries
the most change; the signs of ``A`` and ``B`` are fixed so that every
canonical correlation is positive and each ``U_i`` correlates positively
with the sum of the ``x`` bands.

Fitting (:func:`fit_imad`) works on a pixel sample; :meth:`IMADModel.apply`
then transforms any block of a full image, so large tiles can be processed
in chunks with one set of statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import linalg, stats

from .jit import kernel

__all__ = [
    "IMADModel",
    "IMADResult",
    "fit_imad",
    "imad",
    "chi2_no_change_probability",
    "chi2_median_scale",
    "sample_pixels",
    "orthogonal_regression",
    "fit_radiometric_normalisation",
    "radiometric_normalisation",
]

#: Floor of the MAD variances 2 (1 - rho), as a fraction, so that bands that
#: are almost identical at both dates do not blow the chi-square up.
_MIN_MAD_VARIANCE = 1e-6
#: Pixels with a previous-iteration no-change probability below this are left
#: out of the robust scale of the MAD variates.
_ROBUST_TRIM_P = 1e-3


def chi2_no_change_probability(chi2: ArrayLike, dof: int) -> NDArray[np.float64]:
    """P(chi2_dof > Z): the probability of a statistic this large under no change (the p-value).

    Even ``dof`` (the usual 4 bands) in closed form, exp(-z/2) sum_{i<dof/2} (z/2)^i / i!:
    the same values as scipy's incomplete gamma, several times faster on millions of pixels."""
    z = np.asarray(chi2, dtype=np.float64)
    if dof % 2 or dof > 20:
        return np.asarray(stats.chi2.sf(z, dof), dtype=np.float64)
    half = np.maximum(z, 0.0) * 0.5
    term = np.ones_like(half)
    total = np.ones_like(half)
    for i in range(1, dof // 2):
        term *= half / i
        total += term
    total *= np.exp(-half)
    return total


def chi2_median_scale(chi2: ArrayLike, dof: int, valid: NDArray[np.bool_] | None = None) -> float:
    """Factor that rescales a chi-square statistic so that its median is chi2_dof's median.

    Multiplying ``chi2`` by it calibrates the statistic robustly when the
    no-change pixels are over-dispersed (misregistration, BRDF and phenology in
    urban scenes make them heavier-tailed than chi2_dof); it assumes fewer
    than half of the pixels changed. Compute it on a sample and apply it to
    every chunk.
    """
    z = np.asarray(chi2, dtype=np.float64)
    keep = np.isfinite(z)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)
    if not keep.any():
        raise ValueError("no finite chi-square value to calibrate on")
    med = float(np.median(z[keep]))
    if not med > 0:
        raise ValueError(f"the median chi-square is {med}; cannot calibrate")
    return float(stats.chi2.median(dof)) / med


@dataclass
class IMADModel:
    """A fitted IR-MAD transformation.

    ``a`` and ``b`` are (p, p) matrices whose columns are the canonical
    vectors of ``x`` (before) and ``y`` (after); ``rho`` the canonical
    correlations (ascending); ``sigma`` the standard deviation of each MAD
    variate under the final weights.
    """

    mean_x: NDArray[np.float64]
    mean_y: NDArray[np.float64]
    a: NDArray[np.float64]
    b: NDArray[np.float64]
    rho: NDArray[np.float64]
    sigma: NDArray[np.float64]
    center: NDArray[np.float64]
    iterations: int
    converged: bool
    rho_history: list[NDArray[np.float64]] = field(default_factory=list)

    @property
    def n_bands(self) -> int:
        return int(self.rho.shape[0])

    def transform_samples(
        self, x: ArrayLike, y: ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """MAD variates (N, p) and chi-square (N,) of samples ``x``, ``y`` (N, p)."""
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        mad = (xa - self.mean_x) @ self.a - (ya - self.mean_y) @ self.b
        chi2 = np.sum(((mad - self.center) / self.sigma) ** 2, axis=1)
        return mad, chi2

    def apply(
        self, before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None = None
    ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """MAD variates (p, rows, cols) and chi-square (rows, cols) of two images.

        ``before`` and ``after`` are (p, rows, cols); outputs are float32 and
        NaN where ``valid`` is false or an input is NaN.
        """
        mad, chi2 = self._project(before, after, valid, keep_mad=True)
        assert mad is not None
        return mad, chi2

    def chi_square(
        self, before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None = None
    ) -> NDArray[np.float32]:
        """The chi-square of :meth:`apply` alone (no MAD variates stored: the windowed runs' case)."""
        return self._project(before, after, valid, keep_mad=False)[1]

    def _project(
        self, before: ArrayLike, after: ArrayLike, valid: NDArray[np.bool_] | None, keep_mad: bool
    ) -> tuple[NDArray[np.float32] | None, NDArray[np.float32]]:
        bx = np.asarray(before)
        ay = np.asarray(after)
        if bx.shape != ay.shape or bx.ndim != 3 or bx.shape[0] != self.n_bands:
            raise ValueError(
                f"before and after must be ({self.n_bands}, rows, cols) of the same shape; "
                f"got {bx.shape} and {ay.shape}"
            )
        if bx.dtype.kind != "f" or ay.dtype.kind != "f":
            bx, ay = bx.astype(np.float32), ay.astype(np.float32)
        p, rows, cols = bx.shape
        mad = np.empty((p, rows, cols) if keep_mad else (0, 0, 0), dtype=np.float32)
        chi2 = np.empty((rows, cols), dtype=np.float32)
        ok = np.ones((rows, cols), dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
        # The means folded into one constant per variate: MAD_k = a_k.x - b_k.y - offset_k.
        offset = self.mean_x @ self.a - self.mean_y @ self.b
        _mad_chi_square(bx, ay, ok, self.a, self.b, offset, self.center, self.sigma, mad, chi2)
        return (mad if keep_mad else None), chi2


@kernel
def _mad_chi_square(
    x: NDArray[np.floating],
    y: NDArray[np.floating],
    valid: NDArray[np.bool_],
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    offset: NDArray[np.float64],
    center: NDArray[np.float64],
    sigma: NDArray[np.float64],
    mad: NDArray[np.float32],
    chi2: NDArray[np.float32],
) -> None:
    """MAD variates (into ``mad`` unless it is empty) and chi-square of every pixel, in
    float64, row by row: the inner loops run along contiguous rows (vectorised), ~7x
    faster than the equivalent float64 numpy passes. NaN where invalid or not finite."""
    p, rows, cols = x.shape
    keep = mad.shape[0] > 0
    m = np.empty(cols)
    total = np.empty(cols)
    for r in range(rows):
        total[:] = 0.0
        for k in range(p):
            m[:] = -offset[k]
            for j in range(p):
                ajk, bjk = a[j, k], b[j, k]
                xr, yr = x[j, r], y[j, r]
                for c in range(cols):
                    m[c] += ajk * xr[c] - bjk * yr[c]
            if keep:
                mrow = mad[k, r]
                for c in range(cols):
                    mrow[c] = m[c] if valid[r, c] else np.nan
            ck, sk = center[k], sigma[k]
            for c in range(cols):
                z = (m[c] - ck) / sk
                total[c] += z * z
        for c in range(cols):
            t = total[c]
            chi2[r, c] = t if valid[r, c] and np.isfinite(t) else np.nan


def _weighted_cca(
    x: NDArray[np.float64], y: NDArray[np.float64], w: NDArray[np.float64], reg: float
) -> tuple[NDArray[np.float64], ...]:
    """Weighted CCA: returns (mean_x, mean_y, A, B, rho, sigma), rho ascending."""
    p = x.shape[1]
    sw = w.sum()
    mx = (w @ x) / sw
    my = (w @ y) / sw
    xc = x - mx
    yc = y - my
    wx = xc * w[:, None]
    wy = yc * w[:, None]
    sxx = (wx.T @ xc) / sw
    syy = (wy.T @ yc) / sw
    sxy = (wx.T @ yc) / sw
    # Slight ridge so that (near-)collinear bands keep the problem well posed.
    sxx = sxx + reg * (np.trace(sxx) / p + 1e-30) * np.eye(p)
    syy = syy + reg * (np.trace(syy) / p + 1e-30) * np.eye(p)
    # Generalised symmetric eigenproblem  Sxy Syy^-1 Syx a = rho^2 Sxx a,  a^T Sxx a = 1.
    c = sxy @ linalg.solve(syy, sxy.T, assume_a="pos")
    c = 0.5 * (c + c.T)
    rho2, a = linalg.eigh(c, sxx)  # ascending eigenvalues
    rho = np.sqrt(np.clip(rho2, 0.0, 1.0))
    # b = Syy^-1 Syx a / rho has unit variance and corr(U, V) = rho >= 0.
    b = linalg.solve(syy, sxy.T @ a, assume_a="pos")
    b_var = np.sqrt(np.maximum(np.einsum("ij,ij->j", b, syy @ b), 1e-300))
    b = b / b_var
    # Sign convention: each U_i correlates positively with the sum of the x bands.
    s = np.sign(np.sum(sxx @ a, axis=0))
    s[s == 0] = 1.0
    a = a * s
    b = b * s
    order = np.argsort(rho, kind="stable")
    a, b, rho = a[:, order], b[:, order], rho[order]
    # Variance of MAD_i = U_i - V_i under the weights (= 2 (1 - rho_i) up to the ridge).
    var_mad = (
        np.einsum("ij,ij->j", a, sxx @ a)
        + np.einsum("ij,ij->j", b, syy @ b)
        - 2.0 * np.einsum("ij,ij->j", a, sxy @ b)
    )
    sigma = np.sqrt(np.maximum(var_mad, _MIN_MAD_VARIANCE))
    return mx, my, a, b, rho, sigma


def fit_imad(
    x: ArrayLike,
    y: ArrayLike,
    *,
    max_iter: int = 50,
    tol: float = 1e-4,
    weights: ArrayLike | None = None,
    reg: float = 1e-6,
    scale: Literal["robust", "weighted"] = "robust",
) -> IMADModel:
    """Fit IR-MAD on paired pixel samples ``x`` (before) and ``y`` (after), each (N, p).

    Iterates until the largest change of a canonical correlation is below
    ``tol`` or ``max_iter`` iterations were done (``max_iter=1`` gives the
    plain, unweighted MAD). ``weights`` are optional initial weights (N,).
    ``reg`` is the relative ridge added to both covariance matrices.
    ``scale`` chooses how the MAD variates are scaled in the chi-square (see
    the module docstring): ``"robust"`` (default) or ``"weighted"`` (Nielsen).
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    if xa.ndim != 2 or xa.shape != ya.shape:
        raise ValueError(f"x and y must both be (N, bands) of the same shape; got {xa.shape} and {ya.shape}")
    n, p = xa.shape
    if n <= 2 * p + 1:
        raise ValueError(f"IR-MAD needs more pixels ({n}) than 2 x bands + 1 ({2 * p + 1})")
    if not (np.all(np.isfinite(xa)) and np.all(np.isfinite(ya))):
        raise ValueError("x and y must be finite; drop NaN pixels before fitting")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1; got {max_iter}")
    if scale not in ("robust", "weighted"):
        raise ValueError(f"scale must be 'robust' or 'weighted'; got {scale!r}")
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1).copy()
    if w.shape[0] != n or np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights must be N non-negative values with a positive sum")

    history: list[NDArray[np.float64]] = []
    rho_old: NDArray[np.float64] | None = None
    converged = False
    it = 0
    model: tuple[NDArray[np.float64], ...] | None = None
    center = np.zeros(p)
    for it in range(1, max_iter + 1):  # noqa: B007 - reported below
        mx, my, a, b, rho, sigma = _weighted_cca(xa, ya, w, reg)
        mad = (xa - mx) @ a - (ya - my) @ b
        if scale == "robust":
            # Median/MAD over the pixels not already confidently changed (previous
            # p-value >= 1e-3; all pixels at the first iteration): trimming that
            # tail costs the no-change pixels 0.1 %, the changed ones most of theirs.
            keep = w >= _ROBUST_TRIM_P if it > 1 else np.ones(n, dtype=bool)
            if int(keep.sum()) <= 2 * p + 1:
                keep = np.ones(n, dtype=bool)
            kept = mad[keep]
            center = np.median(kept, axis=0)
            sigma = np.maximum(1.4826 * np.median(np.abs(kept - center), axis=0), np.sqrt(_MIN_MAD_VARIANCE))
        model = (mx, my, a, b, rho, sigma)
        history.append(rho.copy())
        if rho_old is not None and float(np.max(np.abs(rho - rho_old))) < tol:
            converged = True
            break
        rho_old = rho
        z = np.sum(((mad - center) / sigma) ** 2, axis=1)
        w = chi2_no_change_probability(z, p)
        if not w.sum() > 0:
            break
    assert model is not None
    mx, my, a, b, rho, sigma = model
    return IMADModel(
        mean_x=mx,
        mean_y=my,
        a=a,
        b=b,
        rho=rho,
        sigma=sigma,
        center=center,
        iterations=it,
        converged=converged,
        rho_history=history,
    )


def sample_pixels(valid: NDArray[np.bool_], max_sample: int | None, seed: int = 0) -> NDArray[np.intp]:
    """Flat indices of at most ``max_sample`` valid pixels, drawn without replacement
    with a fixed ``seed`` (all valid pixels, in order, when there are fewer)."""
    idx = np.flatnonzero(np.asarray(valid, dtype=bool))
    if max_sample is not None and idx.size > max_sample:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, size=max_sample, replace=False))
    return idx


@dataclass
class IMADResult:
    """The fitted model and its output on the full images."""

    model: IMADModel
    mad: NDArray[np.float32]
    chi2: NDArray[np.float32]
    p_no_change: NDArray[np.float32]


def _finite_valid(
    before: NDArray[np.floating], after: NDArray[np.floating], valid: NDArray[np.bool_] | None
) -> NDArray[np.bool_]:
    ok = np.all(np.isfinite(before), axis=0) & np.all(np.isfinite(after), axis=0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    return np.asarray(ok, dtype=bool)


def imad(
    before: ArrayLike,
    after: ArrayLike,
    valid: NDArray[np.bool_] | None = None,
    *,
    max_sample: int | None = 1_000_000,
    seed: int = 0,
    max_iter: int = 50,
    tol: float = 1e-4,
    reg: float = 1e-6,
    scale: Literal["robust", "weighted"] = "robust",
) -> IMADResult:
    """IR-MAD of two (bands, rows, cols) images: fit on a sample of valid pixels, apply to all.

    Returns the model, the MAD variates, the chi-square statistic and the
    no-change probability (p-value) per pixel, NaN where invalid.
    """
    bx = np.asarray(before, dtype=np.float32)
    ay = np.asarray(after, dtype=np.float32)
    if bx.shape != ay.shape or bx.ndim != 3:
        raise ValueError(f"before and after must be (bands, rows, cols) alike; got {bx.shape}, {ay.shape}")
    ok = _finite_valid(bx, ay, valid)
    p = bx.shape[0]
    idx = sample_pixels(ok, max_sample, seed)
    x = bx.reshape(p, -1)[:, idx].T
    y = ay.reshape(p, -1)[:, idx].T
    model = fit_imad(x, y, max_iter=max_iter, tol=tol, reg=reg, scale=scale)
    mad, chi2 = model.apply(bx, ay, ok)
    pnc = chi2_no_change_probability(chi2, p).astype(np.float32)
    return IMADResult(model=model, mad=mad, chi2=chi2, p_no_change=pnc)


def orthogonal_regression(
    x: ArrayLike, y: ArrayLike, weights: ArrayLike | None = None
) -> tuple[float, float]:
    """Orthogonal (total least squares) fit y = gain x + offset; returns (gain, offset).

    Unlike ordinary least squares it treats both dates as noisy, which makes
    the fit symmetric (Canty & Nielsen 2008).
    """
    xa = np.asarray(x, dtype=np.float64).reshape(-1)
    ya = np.asarray(y, dtype=np.float64).reshape(-1)
    w = np.ones_like(xa) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    sw = w.sum()
    if xa.size < 2 or not sw > 0:
        raise ValueError("orthogonal regression needs at least two points with positive weight")
    mx = (w @ xa) / sw
    my = (w @ ya) / sw
    sxx = (w @ (xa - mx) ** 2) / sw
    syy = (w @ (ya - my) ** 2) / sw
    sxy = (w @ ((xa - mx) * (ya - my))) / sw
    if sxy == 0:
        raise ValueError("x and y are uncorrelated: no orthogonal regression line")
    gain = (syy - sxx + np.sqrt((syy - sxx) ** 2 + 4.0 * sxy**2)) / (2.0 * sxy)
    return float(gain), float(my - gain * mx)


def fit_radiometric_normalisation(
    x: ArrayLike, y: ArrayLike, no_change: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-band orthogonal regression of ``y`` (after) on ``x`` (before), both (N, p),
    over the pixels where ``no_change`` is true. Returns (gain, offset), each (p,),
    with ``y ~ gain * x + offset``."""
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    nc = np.asarray(no_change, dtype=bool).reshape(-1)
    if int(nc.sum()) < 2:
        raise ValueError("radiometric normalisation needs at least two no-change pixels")
    p = xa.shape[1]
    gain = np.empty(p)
    offset = np.empty(p)
    for k in range(p):
        gain[k], offset[k] = orthogonal_regression(xa[nc, k], ya[nc, k])
    return gain, offset


def radiometric_normalisation(
    before: ArrayLike,
    after: ArrayLike,
    p_no_change: NDArray[np.floating],
    valid: NDArray[np.bool_] | None = None,
    *,
    level: float = 0.95,
    max_sample: int | None = 1_000_000,
    seed: int = 0,
) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    """Relative radiometric normalisation of ``after`` to ``before`` (Canty & Nielsen 2008).

    Pixels with an IR-MAD no-change probability above ``level`` are invariant
    pixels; per band, an orthogonal regression ``after = gain * before + offset``
    is fitted on (a sample of) them and ``(after - offset) / gain`` is returned
    (float32, NaN where invalid) with the gain and offset per band.
    """
    bx = np.asarray(before, dtype=np.float32)
    ay = np.asarray(after, dtype=np.float32)
    ok = _finite_valid(bx, ay, valid)
    nc = ok & (np.nan_to_num(np.asarray(p_no_change, dtype=np.float64), nan=0.0) > level)
    idx = sample_pixels(nc, max_sample, seed)
    p = bx.shape[0]
    gain, offset = fit_radiometric_normalisation(
        bx.reshape(p, -1)[:, idx].T, ay.reshape(p, -1)[:, idx].T, np.ones(idx.size, dtype=bool)
    )
    out = ((ay - offset[:, None, None].astype(np.float32)) / gain[:, None, None].astype(np.float32)).astype(
        np.float32
    )
    out[:, ~ok] = np.nan
    return out, gain, offset
