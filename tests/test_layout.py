"""The package's layering, checked on the source: GDAL (rasterio) is reached only
through ``eowatch.io`` (and the API's tile endpoint); kernels, presets and the engine
never reach files, catalogues or products; products never call the pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "eowatch"
MODULES = sorted(SRC.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved)."""
    package = ["eowatch", *path.relative_to(SRC).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def _where(path: Path) -> str:
    return str(path.relative_to(SRC))


def test_only_io_reaches_gdal() -> None:
    allowed = {"api/tiles.py"}
    offenders = [
        _where(p)
        for p in MODULES
        if not _where(p).startswith("io/") and _where(p) not in allowed
        if any(n == "rasterio" or n.startswith("rasterio.") for n in _imports(p))
    ]
    assert offenders == []


@pytest.mark.parametrize("layer", ["kernels", "detect", "engine"])
def test_algorithms_reach_no_files_catalogues_or_products(layer: str) -> None:
    outer = ("io", "catalog", "products", "pipeline", "plan", "api", "cli", "monitor", "store", "results")
    forbidden = tuple(f"eowatch.{name}" for name in outer)
    offenders = {
        _where(p): sorted(n for n in _imports(p) if n.startswith(forbidden))
        for p in MODULES
        if _where(p).startswith(f"{layer}/")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_products_read_records_and_never_call_the_pipeline() -> None:
    offenders = {
        _where(p): sorted(n for n in _imports(p) if n.startswith(("eowatch.pipeline", "eowatch.plan")))
        for p in MODULES
        if _where(p).startswith("products/")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
