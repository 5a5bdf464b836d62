"""Binary change scores and the report format every evaluation returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

__all__ = ["Scores", "binary_scores", "roc_auc", "report"]


@dataclass
class Scores:
    """Binary change scores of one pair (or pooled over many)."""

    name: str
    precision: float
    recall: float
    f1: float
    kappa: float
    iou: float
    roc_auc: float | None
    changed_fraction_true: float
    changed_fraction_pred: float
    pixels: int


def _safe(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def binary_scores(
    name: str,
    truth: NDArray[np.bool_],
    pred: NDArray[np.bool_],
    statistic: NDArray[np.floating] | None = None,
) -> Scores:
    """Precision, recall, F1, Cohen's kappa, IoU and the ROC-AUC of ``statistic``."""
    t = truth.ravel().astype(bool)
    p = pred.ravel().astype(bool)
    tp = float(np.sum(t & p))
    fp = float(np.sum(~t & p))
    fn = float(np.sum(t & ~p))
    tn = float(np.sum(~t & ~p))
    n = tp + fp + fn + tn
    precision, recall = _safe(tp, tp + fp), _safe(tp, tp + fn)
    observed = (tp + tn) / n
    expected = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
    kappa = _safe(observed - expected, 1.0 - expected)
    auc = roc_auc(t, statistic.ravel()) if statistic is not None else None
    return Scores(
        name=name,
        precision=precision,
        recall=recall,
        f1=_safe(2 * precision * recall, precision + recall),
        kappa=kappa,
        iou=_safe(tp, tp + fp + fn),
        roc_auc=auc,
        changed_fraction_true=float(t.mean()),
        changed_fraction_pred=float(p.mean()),
        pixels=int(n),
    )


def roc_auc(truth: NDArray[np.bool_], score: NDArray[np.floating]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U form, ties averaged).
    Pixels with a NaN score are ranked lowest (the statistic had no opinion)."""
    s = np.where(np.isfinite(score), score, -np.inf).astype(np.float64)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(s)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def report(dataset: str, preset: str, params: dict[str, Any] | None, rows: list[Scores]) -> dict[str, Any]:
    """Per-pair scores and their unweighted mean, as plain data."""
    keys = ("precision", "recall", "f1", "kappa", "iou", "roc_auc")
    mean = {k: float(np.mean([getattr(r, k) for r in rows if getattr(r, k) is not None])) for k in keys}
    return {
        "dataset": dataset,
        "preset": preset,
        "params": dict(params or {}),
        "pairs": [asdict(r) for r in rows],
        "mean": mean,
    }
