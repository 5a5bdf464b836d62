"""Analysts' verdicts as object-level training labels.

``eowatch feedback export`` writes a GeoJSON FeatureCollection: every judged polygon
(RFC 7946, longitude/latitude) with its ``verdict`` and the inputs of the Item it came
from (role, href). Here the verdicts of each pair (the Item's ``before`` and ``after``
hrefs, which must be local files or folders) are burnt onto that pair's run grid:
``confirmed`` and ``wrong_class`` polygons (real change, whatever its class) as change,
``false_alarm`` polygons as no change, every other pixel unknown; each pair becomes a
``LabelledPair`` with that label raster (OSCD encoding, 0 = unknown).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from shapely.geometry import shape

from ..errors import InputError
from ..io.rasters import write_label_raster
from ..pipeline import DetectRequest, plan_pair
from ..settings import Settings
from .pairs import LabelledPair

__all__ = ["CHANGE_VERDICTS", "NO_CHANGE_VERDICTS", "FEEDBACK_LICENCE", "feedback_pairs"]

CHANGE_VERDICTS = ("confirmed", "wrong_class")
NO_CHANGE_VERDICTS = ("false_alarm",)
FEEDBACK_LICENCE = "analyst feedback (the catalogue operator's terms)"


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(
            f"cannot read the feedback file {path}: {exc}; give `eowatch feedback export`'s GeoJSON"
        ) from None
    features = data.get("features") if isinstance(data, dict) else None
    if not isinstance(features, list):
        raise InputError(f"{path} is not a GeoJSON FeatureCollection (from `eowatch feedback export`)")
    return [f for f in features if isinstance(f, dict)]


def _pair_of(feature: dict[str, Any], path: Path) -> tuple[str, str]:
    props = feature.get("properties") or {}
    hrefs = {i.get("role"): i.get("href") for i in props.get("inputs") or [] if isinstance(i, dict)}
    before, after = hrefs.get("before"), hrefs.get("after")
    if not before or not after or not Path(before).exists() or not Path(after).exists():
        raise InputError(
            f"{path}: the verdict on polygon {props.get('polygon')!r} of item {props.get('item')!r} names "
            f"inputs {before!r} / {after!r} that are not local files; export verdicts of runs on local "
            "inputs, or label the pair with a label raster (--pair)"
        )
    return str(before), str(after)


def feedback_pairs(path: Path, settings: Settings, folder: Path) -> list[LabelledPair]:
    """One labelled pair per (before, after) input pair of the verdicts in ``path``; their
    label rasters are written into ``folder``."""
    groups: dict[tuple[str, str], list[tuple[Any, int]]] = defaultdict(list)
    for feature in _features(path):
        verdict = (feature.get("properties") or {}).get("verdict")
        if verdict not in CHANGE_VERDICTS + NO_CHANGE_VERDICTS or not feature.get("geometry"):
            continue
        value = 2 if verdict in CHANGE_VERDICTS else 1
        groups[_pair_of(feature, path)].append((shape(feature["geometry"]), value))
    if not groups:
        raise InputError(f"{path} holds no confirmed, wrong-class or false-alarm verdict with a polygon")
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for n, ((before, after), shapes) in enumerate(sorted(groups.items())):
        grid = plan_pair(DetectRequest(Path(before), Path(after), "s2-imad", {}), settings).grid
        label = folder / f"feedback-{n + 1}.tif"
        # No change first, change burnt over it: a confirmed polygon inside a false alarm stays change.
        write_label_raster(label, sorted(shapes, key=lambda s: s[1]), grid)
        name = f"feedback-{n + 1}-{Path(before).resolve().parent.name}"
        pairs.append(
            LabelledPair(
                name,
                Path(before),
                Path(after),
                label,
                None,
                FEEDBACK_LICENCE,
                f"feedback {path}",
                encoding="1/2",
                require_change=False,
            )  # fmt: skip
        )
    return pairs
