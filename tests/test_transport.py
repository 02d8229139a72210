"""The deployment planner (blob method for dynamic OT) against exact references computed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from geodesics import geodesic_length
from scipy.optimize import linear_sum_assignment

import swarmcover as sc
from swarmcover.domain import Disk, Polygon, Rectangle
from swarmcover.transport import Obstacles, PlanInfeasible, plan
from swarmcover.transport.terminal import BoxUniformTerm, GaussianTerm, PointSetTerm, QuadratureTerm

pytestmark = [pytest.mark.unit, pytest.mark.filterwarnings("ignore:The balance properties")]


def _assignment_cost(a, b, lengths=None):
    cost = ((a[:, None] - b[None]) ** 2).sum(-1) if lengths is None else lengths**2
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean()), c


def _fd_grad(f, x, h=1e-6):
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        up, dn = x.copy(), x.copy()
        up[idx] += h
        dn[idx] -= h
        g[idx] = (f(up) - f(dn)) / (2 * h)
    return g


# -- the terminal term ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("closed", "target"),
    [
        (
            GaussianTerm(np.array([[0.5, 0.4]]), np.array([[[0.02, 0.005], [0.005, 0.01]]]), np.array([1.0])),
            sc.GaussianMixture([[0.5, 0.4]], [[[0.02, 0.005], [0.005, 0.01]]], bounds=[(-1, 2), (-1, 2)]),
        ),
        (BoxUniformTerm(np.array([0.2, 0.1]), np.array([0.7, 0.9])), sc.Uniform([(0.2, 0.7), (0.1, 0.9)])),
    ],
)
def test_closed_forms_match_quadrature_and_their_gradients(closed, target):
    rng = np.random.default_rng(0)
    x, s = rng.random((6, 2)), 0.1
    quad = QuadratureTerm(target, max_cells=512)
    c, g = closed.cross(x, s)
    np.testing.assert_allclose(quad.cross(x, s)[0], c, rtol=5e-3, atol=5e-4)  # cells of s / 2
    assert quad.self_energy(s) == pytest.approx(closed.self_energy(s), rel=5e-3)
    np.testing.assert_allclose(g, _fd_grad(lambda y: closed.cross(y, s)[0].sum(), x), atol=1e-7)


def test_mmd_is_zero_on_the_target_and_positive_off_it():
    rng = np.random.default_rng(1)
    y = rng.random((20, 2))
    term = PointSetTerm(y)
    m = np.full(20, 1 / 20)
    assert term.mmd2(y, m, 0.1) == pytest.approx(0.0, abs=1e-12)
    assert term.mmd2(y + 0.05, m, 0.1) > 1e-3


# -- geometry -----------------------------------------------------------------------------------
ZONES = [
    Disk((0.5, 0.5), 0.2),
    Rectangle((0.1, 0.7), (0.3, 0.9)),
    Polygon(((0.7, 0.1), (0.9, 0.1), (0.8, 0.3))),
    Polygon(
        ((0.05, 0.05), (0.35, 0.05), (0.35, 0.4), (0.3, 0.4), (0.3, 0.1), (0.1, 0.1), (0.1, 0.4), (0.05, 0.4))
    ),
]


def test_segment_clearance_is_exact_against_dense_sampling():
    rng = np.random.default_rng(2)
    obs = Obstacles(ZONES, 2)
    a = rng.random((3000, 2))
    b = a + 0.3 * (rng.random((3000, 2)) - 0.5)
    exact = obs.segment_clearance(a, b)
    sampled = np.full(3000, np.inf)
    for t in np.linspace(0, 1, 2001):
        p = a + t * (b - a)
        sampled = np.minimum(sampled, np.min([z.signed_distance(p) for z in ZONES], axis=0))
    clear = sampled > 0
    assert np.array_equal(exact > 0, clear)
    np.testing.assert_allclose(exact[clear], sampled[clear], atol=2e-4)


def test_obstacle_penalty_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    obs = Obstacles(ZONES, 2)
    nodes = rng.random((6, 4, 2))
    _, g = obs.penalty(nodes, 0.05)
    np.testing.assert_allclose(g, _fd_grad(lambda x: obs.penalty(x, 0.05)[0], nodes, 1e-7), atol=1e-6)


# -- point sets: the exact OT cost ---------------------------------------------------------------
def test_point_sets_reach_the_exact_ot_cost_and_assignment():
    rng = np.random.default_rng(0)
    x0 = rng.random((30, 2))
    y = rng.normal(size=(30, 2)) * 0.1 + [2.0, 1.0]
    ot, _ = _assignment_cost(x0, y)
    p = plan(x0, y, steps=8)
    assert p.paths.shape == (9, 30, 2)
    assert abs(p.cost / ot - 1) < 0.01
    # the assignment read off the end points
    _, cols = _assignment_cost(p.ends, y)
    read = float(((x0 - y[cols]) ** 2).sum(-1).mean())
    assert read / ot - 1 < 0.005
    rms = math.sqrt(float(((p.ends - y[cols]) ** 2).sum(-1).mean()))
    assert rms < 0.05 * PointSetTerm(y).spread
    # straight lines at constant speed: every interior node on the chord, equally spaced
    steps = np.diff(p.paths, axis=0)
    np.testing.assert_allclose(steps, np.broadcast_to(steps[:1], steps.shape), atol=1e-12)


def test_weights_are_a_point_set_with_repeats():
    rng = np.random.default_rng(4)
    x0 = rng.random((20, 2))
    y = rng.random((10, 2)) + np.array([1.5, 0.0])
    weighted = plan(x0, y, weights=np.ones(10), steps=4)
    repeated = plan(x0, np.repeat(y, 2, axis=0), steps=4)
    ot, _ = _assignment_cost(x0, np.repeat(y, 2, axis=0))
    assert weighted.cost == pytest.approx(ot, rel=0.01)
    assert weighted.cost == pytest.approx(repeated.cost, rel=0.005)


def test_annealing_finds_every_target_from_a_cold_start():
    rng = np.random.default_rng(0)
    x0 = rng.random((30, 2))
    y = rng.normal(size=(30, 2)) * 0.1 + [2.0, 1.0]
    spread = PointSetTerm(y).spread

    def rms(p):
        _, cols = _assignment_cost(p.ends, y)
        return math.sqrt(float(((p.ends - y[cols]) ** 2).sum(-1).mean()))

    annealed = plan(x0, y, warm_start="mean", stages=6)
    one_stage = plan(x0, y, warm_start="mean", stages=1)
    assert rms(annealed) < 0.05 * spread
    assert rms(one_stage) > 5 * rms(annealed)  # the published pitfall: a target left unfound


# -- densities ---------------------------------------------------------------------------------
def test_uniform_square_to_gaussian_matches_the_closed_form_w2():
    n, mu, sig = 10, np.array([2.0, 1.5]), 0.15
    g = (np.arange(n) + 0.5) / n
    x0 = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    target = sc.GaussianMixture([mu], [sig**2], bounds=[(-1, 4), (-1, 4)])
    p = plan(x0, target, steps=4)
    # separable: per axis W2^2(U[0,1], N(m, s^2)) = (m - 1/2)^2 + 1/12 + s^2 - s / sqrt(pi)
    w2 = float(np.sum((mu - 0.5) ** 2)) + 2 * (1 / 12 + sig**2 - sig / math.sqrt(math.pi))
    assert abs(p.cost / w2 - 1) < 0.03
    np.testing.assert_allclose(p.ends.std(axis=0), sig, rtol=0.05)


def test_one_d_end_points_converge_to_the_affine_map():
    sizes = (5, 10, 20, 50, 100)
    errors = []
    for n in sizes:
        z = (np.arange(n) + 0.5) / n
        p = plan(z[:, None], sc.Uniform([(3.0, 5.0)]), bounds=[(0.0, 5.0)], steps=2)
        errors.append(math.sqrt(float(np.mean((p.ends[:, 0] - (2 * z + 3)) ** 2))))
    slope = -np.polyfit(np.log(sizes), np.log(errors), 1)[0]
    assert slope >= 0.6, (errors, slope)


# -- obstacles -----------------------------------------------------------------------------------
def _depot_and_target(n=30, seed=3):
    rng = np.random.default_rng(seed)
    return rng.random((n, 2)) * [0.15, 0.3] + [0.0, 0.35], rng.random((n, 2)) * [0.15, 0.3] + [0.85, 0.35]


@pytest.mark.parametrize("clearance", [0.0, 0.01])
def test_two_disks_every_segment_clears_and_cost_matches_geodesic_assignment(clearance):
    x0, y = _depot_and_target()
    disks = [((0.5, 0.36), 0.13), ((0.5, 0.66), 0.13)]
    p = plan(x0, y, obstacles=[Disk(c, r) for c, r in disks], clearance=clearance, steps=16)
    grown = [(c, r + clearance) for c, r in disks]
    lengths = np.array([[geodesic_length(a, b, grown) for b in y] for a in x0])
    ref, _ = _assignment_cost(x0, y, lengths)
    euclid, _ = _assignment_cost(x0, y)
    assert ref > euclid * 1.02  # the disks are in the way
    assert abs(p.cost / ref - 1) < 0.02
    for c, r in disks:  # every point of every segment, sampled independently of the planner
        for t in np.linspace(0, 1, 101):
            pts = (1 - t) * p.paths[:-1] + t * p.paths[1:]
            assert np.linalg.norm(pts - np.asarray(c), axis=2).min() >= r + clearance - 1e-9
    assert p.clearance >= clearance


def test_rectangles_and_polygons_every_segment_clears():
    x0, y = _depot_and_target(20)
    zones = [
        Rectangle((0.45, 0.2), (0.55, 0.45)),
        Polygon(((0.4, 0.52), (0.6, 0.55), (0.5, 0.7))),
    ]
    p = plan(x0, y, obstacles=zones, steps=8)
    for t in np.linspace(0, 1, 201):
        pts = ((1 - t) * p.paths[:-1] + t * p.paths[1:]).reshape(-1, 2)
        for z in zones:
            assert z.signed_distance(pts).min() >= -1e-12
    assert p.clearance >= 0


def test_separation_is_kept_at_every_node():
    # thirty robots squeeze between two disks: without r_min they bunch up in the gap
    gx, gy = np.meshgrid(np.arange(5) * 0.03, 0.38 + np.arange(6) * 0.03, indexing="ij")
    x0 = np.stack([gx.ravel(), gy.ravel()], 1)
    tx, ty = np.meshgrid(0.85 + np.arange(5) * 0.05, 0.37 + np.arange(6) * 0.05, indexing="ij")
    y = np.stack([tx.ravel(), ty.ravel()], 1)
    zones = [Disk((0.5, 0.36), 0.13), Disk((0.5, 0.66), 0.13)]
    free = plan(x0, y, obstacles=zones, steps=16)
    r_min = 0.025
    assert free.separation < r_min
    p = plan(x0, y, obstacles=zones, steps=16, r_min=r_min)
    assert p.separation >= r_min and p.clearance >= 0
    assert p.cost >= free.cost


# -- order 2, time base, hand-offs ----------------------------------------------------------
def test_order_two_rest_to_rest_is_the_cubic():
    p = plan(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]]), order=2, steps=32)
    assert p.cost == pytest.approx(12.0, rel=0.02)  # min ∫|x''|^2 = 12 D^2
    assert p.peak_speed == pytest.approx(1.5, rel=0.02)  # the cubic's peak speed 3D/2
    np.testing.assert_allclose(p.velocities[-1], 0.0, atol=1e-12)


def test_order_two_terminal_velocity():
    rng = np.random.default_rng(0)
    x0, y = rng.random((20, 2)), rng.random((20, 2)) + np.array([2.0, 0.0])
    want = np.array([0.5, -0.2])
    p = plan(x0, y, order=2, steps=24, duration=4.0, v_start=[0.1, 0.0], v_end=want)
    np.testing.assert_allclose(p.velocities[-1], np.broadcast_to(want, (20, 2)), rtol=0.05)
    assert p.duration == 4.0


def test_speed_limit_sets_the_duration():
    rng = np.random.default_rng(5)
    x0, y = rng.random((10, 2)), rng.random((10, 2)) + np.array([3.0, 0.0])
    p = plan(x0, y, speed_limit=0.5, steps=8)
    assert p.peak_speed == pytest.approx(0.5, rel=1e-9)
    np.testing.assert_allclose(p.position(p.duration), p.ends)
    np.testing.assert_allclose(p.position(p.duration / 2), 0.5 * (x0 + p.ends), atol=1e-9)
    with pytest.raises(ValueError, match="too short"):
        plan(x0, y, speed_limit=0.5, duration=1.0, steps=8)


# -- bad input ----------------------------------------------------------------------------------
def test_bad_input_is_a_named_error():
    x0, y = _depot_and_target(5)
    with pytest.raises(ValueError, match=r"start 2 .* inside an obstacle"):
        plan(x0, y, obstacles=[Disk(tuple(x0[2]), 0.01)])
    with pytest.raises(ValueError, match="no reachable mass"):
        plan(x0, y, obstacles=[Rectangle((0.8, 0.3), (1.1, 0.7))])
    with pytest.raises(ValueError, match="non-finite"):
        plan(np.full((3, 2), np.nan), y)
    with pytest.raises(ValueError, match="columns"):
        plan(np.zeros((3, 3)), y)
    with pytest.raises(ValueError, match="order"):
        plan(x0, y, order=3)
    with pytest.raises(ValueError, match="duration"):
        plan(x0, y, order=2, v_end=[1.0, 0.0])
    with pytest.raises(ValueError, match="outside the domain"):
        plan(x0 + 5.0, sc.Uniform([(0, 1), (0, 1)]))
    with pytest.raises(ValueError, match="cannot reach"):
        walled = [
            Rectangle((-0.1, 0.3), (0.2, 0.32)),
            Rectangle((-0.1, 0.7), (0.2, 0.72)),
            Rectangle((0.2, 0.3), (0.22, 0.72)),
        ]
        plan(x0, y, obstacles=walled, bounds=[(-0.1, 1.2), (0.0, 1.0)])
    assert issubclass(PlanInfeasible, RuntimeError)
