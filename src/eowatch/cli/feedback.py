"""``eowatch feedback``: the analysts' verdicts on change polygons, listed or exported
as training labels (a GeoJSON FeatureCollection). Each command is a few lines over
``eowatch.results.feedback``; they read the database of the settings, all of it (an
operator's tool: access control is the API's)."""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ..results.feedback import Feedback, parse_since
from ..store.feedback import VERDICTS
from .checks import writable_file
from .context import services_of_command
from .exits import EowatchGroup

__all__ = ["feedback"]

_since = click.option(
    "--since", default=None, help="Only verdicts given or changed from then: a date or an RFC 3339 date-time."
)
_collection = click.option(
    "--collection", "-c", default=None, help="Only the verdicts on this collection's Items."
)
_verdict = click.option(
    "--verdict",
    "verdicts",
    multiple=True,
    type=click.Choice(VERDICTS),
    help="Only these verdicts (repeatable).",
)


def _feedback() -> Feedback:
    services = services_of_command()
    click.get_current_context().call_on_close(services.close)  # the database's connections
    return Feedback(services.results, services.access)


def _since_of(text: str | None) -> dt.datetime | None:
    try:
        return parse_since(text)
    except InputError as exc:
        raise InputError(f"--since: {exc}") from None


@click.group(cls=EowatchGroup)
def feedback() -> None:
    """Verdicts on change polygons (confirmed, false alarm, wrong class)."""


@feedback.command("export")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="GeoJSON file to write.")
@_collection
@_since
@_verdict
def export(out: Path, collection: str | None, since: str | None, verdicts: tuple[str, ...]) -> None:
    """Write the verdicts as training labels: each polygon as judged (geometry, class), the
    verdict, corrected class, label, author, note, times, and the Item's preset and inputs."""
    writable_file(out, "--out")
    labels = _feedback().labels(
        collection_id=collection, since=_since_of(since), verdicts=list(verdicts) or None
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(labels, stream, separators=(",", ":"))
        os.replace(tmp, out)  # never a half-written file under the name asked for
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    click.echo(f"{len(labels['features'])} labels written to {out}", err=True)


@feedback.command("list")
@_collection
@click.option("--item", default=None, help="Only the verdicts on this Item (with --collection).")
@_since
@_verdict
@click.option("--json", "as_json", is_flag=True, help="Print the labels as GeoJSON (as export writes).")
def list_verdicts(
    collection: str | None, item: str | None, since: str | None, verdicts: tuple[str, ...], as_json: bool
) -> None:
    """List the verdicts: collection, item, polygon, verdict, class, author, time, note."""
    if item and not collection:
        raise click.UsageError("--item needs --collection")
    labels = _feedback().labels(
        collection_id=collection, item_id=item, since=_since_of(since), verdicts=list(verdicts) or None
    )
    features = labels["features"]
    if as_json:
        click.echo(json.dumps(labels, indent=1))
        return
    for f in features:
        p = f["properties"]
        corrected = p["corrected_class_name"] or p["corrected_class"]
        verdict = f"{p['verdict']} -> {corrected}" if corrected is not None else p["verdict"]
        note = " ".join(p["note"].split())
        click.echo(
            f"{p['collection']}\t{p['item']}\t{p['polygon']}\t{verdict}\t{p['polygon_class_name'] or ''}\t"
            f"{p['author']}\t{p['updated_at']}\t{note[:80] + ('…' if len(note) > 80 else '')}"
        )
    click.echo(f"{len(features)} verdicts", err=True)
