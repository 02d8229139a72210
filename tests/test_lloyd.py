"""Lloyd's algorithm: monotone cost, centroidal fixed points, exact 1-D answer."""

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.metrics import lloyd_cost

pytestmark = pytest.mark.unit


def test_uniform_1d_converges_to_even_spacing(rng):
    target = sc.Uniform([(0.0, 1.0)])
    n = 5
    res = sc.lloyd(target, rng.random((n, 1)), max_iter=5000, tol=1e-7, cells=20_000)
    assert res.converged
    # discrete Lloyd stops once moves fall below the quadrature cell (5e-5 here) divided by the
    # spectral gap of the iteration (about 0.1 for n = 5): the fixed point is that close
    assert np.allclose(np.sort(res.x[:, 0]), (np.arange(n) + 0.5) / n, atol=1e-3)
    assert res.costs[-1] == pytest.approx(1.0 / (12 * n * n), rel=1e-3)  # n cells of width 1/n


def test_cost_never_increases_and_matches_the_metric(rng):
    target = sc.GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.01, 0.02], bounds=[(0, 1), (0, 1)])
    res = sc.lloyd(target, 0.1 * rng.random((25, 2)))
    assert np.all(np.diff(res.costs) <= 1e-15)
    assert res.costs[-1] == pytest.approx(lloyd_cost(res.x, target, 256), rel=1e-12)
    assert res.costs[-1] < 0.1 * res.costs[0]


def test_centroidal_at_convergence(rng):
    target = sc.Uniform([(0, 2), (0, 1)])
    res = sc.lloyd(target, rng.random((12, 2)) * [2, 1], max_iter=3000, tol=1e-6)
    assert res.converged
    q, w = target.quadrature(256)
    owner = np.argmin(np.linalg.norm(q[:, None] - res.x[None], axis=2), axis=1)
    for i in range(12):
        cell = owner == i
        centroid = (w[cell, None] * q[cell]).sum(0) / w[cell].sum()
        assert np.allclose(centroid, res.x[i], atol=1e-3)


def test_lloyd_validates():
    target = sc.Uniform([(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="at least one"):
        sc.lloyd(target, np.empty((0, 2)))
    with pytest.raises(ValueError, match="max_iter"):
        sc.lloyd(target, [[0.5, 0.5]], max_iter=-1)
