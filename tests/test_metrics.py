"""Coverage metrics: exact cases and cross-checks."""

import numpy as np
import pytest

from swarmcover import BlobLaw, GaussianMixture, Uniform, sample
from swarmcover.metrics import agent_density, blob_energy, energy_distance, kde_divergence, lloyd_cost

pytestmark = pytest.mark.unit


def test_lloyd_cost_of_one_agent_at_the_centre():
    """H = ∫ |q - c|^2 dq over the unit square = 1/6."""
    assert lloyd_cost([[0.5, 0.5]], Uniform([(0, 1), (0, 1)]), cells=512) == pytest.approx(1 / 6, rel=1e-4)


def test_lloyd_cost_of_a_regular_grid():
    """k x k agents at cell centres: H = k^2 * (cell^4 / 6) / cell^2 summed = 1 / (6 k^2)."""
    k = 4
    c = (np.arange(k) + 0.5) / k
    x = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    assert lloyd_cost(x, Uniform([(0, 1), (0, 1)]), cells=512) == pytest.approx(1 / (6 * k * k), rel=1e-3)


def test_energy_distance_is_zero_on_the_target_and_positive_off_it():
    t = Uniform([(0, 1), (0, 1)])
    q, w = t.quadrature(64)
    assert energy_distance(q, t, mass=w, cells=64) < 1e-6
    assert energy_distance([[0.1, 0.1]] * 5, t) > 0.3


def test_kde_divergence_improves_as_the_sampler_refines():
    t = GaussianMixture([[0.3, 0.5], [0.7, 0.5]], [0.02, 0.02], bounds=[(0, 1), (0, 1)])
    x = sample(t, 200).points
    good = kde_divergence(x, t, bandwidth=0.05)
    bad = kde_divergence(np.random.default_rng(0).random((200, 2)), t, bandwidth=0.05)
    assert good.l1 < 0.5 * bad.l1 and good.kl < bad.kl


def test_agent_density_integrates_to_one_with_walls():
    t = Uniform([(0, 1), (0, 1)])
    x = np.array([[0.01, 0.01], [0.99, 0.5]])
    _, dens = agent_density(x, t, 0.05, cells=200)
    assert dens.sum() / 200**2 == pytest.approx(1.0, rel=1e-6)


def test_blob_energy_of_uniform_fleet_is_near_half():
    """E = 1/2 ∫ rho^2 / rhobar = 1/2 when rho = rhobar = 1 (evenly spread, reflecting walls)."""
    k = 20
    c = (np.arange(k) + 0.5) / k
    x = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    law = BlobLaw(Uniform([(0, 1), (0, 1)]), 0.1, 1 / k**2)
    assert blob_energy(law, x) == pytest.approx(0.5, rel=1e-3)
