"""The ``Services`` of the running command: built once by the ``eowatch`` group from the
settings (``ctx.obj``), or, for a sub-command invoked on its own, from ``Settings()``."""

from __future__ import annotations

import os
import re
import typing

import click
from pydantic import ValidationError
from pydantic_settings import SettingsError

from ..errors import InputError
from ..services import Services
from ..settings import Settings

__all__ = ["services_of_command", "load_settings"]

_BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def services_of_command() -> Services:
    root = click.get_current_context().find_root()
    if not isinstance(root.obj, Services):
        root.obj = Services(load_settings())
    return root.obj


def load_settings() -> Settings:
    """``Settings()`` from the environment; a bad ``EOWATCH_*`` value is an ``InputError``
    naming the variable, its value and the type expected."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name, reason = str(first["loc"][0] if first["loc"] else ""), first["msg"]
    except SettingsError as exc:  # a JSON value (list, mapping) that does not parse
        match = re.search(r'field "(\w+)"', str(exc))
        name, reason = (match.group(1) if match else ""), "not valid JSON"
    if name not in Settings.model_fields:
        raise InputError(f"invalid EOWATCH_* environment: {reason}") from None
    var = f"EOWATCH_{name.upper()}"
    raise InputError(
        f"environment variable {var}={os.environ.get(var, '')!r}: {reason[:1].lower()}{reason[1:]}; "
        f"expected {_expected(name)}: fix or unset it"
    ) from None


def _expected(name: str) -> str:
    field = Settings.model_fields[name]
    annotation = field.annotation
    kind = annotation.__name__ if isinstance(annotation, type) else re.sub(r"\w+\.", "", str(annotation))
    if typing.get_origin(annotation) in (list, tuple):
        kind += ' as a JSON list (e.g. ["a", "b"])'
    bounds = [f"{sign} {getattr(m, key)}" for m in field.metadata for key, sign in _BOUNDS.items()
              if hasattr(m, key)]  # fmt: skip
    return kind + (f" ({', '.join(bounds)})" if bounds else "")
