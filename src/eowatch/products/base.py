"""The shapes every product writer shares: an asset's declaration (``AssetSpec``), the
writing options, and the writer classes (rasters from a run's record, vectors from its
polygons). The writers themselves are in ``eowatch.products.registry`` (and modules it
lists, e.g. ``eowatch.products.visual``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from ..detect.base import Preset, PresetParams
from ..io.vector import ChangePolygons
from ..model import Grid
from ..runs import RunRecord

__all__ = [
    "AssetSpec",
    "HasStatistic",
    "ProductOptions",
    "ProductWriter",
    "RasterWriter",
    "VectorWriter",
    "MEDIA_TYPES",
    "ITEM_FILE",
]

MEDIA_TYPES = {
    "cog": "image/tiff; application=geotiff; profile=cloud-optimized",
    "png": "image/png",
    "geojson": "application/geo+json",
    "fgb": "application/vnd.flatgeobuf",
}
#: The STAC Item of a run, written last: its presence marks a complete product folder.
ITEM_FILE = "item.json"


@dataclass(frozen=True)
class AssetSpec:
    """One file of a product folder as a STAC asset."""

    key: str
    file: str
    title: str
    media_type: str
    roles: tuple[str, ...]
    description: str = ""
    extra_fields: dict[str, Any] | None = None


@dataclass(frozen=True)
class ProductOptions:
    """How products are written (from ``Settings``)."""

    quicklook_max_size: int = 768
    statistic_compression: str = "ZSTD"


class HasStatistic(Protocol):
    """What the statistic writer needs: a ``Stitched`` engine output or a ``ChangeResult``."""

    @property
    def statistic(self) -> NDArray[np.float32]: ...

    @property
    def statistic_name(self) -> str: ...

    @property
    def grid(self) -> Grid: ...


class ProductWriter(ABC):
    """Writes some assets of a run's folder."""

    #: Name of its seconds in the run's timings (``write_<name>``).
    name: ClassVar[str]
    #: True when written from the statistic alone (``write_early``), as soon as it is final.
    early: ClassVar[bool] = False

    @abstractmethod
    def assets(self, preset: Preset[Any, Any], params: PresetParams, dates: int) -> tuple[AssetSpec, ...]:
        """The assets written for a run of ``preset`` over ``dates`` dates (none: not applicable)."""

    def assets_of(self, record: RunRecord) -> tuple[AssetSpec, ...]:
        """The assets of this run, with titles and fields that depend on its result."""
        plan = record.plan
        return self.assets(plan.preset, plan.params, len(plan.acquisitions))


class RasterWriter(ProductWriter):
    @abstractmethod
    def write(self, record: RunRecord, folder: Path, options: ProductOptions) -> None: ...

    def write_early(self, source: HasStatistic, folder: Path, options: ProductOptions) -> None:
        raise NotImplementedError(f"{type(self).__name__} is not an early writer")


class VectorWriter(ProductWriter):
    @abstractmethod
    def write(self, polygons: ChangePolygons, folder: Path) -> None: ...
