"""Targets: normalisation, floors, zones, rasters, and the smoothed reciprocal field."""

import math

import numpy as np
import pytest

from swarmcover import Box, Disk, GaussianMixture, Polygon, Raster, Rectangle, Uniform

pytestmark = pytest.mark.unit


def _integral(target, cells=400):
    axes, cell = target.box.grid(cells)
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, target.dim)
    return target.pdf(pts).sum() * cell


@pytest.mark.parametrize(
    "target",
    [
        Uniform([(0, 2), (-1, 1)]),
        Uniform([(0, 1), (0, 1)], zones=[Disk((0.5, 0.5), 0.2)]),
        GaussianMixture(
            [[0.2, 0.2], [0.9, 0.5]], [[0.02, 0.03], [0.05, 0.01]], [1, 3], bounds=[(0, 1), (0, 1)]
        ),
        GaussianMixture(
            [[0.5, 0.5]],
            [[[0.04, 0.01], [0.01, 0.02]]],
            bounds=[(0, 1), (0, 1)],
            zones=[Rectangle((0, 0), (0.3, 1))],
        ),
        Raster(np.arange(12.0).reshape(3, 4), [(0, 3), (0, 1)]),
        GaussianMixture([[0.0]], [0.1], bounds=[(-1, 2)]),
    ],
    ids=["uniform", "uniform-zone", "mixture-diag", "mixture-full-zone", "raster", "mixture-1d"],
)
def test_targets_are_probability_densities(target):
    assert _integral(target) == pytest.approx(1.0, rel=2e-3)
    _, w = target.quadrature(64)
    assert w.sum() == pytest.approx(1.0)


def test_floor_and_zones():
    target = Uniform([(0, 1), (0, 1)], zones=[Disk((0.5, 0.5), 0.1)], floor=1e-2)
    inside = target.density([[0.5, 0.5]])
    outside = target.density([[0.1, 0.1]])
    assert inside[0] == pytest.approx(1e-2) and target.pdf([[0.5, 0.5]])[0] == 0
    assert outside[0] == pytest.approx(1 / (1 - math.pi * 0.01), rel=1e-3)
    assert np.all(np.isfinite(target.reciprocal([[0.5, 0.5], [2.0, 2.0]])))


def test_raster_orientation_and_npy(tmp_path):
    values = np.zeros((4, 2))
    values[3, 1] = 1.0  # the cell at high x, high y
    r = Raster(values, [(0, 4), (0, 2)])
    assert r.pdf([[3.5, 1.5]])[0] == pytest.approx(1.0)
    assert r.pdf([[0.5, 0.5]])[0] == 0
    path = tmp_path / "map.npy"
    np.save(path, values)
    assert Raster.from_npy(path, [(0, 4), (0, 2)]).pdf([[3.5, 1.5]])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="not found"):
        Raster.from_npy(tmp_path / "missing.npy", [(0, 4), (0, 2)])
    (tmp_path / "bad.npy").write_text("not an array")
    with pytest.raises(ValueError, match="cannot read demand map"):
        Raster.from_npy(tmp_path / "bad.npy", [(0, 4), (0, 2)])


def test_zone_geometry():
    sq = Polygon([(0, 0), (1, 0), (1, 1), (0, 1)])
    pts = np.array([[0.5, 0.5], [1.5, 0.5], [0.5, -0.25]])
    assert sq.contains(pts).tolist() == [True, False, False]
    assert np.allclose(sq.signed_distance(pts), [-0.5, 0.5, 0.25])
    rect = Rectangle((0, 0), (1, 1))
    assert np.allclose(rect.signed_distance(pts), sq.signed_distance(pts))
    assert np.allclose(Disk((0, 0), 1).signed_distance([[3, 4]]), [4])


def test_box_fold_and_images():
    box = Box([(0, 1), (0, 2)])
    assert np.allclose(
        box.fold([[-0.25, 2.5], [1.25, -0.5], [2.5, 4.5]]), [[0.25, 1.5], [0.75, 0.5], [0.5, 0.5]]
    )
    imgs, owner = box.images([[0.05, 1.0], [0.5, 0.05]], 0.2)
    assert sorted(map(tuple, np.round(imgs, 12))) == [(-0.05, 1.0), (0.5, -0.05)]
    assert sorted(owner.tolist()) == [0, 1]


def test_smoothed_reciprocal_of_uniform_is_constant():
    target = Uniform([(0, 2), (0, 1)])
    field = target.smoothed_reciprocal(0.05, 0.1)
    pts = np.random.default_rng(0).random((50, 2)) * [2, 1]
    w, grad = field.sample(pts)
    assert np.allclose(w, 2.0, rtol=1e-9) and np.allclose(grad, 0, atol=1e-7)
    with pytest.raises(ValueError, match="outside the region"):
        field.sample([[5.0, 0.5]])
