"""Compiled per-pixel loops (numba).

Whole-array numpy makes one pass over memory per operation; a chain of them on a
full tile is bound by memory traffic, not arithmetic. The few loops that dominate a
full-tile run (the MAD projection, boundary tracing) are compiled instead: one pass,
no temporaries, the GIL released so window threads run them in parallel. Compiled
code is cached next to the module (``cache=True``), so only the first run on a
machine pays the compilation (about a second per kernel).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from numba import njit

__all__ = ["kernel"]

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile ``fn`` in nopython mode, GIL released, cached on disk; numpy's error model
    (division by zero gives inf/NaN, as in the array code it replaces)."""
    return cast(F, njit(cache=True, nogil=True, error_model="numpy")(fn))
