"""What a worker needs to run one job, typed: written by the scheduler (a task's
pair) or by the OGC API (a process execution), kept as JSON in the queue, read
back by the worker."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shapely.geometry import shape

from ..io.sources import Acquisition, BandAsset
from ..plan import DetectRequest

__all__ = ["JobPayload", "TaskRef", "acquisition_to_dict", "acquisition_from_dict"]


def acquisition_to_dict(acq: Acquisition) -> dict[str, Any]:
    """A JSON-ready copy of an ``Acquisition``."""
    data = asdict(acq)
    data["datetime"] = acq.datetime.isoformat() if acq.datetime else None
    return data


def acquisition_from_dict(data: dict[str, Any]) -> Acquisition:
    """The ``Acquisition`` written by ``acquisition_to_dict``."""
    return Acquisition(
        id=data["id"], sensor=data["sensor"],
        assets={k: BandAsset(**v) for k, v in data["assets"].items()},
        datetime=datetime.fromisoformat(data["datetime"]) if data.get("datetime") else None,
        href=data.get("href", ""), properties=dict(data.get("properties") or {}),
    )  # fmt: skip


@dataclass(frozen=True)
class TaskRef:
    """The monitoring task a job belongs to."""

    id: str
    name: str
    collection: str


@dataclass(frozen=True)
class JobPayload:
    """One job's work: the preset and its parameters, the two inputs (acquisitions a
    task's discovery found, or the paths/URLs a process execution gave), the AOI as a
    GeoJSON geometry (EPSG:4326) and the collection its product is registered in."""

    preset: str
    collection: str
    before: Acquisition | str
    after: Acquisition | str
    params: dict[str, Any] = field(default_factory=dict)
    aoi: dict[str, Any] | None = None
    task: TaskRef | None = None
    pair: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def side(value: Acquisition | str) -> Any:
            return value if isinstance(value, str) else acquisition_to_dict(value)

        return {
            "preset": self.preset, "collection": self.collection, "before": side(self.before),
            "after": side(self.after), "params": self.params, "aoi": self.aoi,
            "task": asdict(self.task) if self.task else None, "pair": self.pair,
        }  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobPayload:
        def side(value: Any) -> Acquisition | str:
            return value if isinstance(value, str) else acquisition_from_dict(value)

        task = TaskRef(**data["task"]) if data.get("task") else None
        collection = data.get("collection") or (task.collection if task else "")
        return cls(
            preset=data["preset"], collection=collection, before=side(data["before"]),
            after=side(data["after"]), params=dict(data.get("params") or {}), aoi=data.get("aoi"), task=task,
            pair=dict(data.get("pair") or {}),
        )  # fmt: skip

    def request(self) -> DetectRequest:
        """The detection request of this job."""
        provenance = {"eowatch:pairing": self.pair, "eowatch:task": self.task.name} if self.task else {}
        return DetectRequest(
            before=self.before, after=self.after, preset=self.preset, params=dict(self.params),
            aoi=shape(self.aoi) if self.aoi else None, provenance=provenance,
        )  # fmt: skip
