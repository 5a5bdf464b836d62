"""How a run went: windows, sample, the most windows held at once, summed thread-seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["EngineStats"]


@dataclass
class EngineStats:
    executor: str
    workers: int
    window_px: int
    windows: int = 0
    sample_px: int = 0
    sample_valid_px: int = 0
    max_resident_windows: int = 0
    read_s: float = 0.0
    apply_s: float = 0.0
    #: Pixels masked as cloud in each date (oldest first).
    cloud_px: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "executor": self.executor,
            "workers": self.workers,
            "window_px": self.window_px,
            "windows": self.windows,
            "sample_px": self.sample_px,
            "sample_valid_px": self.sample_valid_px,
            "max_resident_windows": self.max_resident_windows,
            "read_thread_s": round(self.read_s, 3),
            "apply_thread_s": round(self.apply_s, 3),
        }
