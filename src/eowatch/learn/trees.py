"""A compiled evaluator of LightGBM's text model (binary / cross-entropy objectives), so
that inference needs neither LightGBM nor its per-call overhead: the trees' arrays are
read from the text dump and every row walks every tree in one numba loop (GIL released).

It follows LightGBM's numerical decision (``tree.h``): a NaN feature counts as 0 unless
the node's missing type is NaN; a missing value (NaN, or zero for the "zero" missing
type) goes to the node's default side; else ``value <= threshold`` goes left. A negative
child ``c`` is the leaf ``~c``. Scores are summed over the trees (shrinkage is already in
the leaf values) and passed through the sigmoid. Categorical splits are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError
from ..kernels.jit import kernel

__all__ = ["Forest", "parse_forest"]

_DEFAULT_LEFT = 2
_MISSING_SHIFT = 2  # bits 2-3: 0 none, 1 zero, 2 NaN


@dataclass(frozen=True)
class Forest:
    """Every tree's nodes and leaves, concatenated; ``node_start``/``leaf_start`` index them."""

    feature: NDArray[np.int32]
    threshold: NDArray[np.float64]
    decision: NDArray[np.uint8]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    leaf_value: NDArray[np.float64]
    node_start: NDArray[np.int64]
    leaf_start: NDArray[np.int64]
    sigmoid: float
    n_features: int

    def predict(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        """Probability of each row of ``rows`` (n, n_features)."""
        x = np.ascontiguousarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"rows must be (n, {self.n_features}); got {x.shape}")
        out = np.empty(x.shape[0], dtype=np.float32)
        _predict(x, self.feature, self.threshold, self.decision, self.left, self.right, self.leaf_value,
                 self.node_start, self.leaf_start, self.sigmoid, out)  # fmt: skip
        return out


def _values(block: dict[str, str], key: str, dtype: type) -> NDArray[np.generic]:
    text = block.get(key, "").strip()
    return np.array(text.split(), dtype=np.float64).astype(dtype) if text else np.zeros(0, dtype=dtype)


def parse_forest(text: str) -> Forest:
    """The forest of a LightGBM text model (``Booster.model_to_string()``)."""
    header, _, body = text.partition("\nTree=")
    fields = dict(line.split("=", 1) for line in header.splitlines() if "=" in line)
    objective = fields.get("objective", "")
    match = re.match(r"(binary|cross_entropy)(?:.*sigmoid:([0-9.eE+-]+))?", objective)
    if not match or int(fields.get("num_class", "1")) != 1:
        raise InputError(
            f"unsupported LightGBM model (objective {objective!r}); retrain with `eowatch train`"
        )
    sigmoid = float(match.group(2) or 1.0)
    trees = []
    for chunk in ("Tree=" + body).split("\nTree=") if body else []:
        block = dict(line.split("=", 1) for line in chunk.splitlines() if "=" in line)
        if "leaf_value" not in block:
            continue
        if int(block.get("num_cat", "0")) > 0:
            raise InputError("the change model has categorical splits, which eowatch does not evaluate")
        trees.append(block)
    if not trees:
        raise InputError("the change model holds no tree; retrain it with `eowatch train`")
    parts = {
        "feature": [_values(t, "split_feature", np.int32) for t in trees],
        "threshold": [_values(t, "threshold", np.float64) for t in trees],
        "decision": [_values(t, "decision_type", np.uint8) for t in trees],
        "left": [_values(t, "left_child", np.int32) for t in trees],
        "right": [_values(t, "right_child", np.int32) for t in trees],
        "leaf_value": [_values(t, "leaf_value", np.float64) for t in trees],
    }
    nodes = np.array([0] + [len(f) for f in parts["feature"]], dtype=np.int64)
    leaves = np.array([0] + [len(v) for v in parts["leaf_value"]], dtype=np.int64)
    return Forest(
        **{k: np.concatenate(v) for k, v in parts.items()},
        node_start=np.cumsum(nodes),
        leaf_start=np.cumsum(leaves),
        sigmoid=sigmoid,
        n_features=int(fields.get("max_feature_idx", "-1")) + 1,
    )


@kernel
def _predict(
    x: NDArray[np.float32],
    feature: NDArray[np.int32],
    threshold: NDArray[np.float64],
    decision: NDArray[np.uint8],
    left: NDArray[np.int32],
    right: NDArray[np.int32],
    leaf_value: NDArray[np.float64],
    node_start: NDArray[np.int64],
    leaf_start: NDArray[np.int64],
    sigmoid: float,
    out: NDArray[np.float32],
) -> None:
    n_trees = leaf_start.size - 1
    for i in range(x.shape[0]):
        score = 0.0
        for t in range(n_trees):
            base = node_start[t]
            if node_start[t + 1] == base:  # a single leaf
                score += leaf_value[leaf_start[t]]
                continue
            node = 0
            while node >= 0:
                k = base + node
                v = float(x[i, feature[k]])
                missing = (decision[k] >> _MISSING_SHIFT) & 3
                if np.isnan(v) and missing != 2:
                    v = 0.0
                if (missing == 1 and abs(v) <= 1e-35) or (missing == 2 and np.isnan(v)):
                    node = left[k] if decision[k] & _DEFAULT_LEFT else right[k]
                elif v <= threshold[k]:
                    node = left[k]
                else:
                    node = right[k]
            score += leaf_value[leaf_start[t] + ~node]
        out[i] = 1.0 / (1.0 + np.exp(-sigmoid * score))
