"""OSCD layout (Daudt et al. 2018): ``<root>/<city>/imgs_1``, ``imgs_2`` and
``cm/<city>-cm.tif`` (1 = no change, 2 = change) on the date-1 B02 grid.

Scores are over every labelled pixel (a masked pixel counts as "no change" found), and
beside them (``valid_only``) over the labelled pixels observed clear on both dates, so
that what masking removes is visible; ``masking`` gives each date's masked share."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..detect import get_preset, parse_params
from ..errors import InputError
from ..io.load import read_plain_band
from ..pipeline import DetectRequest, detect_record, plan_pair
from ..settings import Settings
from .metrics import Scores, binary_scores, report

__all__ = ["evaluate_oscd"]


def _oscd_cities(root: Path) -> list[Path]:
    cities = sorted(p for p in root.iterdir() if (p / "imgs_1").is_dir() and (p / "imgs_2").is_dir())
    if not cities:
        raise InputError(f"no OSCD city folders (with imgs_1/ and imgs_2/) under {root}")
    return cities


def trained_on(preset: str, params: dict[str, Any] | None) -> set[str]:
    """The pairs the preset's learned model (its ``model`` parameter) was trained on;
    empty for presets without one."""
    ref = getattr(parse_params(get_preset(preset), params), "model", None)
    if not ref:
        return set()
    from ..learn.artifact import load_model

    return {str(d.get("name")) for d in load_model(ref).card.get("training_data") or []}


def evaluate_oscd(
    root: Path,
    preset: str,
    params: dict[str, Any] | None,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Per-city and mean scores of ``preset`` on an OSCD-layout folder."""
    rows: list[Scores] = []
    valid_rows: list[Scores] = []
    masking: list[dict[str, Any]] = []
    for city in _oscd_cities(Path(root)):
        label_path = city / "cm" / f"{city.name}-cm.tif"
        if not label_path.exists():
            continue
        if progress:
            progress(city.name)
        plan = plan_pair(
            DetectRequest(city / "imgs_1", city / "imgs_2", preset, dict(params or {})), settings
        )
        record = detect_record(plan, settings)
        result = record.result
        label = read_plain_band(label_path)  # OSCD labels carry no georeference, by design
        if label.shape != result.classes.shape:
            raise InputError(
                f"{label_path} is {label.shape} but the change map is {result.classes.shape}; "
                "OSCD labels must be on the date-1 B02 grid"
            )
        known = label > 0
        truth = label == 2
        rows.append(binary_scores(city.name, truth[known], result.changed[known], result.statistic[known]))
        seen = known & result.valid
        valid_rows.append(binary_scores(city.name, truth[seen], result.changed[seen], result.statistic[seen]))
        masking.append({"name": city.name, **record.masking()})
    if not rows:
        raise InputError(f"no OSCD labels (cm/<city>-cm.tif) found under {root}")
    scores = report("oscd", preset, params, rows)
    valid_only = report("oscd", preset, params, valid_rows)
    scores["valid_only"] = {"pairs": valid_only["pairs"], "mean": valid_only["mean"]}
    scores["masking"] = masking
    # Scores of a model on the cities it learned from say little about new ones.
    scores["training_overlap"] = sorted(trained_on(preset, params) & {r.name for r in rows})
    return scores
