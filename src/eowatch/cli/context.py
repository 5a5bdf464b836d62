"""The ``Services`` of the running command: built once by the ``eowatch`` group from the
settings (``ctx.obj``), or, for a sub-command invoked on its own, from ``Settings()``."""

from __future__ import annotations

import click

from ..services import Services
from ..settings import Settings

__all__ = ["services_of_command"]


def services_of_command() -> Services:
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Services):
        root.obj = Services(Settings())
    return root.obj
