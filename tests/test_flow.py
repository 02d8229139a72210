"""Properties of the time integration: the blob energy is a Lyapunov function, walls, speed limits."""

import numpy as np
import pytest

from swarmcover import BlobLaw, GaussianMixture, Uniform, flow
from swarmcover.metrics import kde_divergence

pytestmark = pytest.mark.unit


def _target():
    return GaussianMixture([[0.3, 0.3], [0.7, 0.6]], [0.01, 0.02], [0.4, 0.6], bounds=[(0, 1), (0, 1)])


@pytest.mark.parametrize("speed_limit", [None, 0.3])
def test_blob_energy_never_increases(speed_limit, rng):
    n = 80
    law = BlobLaw(_target(), 0.1, 1 / n)
    res = flow(law, rng.random((n, 2)), 0.5, speed_limit=speed_limit)
    e = res.energies
    assert res.completed and len(e) > 20
    rises = np.diff(e)
    assert np.all(rises <= 1e-9 * e[0]), rises.max()
    assert e[-1] < 0.5 * e[0]
    assert law.energy(res.x) <= e[-1] * (1 + 1e-9)


def test_speed_limit_is_respected_and_agents_stay_inside(rng):
    n = 50
    law = BlobLaw(_target(), 0.1, 1 / n)
    x0 = rng.random((n, 2)) * 0.1  # a depot in the corner
    limit = 0.2
    res = flow(law, x0, 1.0, t_eval=np.linspace(0, 1, 21), speed_limit=limit)
    steps = np.linalg.norm(np.diff(res.trajectory, axis=0), axis=2)
    assert steps.max() <= limit * 0.05 * (1 + 1e-9)
    assert np.all((res.trajectory >= 0) & (res.trajectory <= 1))
    assert np.allclose(res.times, np.linspace(0, 1, 21))


def test_stiff_target_stays_stable(rng):
    """A sharply peaked target with a tiny floor (initial speeds ~2e7): no agent is flung out (the
    notes saw |x| ~ 20 with a fixed step), the energy falls and most agents reach the peak."""
    target = GaussianMixture([[0.5]], [1e-4], bounds=[(-1, 1)], floor=1e-6)
    n = 100
    law = BlobLaw(target, 0.02, 1 / n, boundary="free")
    # by t = 2e-5 the fleet is at rest on the peak (the energy is that of t = 1e-4 to 1e-10)
    res = flow(law, np.linspace(-0.9, 0.9, n)[:, None], 2e-5, max_steps=40_000)
    assert res.completed
    assert np.all(np.isfinite(res.x)) and np.all(np.abs(res.x) <= 1)
    assert res.energies[-1] < 0.2 * res.energies[0]
    assert np.mean(np.abs(res.x[:, 0] - 0.5) < 0.05) > 0.6


def test_first_order_convergence_in_n():
    """1-D, target uniform on [-0.5, 0.5] (floor outside: the literal law), start iid uniform.

    The L1 error of the final configuration's KDE halves when n doubles, as in the paper. (With
    reflecting walls the O(1/n) boundary layer disappears and the error is at the KDE's resolution.)
    """
    errors = []
    for n in (25, 50, 100, 200):
        x0 = np.sort(np.random.default_rng(0).uniform(-0.5, 0.5, n))[:, None]
        target = Uniform([(-0.5, 0.5)])
        eps = 2.0 / n
        law = BlobLaw(target, eps, 1 / n, boundary="free")
        res = flow(law, x0, 1.0)
        errors.append(kde_divergence(res.x, target, bandwidth=eps, cells=4000).l1)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.5)), (errors, ratios)


def test_flow_records_and_validates(rng):
    law = BlobLaw(Uniform([(0, 1)]), 0.1, 0.1)
    x0 = rng.random((10, 1))
    res = flow(law, x0, 0.0)
    assert res.completed and res.n_steps == 0 and np.array_equal(res.x, x0)
    with pytest.raises(ValueError, match="t_end"):
        flow(law, x0, -1.0)
    with pytest.raises(ValueError, match="t_eval"):
        flow(law, x0, 1.0, t_eval=[0.5, 2.0])
    with pytest.raises(ValueError, match="speed_limit"):
        flow(law, x0, 1.0, speed_limit=-1)
    res = flow(law, x0, 1.0, max_steps=3)
    assert not res.completed and res.n_steps == 3
