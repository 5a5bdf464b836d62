"""Real product folders from the bundled Paris pair, made once per test session
(each run takes a few seconds) and shared by the results and API tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from eowatch.pipeline import DetectRequest, detect_pair
from eowatch.settings import Settings
from eowatch.store import Base, make_engine

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


def database_url(kind: str, tmp: Path) -> str:
    """A fresh database of ``kind`` (sqlite or postgresql). PostgreSQL comes from
    EOWATCH_TEST_POSTGRES_URL (scripts/start_postgres.sh); CI must have it."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'catalog.db'}"
    url = os.environ.get("EOWATCH_TEST_POSTGRES_URL")
    if not url:
        reason = 'EOWATCH_TEST_POSTGRES_URL is not set; run: eval "$(scripts/start_postgres.sh)"'
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    engine: Engine = make_engine(url)
    Base.metadata.drop_all(engine)
    engine.dispose()
    return url
