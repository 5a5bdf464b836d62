"""No change polygon's class contradicts its own mean index values: every Sentinel-2
preset, on the 8 real OSCD city pairs and the bundled demo pair (real L1C data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from eowatch.evaluation.consistency import class_contradictions, plan_scenes
from eowatch.kernels import classify
from eowatch.kernels.regions import class_regions
from eowatch.pipeline import DetectRequest, detect_result, plan_pair
from eowatch.settings import Settings

DEMO = Path(__file__).resolve().parents[2] / "data" / "oscd-paris"


def _cases(shared_data: Path) -> list[tuple[str, Path, Path, str | None]]:
    root = shared_data / "s2_pairs" / "oscd"
    cities = [
        (c.name, c / "imgs_1", c / "imgs_2", None) for c in sorted(root.iterdir()) if (c / "imgs_1").is_dir()
    ]
    return [*cities, ("demo", DEMO / "imgs_1", DEMO / "imgs_2", str(DEMO / "paris.geojson"))]


@pytest.mark.parametrize("preset", ["s2-imad", "s2-cva", "s2-water", "s2-burn"])
def test_no_polygon_contradicts_its_mean_indices(shared_data, preset):
    settings = Settings()
    cases = _cases(shared_data)
    assert len(cases) == 9
    checked = 0
    for name, before, after, aoi in cases:
        plan = plan_pair(DetectRequest(before, after, preset, aoi=aoi), settings)
        result = detect_result(plan, settings)
        bad = class_contradictions(result, *plan_scenes(plan))
        assert bad == [], f"{preset} on {name}: {bad[:3]}"
        changed = (result.classes > 0) & (result.classes < 255)
        checked += class_regions(result.classes, changed).count
    assert checked > 0  # regions were there to check


def test_a_contradicting_region_is_found(paris):
    """The check can fail: relabel the largest "other change" region as water gain."""
    settings = Settings()
    plan = plan_pair(DetectRequest(paris / "imgs_1", paris / "imgs_2", "s2-imad"), settings)
    result = detect_result(plan, settings)
    regions = class_regions(result.classes, result.classes == classify.OTHER_CHANGE)
    largest = int(np.bincount(regions.pixel_labels).argmax())
    result.classes[regions.labels == largest] = classify.WATER_GAIN
    bad = class_contradictions(result, *plan_scenes(plan))
    assert [c.class_name for c in bad] == ["water gain"]
    assert bad[0].mean_indices["after"]["ndwi"] <= 0 or bad[0].mean_indices["after"]["B11"] >= 0.05
