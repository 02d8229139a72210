"""Issue 3 acceptance: the law on sparse, peaky maps, walls, minimum separation, and recovery.

Every comparison is against Lloyd's algorithm (full knowledge of the map) from the same start.
"""

import math

import numpy as np
import pytest
from scipy.spatial import cKDTree

import swarmcover as sc
from swarmcover.coverage import CoverageSchedule, cover
from swarmcover.maps import corner_start, peaky_map
from swarmcover.metrics import lloyd_cost

pytestmark = pytest.mark.unit

SIZE = 1024.0
SPEED = 20.0


def spacing(n: int) -> float:
    return math.sqrt(SIZE * SIZE / n)


def covered_mass(x: np.ndarray, target: sc.Target, radius: float) -> float:
    """Target mass within ``radius`` of some agent."""
    q, w = target.quadrature(256)
    dist, _ = cKDTree(x).query(q)
    return float(w[dist <= radius].sum())


def min_distance(x: np.ndarray) -> float:
    dist, _ = cKDTree(x).query(x, k=2)
    return float(dist[:, 1].min())


@pytest.fixture(scope="module")
def sparse_map() -> sc.GaussianMixture:
    return peaky_map(SIZE, n_bumps=12, support=0.27, truncate=2.0, seed=1)


@pytest.fixture(scope="module")
def converged(sparse_map):
    """n -> (start, final positions, r_min) for fleets covering the sparse map from a corner."""
    out = {}
    for n in (32, 128):
        h = spacing(n)
        x0 = corner_start(sparse_map.box, n, 0.3 * h, seed=0)
        res = cover(sparse_map, x0, SPEED, r_min=0.2 * h)
        out[n] = (x0, res.x, 0.2 * h)
    return out


def test_sparse_map_is_sparse_and_peaky(sparse_map):
    _, w = sparse_map.quadrature(256)
    assert 0.70 < np.mean(w == 0) < 0.76  # zero on about three quarters of the area
    assert len(sparse_map.means) == 12


@pytest.mark.parametrize("n", [32, 128])
def test_sparse_map_covered_better_than_lloyd_from_the_same_start(n, sparse_map, converged):
    x0, x, _ = converged[n]
    h = spacing(n)
    assert covered_mass(x, sparse_map, h) >= 0.9
    baseline = sc.lloyd(sparse_map, x0)
    assert baseline.converged
    assert lloyd_cost(x, sparse_map) <= baseline.costs[-1]
    # and the fleet ended on the support, not beside it
    assert np.mean(sparse_map.pdf(x) > 0) >= 0.8


@pytest.mark.parametrize("n", [32, 128])
def test_no_two_agents_closer_than_r_min(n, converged):
    x0, x, r_min = converged[n]
    assert min_distance(x0) < r_min * 2  # the depot is tight: the separation had work to do
    assert min_distance(x) >= r_min


def test_bumps_receive_agents_in_proportion_to_their_mass(sparse_map, converged):
    _, x, _ = converged[128]
    # assign each agent to the nearest bump centre (in units of that bump's sigma)
    sd = np.sqrt(sparse_map.covs[:, 0, 0])
    d = np.linalg.norm(x[:, None, :] - sparse_map.means[None], axis=2) / sd
    counts = np.bincount(np.argmin(d, axis=1), minlength=len(sd))
    expected = 128 * sparse_map.weights
    assert np.all(counts >= 1)
    # within two agents, or 35 % for the heavy bumps
    assert np.all(np.abs(counts - expected) <= np.maximum(2.0, 0.35 * expected))


