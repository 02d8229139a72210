"""The closed-form law against brute-force quadrature of its defining integral.

    v_i = - sum_j m_j ∫ grad phi_eps(x_i - y) phi_eps(y - x_j) w(y) dy,   w = 1 / rhobar

(with the mirror-image kernel for reflecting walls).
"""

import math

import numpy as np
import pytest

from swarmcover import BlobLaw, GaussianMixture

pytestmark = pytest.mark.unit


def _phi(z: np.ndarray, eps: float) -> np.ndarray:
    d = z.shape[-1]
    return np.exp(-np.sum(z * z, -1) / (2 * eps**2)) / (2 * math.pi * eps**2) ** (d / 2)


def _brute_force(x, m, eps, w, y, cell, images=lambda p: [(p, 1.0)]):
    """-sum_j m_j ∫ grad_x K(x_i, y) K(y, x_j) w(y) dy with K the (image-summed) Gaussian."""
    rho = np.zeros(len(y))
    for xj, mj in zip(x, m, strict=True):
        for img, _ in images(xj):
            rho += mj * _phi(y - img, eps)
    out = []
    for xi in x:
        grad = np.zeros_like(y)
        for img, sign in images(xi):
            z = img - y
            # d/dx_i of phi(image(x_i) - y): -1 for a reflection, +1 for a translation
            grad += sign * (-z / eps**2) * _phi(z, eps)[:, None]
        out.append(-(grad * (rho * w)[:, None]).sum(0) * cell)
    return np.array(out)


def _smooth_mixture(bounds, d):
    means = [[-0.3, 0.1][:d], [0.4, -0.2][:d]]
    return GaussianMixture(means, [0.3, 0.5], [0.4, 0.6], bounds=bounds, floor=1e-9)


@pytest.mark.parametrize("d", [1, 2])
def test_closed_form_matches_quadrature_free_space(d, rng):
    bounds = [(-2.5, 2.5)] * d
    target = _smooth_mixture(bounds, d)
    n, eps = 12, 0.15
    x = rng.uniform(-0.4, 0.4, (n, d))
    m = rng.uniform(0.5, 1.5, n)
    m /= m.sum()
    # cutoff 12: truncation weight exp(-72), so the closed form is the untruncated sum
    law = BlobLaw(target, eps, m, cutoff=12.0, oversample=24.0)
    v = law.velocities(x, method="pairwise")
    h = 0.004 if d == 2 else 0.0005
    ax = np.arange(-1.6, 1.6, h) + h / 2
    y = np.stack(np.meshgrid(*[ax] * d, indexing="ij"), -1).reshape(-1, d)
    ref = _brute_force(x, m, eps, target.reciprocal(y), y, h**d)
    rel = np.abs(v - ref).max() / np.abs(ref).max()
    assert rel < 1e-6, rel


def test_closed_form_matches_quadrature_with_reflecting_walls(rng):
    """1-D, agents within a few eps of both walls: the method of images is the Neumann kernel.

    The evenly extended 1/rhobar has a kink at each wall, so the W grid is second-order there
    (error 8e-5 at oversample 12, 1.3e-6 at 96); oversample 160 reaches the 1e-6 bound."""
    target = GaussianMixture([[0.3], [0.8]], [0.05, 0.08], [0.5, 0.5], bounds=[(0.0, 1.0)], floor=1e-9)
    n, eps = 10, 0.05
    x = np.sort(np.concatenate([rng.uniform(0.0, 0.1, 4), rng.uniform(0.9, 1.0, 4), [0.45, 0.55]]))[:, None]
    m = np.full(n, 1.0 / n)
    law = BlobLaw(target, eps, m, cutoff=12.0, oversample=160.0)
    v = law.velocities(x, method="pairwise")

    def images(p):  # enough mirror images for eps = 0.05 on [0, 1], with d(image)/dp
        return [(p, 1), (-p, -1), (2.0 - p, -1), (p + 2.0, 1), (p - 2.0, 1), (-2.0 - p, -1), (4.0 - p, -1)]

    h = 1e-5
    y = (np.arange(0.0, 1.0, h) + h / 2)[:, None]  # integrate over the box only
    ref = _brute_force(x, m, eps, target.reciprocal(y), y, h, images)
    rel = np.abs(v - ref).max() / np.abs(ref).max()
    assert rel < 1e-6, rel


def test_uniform_target_reduces_to_pure_repulsion(rng):
    """rhobar = c: v_i = -(1/c) sum_j m_j grad phi_{sqrt2 eps}(x_i - x_j) (no walls in reach)."""
    from swarmcover import Uniform

    target = Uniform([(-3, 3), (-3, 3)])
    c = 1 / 36
    x = rng.uniform(-0.5, 0.5, (30, 2))
    eps = 0.1
    law = BlobLaw(target, eps, 1 / 30, cutoff=12.0)
    v = law.velocities(x, method="pairwise")
    z = x[:, None, :] - x[None, :, :]
    g = _phi(z, math.sqrt(2) * eps)
    ref = (1 / c) * np.sum((1 / 30) * g[..., None] * z / (2 * eps**2), axis=1)
    assert np.abs(v - ref).max() / np.abs(ref).max() < 1e-9
