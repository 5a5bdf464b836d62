"""``eowatch serve`` (the web service) and ``eowatch admin`` (users, API keys,
grants). Each command is a few lines over the library."""

from __future__ import annotations

from typing import Any

import click

from ..services import Services
from .context import services_of_command
from .exits import EowatchCommand, EowatchGroup

__all__ = ["serve", "admin", "run_server"]


def run_server(services: Services, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``create_app(services)`` with uvicorn, logging JSON lines to stderr."""
    import uvicorn

    from ..api import create_app
    from ..api.ops import configure_logging

    configure_logging(log_level.upper())
    app = create_app(services)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, log_config=None)


@click.command(cls=EowatchCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--log-level", default="info", show_default=True, type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option(
    "--scheduler/--no-scheduler",
    default=None,
    help="Also run the task scheduler in this process (default: EOWATCH_SERVE_SCHEDULER, off).",
)
@click.option(
    "--worker/--no-worker",
    default=None,
    help="Also run a monitoring worker in this process (default: EOWATCH_SERVE_WORKER, off).",
)
def serve(host: str, port: int, log_level: str, scheduler: bool | None, worker: bool | None) -> None:
    """Serve the eowatch API: STAC results, OGC API - Processes, monitoring tasks, tiles, metrics."""
    settings = services_of_command().settings
    chosen = {"serve_scheduler": scheduler, "serve_worker": worker}
    settings = settings.model_copy(update={k: v for k, v in chosen.items() if v is not None})
    run_server(Services(settings), host, port, log_level)


def _access() -> Any:
    services = services_of_command()
    click.get_current_context().call_on_close(services.close)  # the database's connections
    return services.access


@click.group(cls=EowatchGroup)
def admin() -> None:
    """Manage users, API keys and collection grants (in the database of the settings)."""


@admin.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "analyst", "partner"]), required=True)
@click.option("--organisation", default="", help="Organisation (needed for partners).")
@click.option("--with-key", is_flag=True, help="Also create an API key and print it.")
def create_user(name: str, role: str, organisation: str, with_key: bool) -> None:
    """Add a user (the first admin bootstraps the service)."""
    access = _access()
    access.create_user(name, role, organisation)
    click.echo(f"created {role} {name!r}", err=True)
    if with_key:
        click.echo(access.create_key(name))


@admin.command("create-key")
@click.argument("user")
def create_key(user: str) -> None:
    """Create an API key for USER and print it (it is shown only this once)."""
    click.echo(_access().create_key(user))


@admin.command("revoke-key")
@click.argument("key_or_prefix")
def revoke_key(key_or_prefix: str) -> None:
    """Revoke an API key, given whole or by its prefix."""
    _access().revoke_key(key_or_prefix)
    click.echo("revoked", err=True)


@admin.command("grant")
@click.argument("organisation")
@click.argument("collection")
@click.option("--write", is_flag=True, help="Also let its partners give verdicts on change polygons.")
def grant(organisation: str, collection: str, write: bool) -> None:
    """Let ORGANISATION read COLLECTION (and write to it with --write; granting again
    without --write makes it read only)."""
    _access().grant(organisation, collection, "cli", write=write)
    click.echo(f"granted {collection!r} to {organisation!r}{' (read and write)' if write else ''}", err=True)


@admin.command("revoke")
@click.argument("organisation")
@click.argument("collection")
def revoke(organisation: str, collection: str) -> None:
    """Withdraw ORGANISATION's read access to COLLECTION."""
    _access().revoke(organisation, collection, "cli")
    click.echo(f"revoked {collection!r} from {organisation!r}", err=True)
