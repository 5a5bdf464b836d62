"""How the engine runs: windows, sample, and where the windows run (chosen once,
from ``Settings``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import InputError
from ..settings import Settings

__all__ = ["EngineOptions"]


@dataclass(frozen=True)
class EngineOptions:
    """``executor`` "threads" runs ``workers`` windows at once in this process; "dask"
    sends them to the scheduler at ``dask_address`` (workers open the same inputs)."""

    executor: Literal["threads", "dask"] = "threads"
    workers: int = 2
    window_px: int = 1024
    sample_px: int = 2_000_000
    dask_address: str | None = None

    def __post_init__(self) -> None:
        if self.executor == "dask" and not self.dask_address:
            raise InputError(
                "scene_executor='dask' needs a scheduler: set EOWATCH_DASK_SCHEDULER_ADDRESS=tcp://host:8786"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            executor=settings.scene_executor,
            workers=settings.scene_workers,
            window_px=settings.scene_window_px,
            sample_px=settings.scene_sample_px,
            dask_address=settings.dask_scheduler_address,
        )
