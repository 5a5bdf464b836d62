"""Checks the commands make before any work: the outputs can be written where asked."""

from __future__ import annotations

import tempfile
from pathlib import Path

from ..errors import InputError

__all__ = ["writable_folder", "writable_file"]


def writable_folder(path: Path, option: str) -> Path:
    """``path``, a folder that exists or can be made, and written in (``InputError``
    naming ``option`` otherwise). Nothing is created."""
    _check_folder(path, option, path)
    return path


def writable_file(path: Path, option: str) -> Path:
    """``path``, a file that can be written (made or replaced), checked like ``writable_folder``."""
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file path")
    _check_folder(path.parent, option, path)
    if path.exists():
        try:
            path.open("ab").close()
        except OSError as exc:
            raise InputError(
                f"{option} {path}: cannot write it ({exc.strerror or exc}); give another path"
            ) from None
    return path


def _check_folder(folder: Path, option: str, given: Path) -> None:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"{option} {given}: {existing} is a file, not a folder; give another path")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        raise InputError(
            f"{option} {given}: cannot write in {existing} ({exc.strerror or exc}); give a writable path"
        ) from None
