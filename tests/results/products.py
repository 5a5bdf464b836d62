"""Real product folders from the bundled Paris pair, made once per test session
(each run takes a few seconds) and shared by the results and API tests."""

from __future__ import annotations

from pathlib import Path

from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings

# collection -> presets run on the bundled pair
LAYOUT = {"urban": ["s2-imad", "s2-cva"], "water": ["s2-water"]}
_made: dict[Path, dict[str, list[Path]]] = {}


def make_products(paris: Path, root: Path) -> dict[str, list[Path]]:
    """{collection: [product folder, ...]} under ``root`` (made on first use)."""
    if root not in _made:
        settings = Settings(output_dir=root)
        _made[root] = {
            collection: [
                detect_pair(
                    DetectRequest(paris / "imgs_1", paris / "imgs_2", preset=preset), settings, root / preset
                ).folder
                for preset in presets
            ]
            for collection, presets in LAYOUT.items()
        }
    return _made[root]
