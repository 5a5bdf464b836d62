from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from eowatch.api import create_app
from eowatch.results import ResultsCatalog
from eowatch.services import Services
from eowatch.settings import Settings

from ..results.products import make_products


@pytest.fixture(scope="session")
def products(paris: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    return make_products(paris, tmp_path_factory.getbasetemp() / "eowatch-products")


@pytest.fixture(scope="module")
def database(products: dict[str, list[Path]], tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite results catalogue holding every product."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'catalog.db'}"
    cat = ResultsCatalog(url)
    for collection, folders in products.items():
        for folder in folders:
            cat.ingest_folder(folder, collection)
    cat.close()
    return url


@pytest.fixture(scope="module")
def client(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(output_dir=tmp_path_factory.mktemp("out"), auth_required=False)
    app = create_app(Services(settings, results=ResultsCatalog(database)))
    with TestClient(app) as test_client:
        yield test_client
    app.state.catalog.close()
