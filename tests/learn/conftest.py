"""Fixtures of the learned-model tests: two small real OSCD cities (bercy, paris)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eowatch.learn.pairs import LabelledPair, oscd_pairs

SMALL = ("bercy", "paris")


@pytest.fixture(scope="session")
def oscd_root(shared_data: Path) -> Path:
    return shared_data / "s2_pairs/oscd"


@pytest.fixture(scope="session")
def small_pairs(oscd_root: Path) -> list[LabelledPair]:
    return [p for p in oscd_pairs(oscd_root) if p.name in SMALL]


@pytest.fixture(scope="session")
def two_cities(oscd_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OSCD-layout folder holding only the two small cities (links)."""
    root = tmp_path_factory.mktemp("oscd2")
    for name in SMALL:
        (root / name).symlink_to(oscd_root / name, target_is_directory=True)
    return root
