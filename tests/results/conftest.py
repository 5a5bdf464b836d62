from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eowatch.results import ResultsCatalog

from ..databases import fresh_database
from .products import make_products


@pytest.fixture(scope="session")
def products(paris: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return make_products(paris, tmp_path_factory.getbasetemp() / "eowatch-products")


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ResultsCatalog]:
    """An empty results catalogue on each real database server kind."""
    cat = ResultsCatalog(fresh_database(request.param, tmp_path))
    yield cat
    cat.close()


@pytest.fixture
def filled(catalog: ResultsCatalog, products: dict[str, list[Path]]) -> ResultsCatalog:
    for collection, folders in products.items():
        for folder in folders:
            catalog.ingest_folder(folder, collection)
    return catalog
