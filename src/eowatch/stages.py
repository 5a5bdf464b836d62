"""The named stages of a run (resolve, read, mask, detect, write), timed and reported
to a progress display as each starts."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["Stages", "Progress"]

Progress = Callable[[str], None]


class Stages:
    """``with stages("read"): ...`` records the stage's seconds in ``seconds``."""

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.progress:
            self.progress(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = time.perf_counter() - start
