"""Shorter GIL turns while threads that mostly run C code share the interpreter."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["short_gil_turns"]


@contextmanager
def short_gil_turns(seconds: float = 0.0005) -> Iterator[None]:
    """Hand the GIL over after ``seconds`` instead of the default 5 ms.

    Threads that spend their time in GDAL or numpy (which release the GIL) need it
    briefly between calls; at 5 ms turns they queue behind any thread busy in Python
    (polygon tracing, window bookkeeping): on a full tile the raster products took
    ~2x their own time. Process-wide, so restored on exit.
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, seconds))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)
