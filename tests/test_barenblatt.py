"""Particles against the exact Barenblatt solution of rho_t = (1/c) div(rho grad rho).

Uniform target c on a large box (walls far away): with tau = t / c the density solves
u_tau = div(u grad u), whose unit-mass self-similar solution is known in closed form.
Particles start on the exact profile's quantiles at tau0 and are compared with its quantiles at tau1.
"""

import math

import numpy as np
import pytest
from scipy.optimize import brentq

from swarmcover import BlobLaw, Uniform, flow

pytestmark = pytest.mark.unit

GOLDEN = math.pi * (3 - math.sqrt(5))


def _quantiles_1d(tau, mass):
    c = (3 / (4 * math.sqrt(6))) ** (2 / 3)
    r = math.sqrt(6 * c) * tau ** (1 / 3)

    def cdf(x):
        return tau ** (-1 / 3) * (c * (x + r) - (x**3 + r**3) * tau ** (-2 / 3) / 18)

    return np.array([brentq(lambda x, m=m: cdf(x) - m, -r, r, xtol=1e-14) for m in mass]), r


def _radial_quantiles_2d(tau, mass):
    """u = s^(-1/2) (C - |x|^2 s^(-1/2) / 16)_+ with s = tau / 2 and C = 1 / sqrt(8 pi)."""
    s, c = tau / 2, 1 / math.sqrt(8 * math.pi)
    a, b = math.pi / (32 * s), math.pi * c / math.sqrt(s)  # mass(r) = b r^2 - a r^4
    q = (b - np.sqrt(b * b - 4 * a * mass)) / (2 * a)
    return np.sqrt(q), math.sqrt(16 * c) * s**0.25


def test_mass_formulas_are_normalised():
    x, r = _quantiles_1d(0.3, np.array([0.0, 1.0]))
    assert np.allclose(x, [-r, r])
    rad, r2 = _radial_quantiles_2d(0.7, np.array([1.0]))
    assert np.isclose(rad[0], r2)


def test_barenblatt_1d_error_shrinks_with_n():
    half = 4.0
    c = 1 / (2 * half)
    tau0, tau1 = 0.1, 1.0
    errors = []
    for n in (50, 100, 200):
        mass = (np.arange(n) + 0.5) / n
        x0, r0 = _quantiles_1d(tau0, mass)
        x1, r1 = _quantiles_1d(tau1, mass)
        law = BlobLaw(Uniform([(-half, half)]), 2 * (2 * r0 / n), 1 / n)
        res = flow(law, x0[:, None], c * (tau1 - tau0), rtol=1e-4)
        assert res.completed
        errors.append(np.mean(np.abs(np.sort(res.x[:, 0]) - x1)) / r1)
    assert errors[0] < 3e-3
    assert errors[1] < errors[0] / 2 and errors[2] < errors[1], errors


def test_barenblatt_2d_error_shrinks_with_n():
    half = 3.0
    c = 1 / (2 * half) ** 2
    tau0, tau1 = 0.5, 2.0
    errors = []
    for n in (100, 200, 400):
        mass = (np.arange(n) + 0.5) / n
        r0, big_r0 = _radial_quantiles_2d(tau0, mass)
        r1, big_r1 = _radial_quantiles_2d(tau1, mass)
        theta = np.arange(n) * GOLDEN  # a sunflower: radii on the exact radial quantiles
        x0 = np.stack([r0 * np.cos(theta), r0 * np.sin(theta)], 1)
        eps = 2 * math.sqrt(math.pi * big_r0**2 / n)
        law = BlobLaw(Uniform([(-half, half), (-half, half)]), eps, 1 / n)
        res = flow(law, x0, c * (tau1 - tau0))
        assert res.completed
        radii = np.sort(np.linalg.norm(res.x, axis=1))
        errors.append(np.mean(np.abs(radii - r1)) / big_r1)
    assert errors[2] < 0.025
    assert errors[1] < 0.7 * errors[0] and errors[2] < 0.7 * errors[1], errors