def test_uniform_target_has_no_boundary_layer():
    target = sc.Uniform([(0, SIZE), (0, SIZE)])
    n = 128
    h = spacing(n)
    x = cover(target, corner_start(target.box, n, 0.3 * h, seed=0), SPEED, r_min=0.2 * h).x
    to_wall = np.minimum(x, SIZE - x).min(axis=1)
    outer_area = SIZE**2 - (SIZE - 2 * h) ** 2
    outer = np.sum(to_wall < h) / outer_area
    inner = np.sum(to_wall >= h) / (SIZE - 2 * h) ** 2
    assert abs(outer / inner - 1.0) <= 0.2
    # agents that reached a wall slid along it instead of stacking on one point
    on_wall = x[to_wall < 1e-6 * SIZE]
    if len(on_wall) >= 2:
        assert min_distance(on_wall) >= 0.2 * h


@pytest.mark.parametrize("loss", ["random", "east side"])
@pytest.mark.parametrize("n", [32, 128])
def test_survivors_of_a_quarter_lost_recover(n, loss, sparse_map, converged):
    _, x, r_min = converged[n]
    h = spacing(n)
    if loss == "random":
        alive = np.sort(np.random.default_rng(7).choice(n, n - n // 4, replace=False))
    else:  # the easternmost quarter: whole bumps lose every agent they had
        alive = np.sort(np.argsort(x[:, 0])[: n - n // 4])
    survivors = x[alive]
    schedule = CoverageSchedule.annealed(sparse_map, n, SPEED)
    # survivors keep their mass (they do not know how many were lost) and re-anneal from 2 spacings
    healed = cover(
        sparse_map,
        survivors,
        SPEED,
        r_min=r_min,
        mass=1.0 / n,
        schedule=CoverageSchedule.after_losses(sparse_map, n, SPEED),
    ).x
    m = len(alive)
    fresh_start = corner_start(sparse_map.box, m, 0.3 * h, seed=0)
    fresh = cover(
        sparse_map, fresh_start, SPEED, r_min=r_min,
        schedule=CoverageSchedule.annealed(sparse_map, m, SPEED), t_end=2 * schedule.duration,
    ).x  # fmt: skip
    just_after = lloyd_cost(survivors, sparse_map)
    ratio = lloyd_cost(healed, sparse_map) / lloyd_cost(fresh, sparse_map)
    print(f"n={n} {loss}: after loss {just_after / lloyd_cost(fresh, sparse_map):.2f}, healed {ratio:.2f}")
    assert ratio <= 1.25
    assert lloyd_cost(healed, sparse_map) < just_after
    assert min_distance(healed) >= r_min


def test_the_gain_rule_uses_the_speed_limit_far_from_equilibrium(sparse_map):
    n = 128
    h = spacing(n)
    x0 = corner_start(sparse_map.box, n, 0.3 * h, seed=0)
    first = CoverageSchedule.annealed(sparse_map, n, SPEED).stages[0]
    law = sc.BlobLaw(sparse_map, first.eps, 1.0 / n, target_smoothing=first.smoothing)
    ctrl = sc.Controller.for_fleet(law, SPEED, r_min=0.2 * h)
    speed = np.linalg.norm(ctrl.commands(x0), axis=1)
    assert np.median(speed) >= 0.99 * SPEED
    # without the gain the same law crawls: the time scale of the raw law is arbitrary
    raw = np.linalg.norm(sc.Controller(law, speed_limit=SPEED).commands(x0), axis=1)
    assert np.median(raw) < 0.05 * SPEED


def test_demo_map_keeps_the_lake_empty():
    target = sc.GaussianMixture(
        [[2.5, 4.0], [7.0, 4.5], [5.5, 1.5]], [0.6, 0.9, 0.4], [0.3, 0.5, 0.2],
        bounds=[(0, 10), (0, 6)], zones=[sc.Disk((4.5, 3.5), 0.8)],
    )  # fmt: skip
    n = 60
    x0 = np.clip(np.random.default_rng(0).normal([0.6, 0.6], 0.3, (n, 2)), 0, [10, 6])
    x = cover(target, x0, 2.0, r_min=0.2).x
    assert np.all(np.linalg.norm(x - [4.5, 3.5], axis=1) > 0.8)
    assert sc.metrics.energy_distance(x, target) < 0.15
