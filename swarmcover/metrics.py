r"""Coverage metrics: how well a fleet's positions represent the target :math:`\bar\rho`.

All integrals over the target use the midpoint rule on a cell-centred grid of the box
(:meth:`Target.quadrature`), so they are exact up to grid resolution, deterministic and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from ._checks import as_masses, as_points, as_positive
from .law import BlobLaw
from .targets import Target

__all__ = [
    "KdeDivergence",
    "agent_density",
    "blob_energy",
    "energy_distance",
    "kde_divergence",
    "lloyd_cost",
    "underserved_mask",
    "underserved_mass",
]

_CHUNK = 1 << 22  # elements of a pairwise-distance block


def blob_energy(law: BlobLaw, x: ArrayLike, mass: ArrayLike | None = None) -> float:
    r"""The regularised energy :math:`E_\varepsilon = \frac12\int(\phi_\varepsilon*\rho)^2/\bar\rho`
    of agents ``x (n, d)`` under ``law`` (closed form, the law's truncation and walls).
    It is a Lyapunov function of :func:`swarmcover.flow`."""
    return law.energy(x, mass=mass)


def lloyd_cost(x: ArrayLike, target: Target, cells: int = 256) -> float:
    r"""Lloyd's locational cost :math:`H = \int \min_i |q - x_i|^2\, \bar\rho(q)\,dq`.

    Parameters
    ----------
    x : array_like, shape (n, d)
    target : Target
    cells : int
        Quadrature cells per axis.
    """
    x = as_points(x, target.dim)
    if x.shape[0] == 0:
        raise ValueError("lloyd_cost needs at least one agent")
    q, wq = target.quadrature(cells)
    keep = wq > 0
    dist, _ = cKDTree(x).query(q[keep])
    return float(np.sum(wq[keep] * dist**2))


def underserved_mask(points: ArrayLike, pdf: ArrayLike, x: ArrayLike) -> np.ndarray:
    r"""Which ``points (m, d)`` are under-served by robots at ``x (n, d)``: demand farther from
    every robot than the spacing the target asks for there,

    .. math::
        U = \{\, q : \bar\rho(q) > 0,\ \min_i |q - x_i| > h(q) \,\},
        \qquad h(q) = \bigl(n\,\bar\rho(q)\bigr)^{-1/d},

    where ``pdf (m,)`` is the normalised target density :math:`\bar\rho` at the points. A fleet
    in proportion to :math:`\bar\rho` holds one robot per :math:`1/(n\bar\rho)` of volume, so
    its robots are about :math:`h/2` from any demand; a bump with no robot stands out at once,
    and demand-free ground never counts. Returns a boolean mask ``(m,)`` (all of the demand when
    there is no robot).
    """
    q = np.asarray(points, dtype=np.float64)
    rho = np.asarray(pdf, dtype=np.float64).reshape(-1)
    if q.ndim != 2 or q.shape[0] != rho.shape[0]:
        raise ValueError(f"points (m, d) and pdf (m,) must agree, got {q.shape} and {rho.shape}")
    demand = rho > 0
    xs = np.asarray(x, dtype=np.float64).reshape(-1, q.shape[1])
    if xs.shape[0] == 0:
        return demand
    out = np.zeros(q.shape[0], dtype=bool)
    idx = np.flatnonzero(demand)
    if len(idx):
        dist, _ = cKDTree(xs).query(q[idx])
        h = (xs.shape[0] * rho[idx]) ** (-1.0 / q.shape[1])
        out[idx] = dist > h
    return out


def underserved_mass(x: ArrayLike, target: Target, cells: int = 128) -> float:
    r"""The fraction of the target's mass that is under-served by robots at ``x (n, d)`` (see
    :func:`underserved_mask`), by the midpoint rule on ``cells`` per axis; in ``[0, 1]``."""
    x = as_points(x, target.dim)
    q, wq = target.quadrature(cells)
    vol = float(np.prod(target.box.size)) / cells**target.dim
    mask = underserved_mask(q, wq / vol, x)
    total = float(wq.sum())
    return float(wq[mask].sum() / total) if total > 0 else 0.0


def _mean_distance(a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray) -> float:
    """:math:`\\sum_{ij} w^a_i w^b_j |a_i - b_j|` in blocks."""
    total = 0.0
    rows = max(1, _CHUNK // max(1, b.shape[0]))
    for s in range(0, a.shape[0], rows):
        blk = a[s : s + rows]
        d = np.sqrt(np.maximum(
            np.einsum("ij,ij->i", blk, blk)[:, None] + np.einsum("ij,ij->i", b, b)[None]
            - 2.0 * blk @ b.T, 0.0))  # fmt: skip
        total += float(wa[s : s + rows] @ d @ wb)
    return total


def energy_distance(x: ArrayLike, target: Target, mass: ArrayLike | None = None, cells: int = 64) -> float:
    r"""Energy distance (an MMD with the kernel :math:`-|x-y|`) between the agents and the target:

    .. math::

        D^2 = 2\,\mathbb E|X - Y| - \mathbb E|X - X'| - \mathbb E|Y - Y'|,
        \qquad X \sim \textstyle\sum_i m_i\delta_{x_i},\ Y \sim \bar\rho.

    Returns :math:`D` (same units as positions; 0 iff the distributions agree).

    Parameters
    ----------
    x : array_like, shape (n, d)
    target : Target
    mass : float or array_like, shape (n,), optional
        Agent masses, normalised to sum 1 (default equal).
    cells : int
        Quadrature cells per axis for :math:`\bar\rho`.
    """
    x = as_points(x, target.dim)
    n = x.shape[0]
    if n == 0:
        raise ValueError("energy_distance needs at least one agent")
    m = np.full(n, 1.0 / n) if mass is None else as_masses(mass, n)
    m = m / m.sum()
    q, wq = target.quadrature(cells)
    keep = wq > 0
    q, wq = q[keep], wq[keep]
    key = ("energy_distance_self", cells)
    cache = target.metric_cache
    if key not in cache:
        cache[key] = _mean_distance(q, wq, q, wq)
    d2 = 2 * _mean_distance(x, m, q, wq) - _mean_distance(x, m, x, m) - cache[key]
    return float(np.sqrt(max(d2, 0.0)))


def agent_density(
    x: ArrayLike,
    target: Target,
    bandwidth: float,
    mass: ArrayLike | None = None,
    cells: int = 128,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gaussian kernel density estimate of the fleet on the quadrature grid, reflected at walls.

    Returns
    -------
    points : ndarray, shape (M, d)
        Grid cell centres.
    density : ndarray, shape (M,)
        :math:`\sum_i m_i \sum_{\text{images}} \phi_b(q - x_i)`; integrates to 1 over the box.
    """
    b = as_positive(bandwidth, "bandwidth")
    x = as_points(x, target.dim)
    n = x.shape[0]
    if n == 0:
        raise ValueError("agent_density needs at least one agent")
    m = np.full(n, 1.0 / n) if mass is None else as_masses(mass, n)
    m = m / m.sum()
    axes, _ = target.box.grid(cells)
    q = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, target.dim)
    g, owner = target.box.images(x, 6.0 * b)
    src = np.concatenate([x, g])
    msrc = np.concatenate([m, m[owner]])
    dens = np.zeros(q.shape[0])
    tree = cKDTree(src)
    norm = (2.0 * np.pi * b * b) ** (-target.dim / 2)
    rows = max(1, _CHUNK // max(1, src.shape[0]))
    for s in range(0, q.shape[0], rows):
        blk = q[s : s + rows]
        sdm = cKDTree(blk).sparse_distance_matrix(tree, 6.0 * b, output_type="ndarray")
        contrib = msrc[sdm["j"]] * norm * np.exp(-0.5 * (sdm["v"] / b) ** 2)
        dens[s : s + rows] = np.bincount(sdm["i"], weights=contrib, minlength=blk.shape[0])
    return q, dens


@dataclass(frozen=True)
class KdeDivergence:
    """L1 distance and KL divergence between the fleet's KDE and the target.

    Attributes
    ----------
    l1 : float
        :math:`\\int |\\hat\\rho - \\bar\\rho|` (0 to 2).
    kl : float
        :math:`\\int \\hat\\rho\\log(\\hat\\rho/\\bar\\rho)` with :math:`\\bar\\rho` floored.
    bandwidth : float
    """

    l1: float
    kl: float
    bandwidth: float


def kde_divergence(
    x: ArrayLike,
    target: Target,
    bandwidth: float | None = None,
    mass: ArrayLike | None = None,
    cells: int = 128,
) -> KdeDivergence:
    r"""KDE-based L1 and KL divergences between the agents and the target, as in the papers.

    Parameters
    ----------
    x : array_like, shape (n, d)
    target : Target
    bandwidth : float, optional
        Kernel standard deviation (default: the fleet spacing :math:`(|\Omega|/n)^{1/d}`).
    mass : float or array_like, shape (n,), optional
    cells : int
        Grid cells per axis.
    """
    x = as_points(x, target.dim)
    n = x.shape[0]
    if bandwidth is None:
        bandwidth = (target.box.volume / max(n, 1)) ** (1.0 / target.dim)
    q, dens = agent_density(x, target, bandwidth, mass, cells)
    _, cell = target.box.grid(cells)
    ref = target.pdf(q)
    ref = ref / (ref.sum() * cell)
    l1 = float(np.sum(np.abs(dens - ref)) * cell)
    floored = np.maximum(ref, target.floor_density)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(dens > 0, dens * np.log(dens / floored), 0.0)
    return KdeDivergence(l1=l1, kl=float(np.sum(terms) * cell), bandwidth=float(bandwidth))
