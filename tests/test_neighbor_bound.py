"""Issue 22, item 2: one neighbour's contribution to an agent's velocity has an explicit bound
(:func:`swarmcover.local.neighbor_bound`), it holds wherever the neighbour stands (and for each of
its mirror images), it is not vacuous, and the command chain does not enlarge it."""

import numpy as np
import pytest

from swarmcover import BlobLaw, GaussianMixture
from swarmcover.control import compose
from swarmcover.domain import Box
from swarmcover.local import c_kernel_available, local_velocity, near_images, neighbor_bound

pytestmark = pytest.mark.unit

BOUNDS = [(0.0, 1.0), (0.0, 1.0)]
EPS, MASS, CUTOFF = 0.05, 1.0 / 40, 4.0


def _field():
    target = GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.02, 0.04], [0.4, 0.6], bounds=BOUNDS)
    f = BlobLaw(target, EPS, MASS).field
    return f.coef, f.origin, f.spacing


def _kernels():
    return ["numpy", "c"] if c_kernel_available() else ["numpy"]


def _v(x, nb, m, field, box, kernel):
    coef, origin, spacing = field
    return local_velocity(x, nb, MASS, m, eps=EPS, cutoff=CUTOFF, coef=coef, origin=origin, spacing=spacing,
                          box=box, kernel=kernel)  # fmt: skip


@pytest.mark.parametrize("kernel", _kernels())
def test_one_neighbour_moves_the_law_by_at_most_the_bound_and_the_bound_is_reached(kernel, rng):
    """Away from the walls: adding one neighbour of mass <= m anywhere (mostly near the distance
    that maximises the kernel's slope, where a liar does most) changes the velocity by at most
    B(m); the largest change seen is a sizeable part of B (the bound is not vacuous)."""
    field = _field()
    radius = CUTOFF * np.sqrt(2.0) * EPS
    worst = 0.0
    for _ in range(400):
        x = rng.uniform(0.3, 0.7, 2)
        bound = neighbor_bound(MASS, EPS, *field, center=x, half_width=0.5 * radius)
        assert bound <= neighbor_bound(MASS, EPS, field[0])  # the local bound within the global one
        nb = x + rng.normal(0.0, 0.6 * radius, (int(rng.integers(0, 12)), 2))
        m = np.full(len(nb), MASS)
        base = _v(x, nb, m, field, None, kernel)
        r = np.sqrt(2.0) * EPS * rng.uniform(0.0, 2.5)
        angle = rng.uniform(0.0, 2.0 * np.pi)
        liar = x + r * np.array([np.cos(angle), np.sin(angle)])
        mass = MASS * rng.uniform(0.1, 1.0)
        moved = _v(x, np.vstack([nb, liar]), np.append(m, mass), field, None, kernel)
        change = float(np.linalg.norm(moved - base))
        assert change <= bound * mass / MASS * (1 + 1e-9)
        worst = max(worst, change / bound)
    assert worst > 0.25, worst  # 0.34 seen: the bound is within a factor of three of what a liar can do


@pytest.mark.parametrize("kernel", _kernels())
def test_near_walls_each_mirror_image_adds_at_most_one_bound(kernel, rng):
    """Near a corner a neighbour also acts through its mirror images: the change is at most
    (1 + images within the radius) B(m)."""
    field = _field()
    box = Box(BOUNDS)
    radius = CUTOFF * np.sqrt(2.0) * EPS
    for _ in range(300):
        x = rng.uniform(0.0, 0.2, 2)
        liar = np.clip(x + rng.normal(0.0, 0.5 * radius, 2), 0.0, 1.0)
        base = _v(x, np.empty((0, 2)), np.empty(0), field, box, kernel)
        moved = _v(x, liar[None], np.array([MASS]), field, box, kernel)
        inside = float(np.linalg.norm(liar - x)) < radius
        images = len(near_images(liar[None], x, radius, box.lo, box.hi)[0])
        bound = (int(inside) + images) * neighbor_bound(MASS, EPS, field[0])
        assert np.linalg.norm(moved - base) <= bound * (1 + 1e-9)


def test_the_command_chain_moves_no_command_farther_than_gain_times_the_law(rng):
    """Gain then saturation (then the barrier and the drift, then saturation again) is
    ``gain``-Lipschitz in the law's velocity: a neighbour's bound carries to the command."""
    for _ in range(2000):
        gain, limit = rng.uniform(0.1, 5.0), rng.uniform(0.1, 2.0)
        v1, v2, push, drift = (rng.normal(0.0, 1.0, 2) for _ in range(4))
        u1 = compose(v1, gain, limit, push, drift)
        u2 = compose(v2, gain, limit, push, drift)
        assert np.linalg.norm(u1 - u2) <= gain * np.linalg.norm(v1 - v2) * (1 + 1e-12) + 1e-15
        assert np.linalg.norm(u1 - u2) <= 2.0 * limit * (1 + 1e-12)
