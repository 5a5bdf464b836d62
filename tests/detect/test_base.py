"""What a preset is: a small stateless class (``eowatch.detect.base.Preset``) that the
block engine runs on scenes of any size. A toy preset written here, ~30 lines, gets
the same answer in one window, in many small windows with a halo, and on a Dask-free
thread pool, with no state kept between runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest
from affine import Affine
from pydantic import Field
from rasterio.crs import CRS
from scipy import ndimage

from eowatch.detect.base import FitSummary, Preset, PresetParams, WindowOutput
from eowatch.engine import EngineOptions, detect_arrays
from eowatch.model import NO_DATA_CLASS, ChangeClass, Grid, Scene

GRID = Grid(CRS.from_epsg(32631), Affine(10, 0, 600000, 0, -10, 5400000), 97, 83)
DROP = ChangeClass(1, "drop", (255, 0, 0))


class DropParams(PresetParams):
    min_area_m2: float = 0.0
    smooth: int = Field(1, ge=0, le=5, description="Box filter half-width (px) before comparing.")


@dataclass(frozen=True)
class DropFit:
    threshold: float


class SmoothedDrop(Preset[DropParams, DropFit]):
    """A drop of the smoothed band more than 5 robust deviations below the sample's median difference."""

    name = "test-drop"
    sensor = "sentinel-2"
    summary = "toy"
    Params = DropParams

    def bands(self, params: DropParams, available: Sequence[str]) -> tuple[str, ...]:
        return ("B08",)

    def halo(self, params: DropParams) -> int:
        return params.smooth

    def _difference(self, dates: Sequence[Scene], params: DropParams) -> np.ndarray:
        size = 2 * params.smooth + 1
        b, a = (ndimage.uniform_filter(d.band("B08").astype(np.float64), size, mode="nearest") for d in dates)
        return (a - b).astype(np.float32)

    def fit(self, sample: Sequence[Scene], params: DropParams) -> DropFit:
        d = self._difference(sample, params)[sample[0].valid & sample[1].valid]
        median = float(np.median(d))
        return DropFit(median - 5 * 1.4826 * float(np.median(np.abs(d - median))))

    def apply(self, window: Sequence[Scene], params: DropParams, model: DropFit) -> WindowOutput:
        d = self._difference(window, params)
        return WindowOutput((d < model.threshold).astype(np.uint8), d)

    def describe_fit(self, model: DropFit, params: DropParams) -> FitSummary:
        return FitSummary("b08_difference", (DROP,), {"threshold": model.threshold})


def _scenes() -> list[Scene]:
    rng = np.random.default_rng(4)
    before = rng.uniform(0.2, 0.4, GRID.shape).astype(np.float32)
    after = before + rng.normal(0, 0.01, GRID.shape).astype(np.float32)
    after[20:40, 30:60] -= 0.15  # a drop
    valid = np.ones(GRID.shape, dtype=bool)
    valid[:, :5] = False  # nodata strip in one date
    return [
        Scene(before[None], valid, ("B08",), GRID, id="b"),
        Scene(after[None], np.ones(GRID.shape, dtype=bool), ("B08",), GRID, id="a"),
    ]


@pytest.mark.parametrize("window_px", [16, 33, 4096])
def test_a_new_preset_runs_on_the_engine_in_any_windows(window_px: int) -> None:
    preset = SmoothedDrop()
    params = preset.Params()
    whole = detect_arrays(preset, params, _scenes(), EngineOptions(window_px=4096))
    windowed = detect_arrays(preset, params, _scenes(), EngineOptions(window_px=window_px, workers=2))
    assert np.array_equal(whole.classes, windowed.classes)
    np.testing.assert_allclose(windowed.statistic, whole.statistic, atol=1e-6, equal_nan=True)
    assert (whole.classes[:, :5] == NO_DATA_CLASS).all()
    assert (whole.classes[22:38, 32:58] == 1).all()  # the drop, away from its smoothed edge
    assert whole.metadata["threshold"] < 0 and whole.statistic_name == "b08_difference"


class DropWithPixels(SmoothedDrop):
    """The toy preset handing the whole-map step values at its changed pixels (``pixels``,
    as the Sentinel-2 presets hand their class-rule terms): ``finish`` keeps a changed
    pixel only where the value it carried equals the stitched statistic there, so a wrong
    window-to-grid mapping (halo, window origins) loses pixels."""

    def apply(self, window: Sequence[Scene], params: DropParams, model: DropFit) -> WindowOutput:
        out = super().apply(window, params, model)
        at = np.flatnonzero(out.classes)
        return WindowOutput(
            out.classes,
            out.statistic,
            pixels=(at.astype(np.int32), out.statistic.ravel()[at][None].astype(np.float16)),
        )

    def finish(self, classes, statistic, params, model, exact, pixels=None):  # type: ignore[no-untyped-def]
        assert pixels is not None
        carried = np.zeros(classes.shape, dtype=bool)
        for index, values in pixels.drain():
            carried.ravel()[index] = values[0] == statistic.ravel()[index].astype(np.float16)
        classes[(classes == 1) & ~carried] = 0
        return classes


@pytest.mark.parametrize("window_px", [16, 33, 4096])
def test_pixel_values_reach_the_whole_map_step_on_their_pixels(window_px: int) -> None:
    plain = detect_arrays(SmoothedDrop(), DropParams(), _scenes(), EngineOptions(window_px=4096))
    carried = detect_arrays(
        DropWithPixels(), DropParams(smooth=2), _scenes(), EngineOptions(window_px=window_px)
    )
    reference = detect_arrays(SmoothedDrop(), DropParams(smooth=2), _scenes(), EngineOptions(window_px=4096))
    assert (reference.classes == 1).sum() > 400 and (plain.classes == 1).any()
    assert np.array_equal(carried.classes, reference.classes)  # every changed pixel carried its own value
