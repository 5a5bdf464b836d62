"""Every preset's products on the bundled pairs are those recorded in
``tests/golden_products.json`` (see ``tests/golden.py``): a refactoring of the
engine, the presets or the product writers must not change what users get."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import golden


@pytest.fixture(scope="module")
def fingerprints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return golden.fingerprints(tmp_path_factory.mktemp("golden"))


def _differences(expected: Any, found: Any, where: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(found, dict):
        out: list[str] = []
        for key in sorted(set(expected) | set(found)):
            out += _differences(expected.get(key), found.get(key), f"{where}/{key}")
        return out
    return [] if expected == found else [f"{where}: {expected!r} -> {found!r}"[:300]]


@pytest.mark.parametrize("run", sorted(json.loads(golden.GOLDEN.read_text())))
def test_products_are_unchanged(fingerprints: dict[str, Any], run: str) -> None:
    expected = json.loads(Path(golden.GOLDEN).read_text())[run]
    assert run in fingerprints, f"{run} was not run"
    problems = _differences(expected, fingerprints[run])
    assert not problems, "\n".join(problems[:20])
