"""Score presets on labelled pairs: the numbers behind every quality claim."""

from __future__ import annotations

from .metrics import Scores, binary_scores, report, roc_auc
from .oscd import evaluate_oscd

__all__ = ["Scores", "binary_scores", "report", "roc_auc", "evaluate_oscd"]
