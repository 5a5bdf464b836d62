import numpy as np
import pytest
import shapely
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

from eowatch.kernels.boundaries import trace_rings


def _labels(classes: np.ndarray) -> tuple[np.ndarray, int]:
    """One label per 4-connected region of equal non-zero class."""
    labels = np.zeros(classes.shape, np.int32)
    count = 0
    for value in np.unique(classes[classes > 0]):
        parts, n = ndimage.label(classes == value)
        labels[parts > 0] = parts[parts > 0] + count
        count += n
    return labels, count


def _polygons(labels: np.ndarray, count: int) -> np.ndarray:
    rings = trace_rings(labels, count)
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, rings.xy, (rings.ring_offsets, rings.polygon_offsets)
    )


@pytest.mark.parametrize("seed", range(40))
def test_rings_equal_gdal_polygonize_and_are_valid(seed):
    rng = np.random.default_rng(seed)
    shape_ = (int(rng.integers(1, 40)), int(rng.integers(1, 50)))
    density = rng.uniform(0.1, 0.9)  # sparse, dense: holes, diagonal pinches of regions and holes
    classes = (rng.random(shape_) < density) * rng.integers(1, 4, shape_)
    labels, count = _labels(classes)
    ours = _polygons(labels, count)
    gdal = {int(v): shape(g) for g, v in shapes(labels, mask=labels > 0, connectivity=4)}
    assert len(ours) == len(gdal) == count
    assert shapely.is_valid(ours).all()
    for label, polygon in enumerate(ours, start=1):
        assert polygon.area == (labels == label).sum()
        assert polygon.equals(gdal[label])
        # The same corners as GDAL: a vertex only where the boundary turns.
        assert shapely.get_num_coordinates(polygon) == shapely.get_num_coordinates(gdal[label])


def test_pinched_region_is_an_outer_ring_and_a_hole_touching_it():
    # A ring of pixels closed only through a corner: the hole touches the outside there.
    labels = np.array(
        [
            [0, 1, 1, 1],
            [1, 0, 0, 1],
            [1, 1, 1, 1],
        ],
        dtype=np.int32,
    )
    [polygon] = _polygons(labels, 1)
    assert polygon.is_valid and len(polygon.interiors) == 1
    assert polygon.area == 9 and shapely.Polygon(polygon.exterior).area == 11  # 12 less the corner
    assert polygon.exterior.intersection(polygon.interiors[0]).equals(shapely.Point(1, 1))


def test_empty_image_and_label_without_pixels():
    rings = trace_rings(np.zeros((3, 4), np.int32), 0)
    assert rings.xy.shape == (0, 2) and rings.polygon_offsets.tolist() == [0]
    labels = np.zeros((3, 3), np.int32)
    labels[1, 1] = 2  # label 1 has no pixel
    first, second = _polygons(labels, 2)
    assert first.is_empty and second.equals(shapely.box(1, 1, 2, 2))
