"""``eowatch catalog``: register product folders, list, search, export and
serve the results catalogue. Each command is a few lines over the library."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..services import Services
from .checks import writable_folder
from .context import services_of_command
from .exits import EowatchGroup

if TYPE_CHECKING:
    from ..results import ResultsCatalog

__all__ = ["catalog"]


def _services(database: str | None) -> Services:
    """The command's services, on ``database`` when given."""
    services = services_of_command()
    if database and database != services.settings.database_url:
        return Services(services.settings.model_copy(update={"database_url": database}))
    return services


def _open(database: str | None) -> ResultsCatalog:
    return _services(database).results


_database = click.option(
    "--database",
    envvar="EOWATCH_DATABASE_URL",
    default=None,
    help="Database URL (default: sqlite:///<output_dir>/eowatch.db).",
)


def _full_datetimes(text: str | None) -> str | None:
    """Let the command line take plain dates (``2017-01-01`` means its midnight, UTC)."""
    if not text:
        return None
    parts = [p + "T00:00:00Z" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", p) else p for p in text.split("/")]
    return "/".join(parts)


@click.group(cls=EowatchGroup)
def catalog() -> None:
    """The results catalogue: product runs as STAC Items."""


@catalog.command()
@click.argument(
    "folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--collection", "-c", required=True, help="Collection to register the runs in.")
@_database
def ingest(folders: tuple[Path, ...], collection: str, database: str | None) -> None:
    """Register product folders (each with an item.json) in a collection."""
    cat = _open(database)
    for folder in folders:
        item = cat.ingest_folder(folder, collection)
        click.echo(f"{collection}/{item['id']}")


@catalog.command()
@_database
def collections(database: str | None) -> None:
    """List the collections with their extent."""
    for coll in _open(database).list_collections():
        bbox = coll["extent"]["spatial"]["bbox"][0]
        start, end = coll["extent"]["temporal"]["interval"][0]
        click.echo(f"{coll['id']}\t{start or '..'}/{end or '..'}\t{','.join(f'{v:.5f}' for v in bbox)}")


@catalog.command()
@click.option("--bbox", help="minx,miny,maxx,maxy in degrees.")
@click.option(
    "--datetime", "when", help="An instant or start/end (dates or RFC 3339 date-times; open ends: ..)."
)
@click.option(
    "--collection", "-c", "collections_", multiple=True, help="Restrict to a collection (repeatable)."
)
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True, help="Print the Items as a GeoJSON FeatureCollection.")
@_database
def search(
    bbox: str | None,
    when: str | None,
    collections_: tuple[str, ...],
    limit: int,
    as_json: bool,
    database: str | None,
) -> None:
    """Search the Items, newest first."""
    result = _open(database).search(
        bbox=bbox, datetime=_full_datetimes(when), collections=list(collections_) or None, limit=limit
    )
    if as_json:
        click.echo(json.dumps({"type": "FeatureCollection", "features": result.items}, indent=1))
        return
    for item in result.items:
        props = item["properties"]
        click.echo(
            f"{item['collection']}\t{item['id']}\t{props.get('datetime')}\t"
            f"{props.get('eowatch:preset', '')}\t{props.get('eowatch:changed_area_m2', '')}"
        )
    click.echo(f"{len(result.items)} of {result.matched} matching items", err=True)


@catalog.command()
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@_database
def export(dest: Path, database: str | None) -> None:
    """Write a static STAC catalogue (assets copied) under DEST."""
    root = _open(database).export_static(writable_folder(dest, "DEST"))
    click.echo(str(root))


@catalog.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@_database
def serve(host: str, port: int, database: str | None) -> None:
    """Serve the results catalogue as a STAC API."""
    import uvicorn

    from ..api import create_app

    app = create_app(_services(database))
    uvicorn.run(app, host=host, port=port, log_level="warning")
