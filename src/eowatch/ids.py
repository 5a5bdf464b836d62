"""One rule for the ids of collections, items, tasks (ids and names) and jobs, checked
where they are made (task specs, process inputs, catalogue ingests) and where they are
looked up (the API's path parameters and search filters): 1 to 256 ASCII letters,
digits, ``.``, ``_``, ``:`` or ``-``, starting with a letter or a digit. That fits in
the database's id columns, in a URL path segment and in a folder name, and it holds
every id eowatch makes (``s2-cva_20161130_20171107_d5edd18c1f``, ``task-<name>``, uuids)
or reads (Sentinel product ids such as ``S2A_MSIL2A_20230101T101010_N0509_R022_T31UDQ_...``).
"""

from __future__ import annotations

import re

from .errors import InputError

__all__ = ["check_id", "MAX_ID_LENGTH", "ID_PATTERN"]

MAX_ID_LENGTH = 256
#: The rule as a regular expression (JSON Schema ``pattern``).
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_ID_LENGTH - 1}}}$"
_ID = re.compile(ID_PATTERN)


def check_id(kind: str, value: object) -> str:
    """``value`` when it follows the id rule; ``InputError`` naming ``kind`` (e.g.
    ``"collection id"``) and the rule otherwise."""
    if isinstance(value, str) and _ID.fullmatch(value):
        return value
    shown = repr(value) if len(repr(value)) <= 80 else f"{repr(value)[:60]}... ({len(str(value))} characters)"
    raise InputError(
        f"{kind} {shown} is not valid: use 1 to {MAX_ID_LENGTH} letters, digits, '.', '_', ':' or '-', "
        "starting with a letter or a digit"
    )
