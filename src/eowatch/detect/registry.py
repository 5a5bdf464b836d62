"""Presets registered by name, shared by the CLI, the pipeline and the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import ParameterError, UnknownPresetError
from .base import Preset, PresetParams

__all__ = ["register", "get_preset", "list_presets", "parse_params"]

_REGISTRY: dict[str, type[Preset[Any, Any]]] = {}


def register(cls: type[Preset[Any, Any]]) -> type[Preset[Any, Any]]:
    """Class decorator adding a preset to the registry under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"preset {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtin() -> None:
    from . import s1, s2  # noqa: F401  (registers on import)


def list_presets(sensor: str | None = None) -> list[Preset[Any, Any]]:
    """Every registered preset (optionally only one sensor's), sorted by name."""
    _load_builtin()
    return [cls() for name, cls in sorted(_REGISTRY.items()) if sensor is None or cls.sensor == sensor]


def get_preset(name: str) -> Preset[Any, Any]:
    """The preset registered as ``name``."""
    _load_builtin()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise UnknownPresetError(
            f"unknown preset {name!r}; available: {', '.join(sorted(_REGISTRY))} (see `eowatch presets`)"
        ) from None


def parse_params(preset: Preset[Any, Any], values: Mapping[str, Any] | None = None) -> PresetParams:
    """Validate user parameters against the preset's model; unknown names and
    bad values give a ``ParameterError`` naming the parameter and the fix."""
    values = dict(values or {})
    known = set(preset.Params.model_fields)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ParameterError(
            f"preset {preset.name!r} has no parameter(s) {unknown}; its parameters are {sorted(known)}"
        )
    try:
        return preset.Params(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ParameterError(f"invalid parameter for preset {preset.name!r}: {problems}") from None
