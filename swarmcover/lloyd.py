r"""Lloyd's algorithm (centroidal Voronoi tessellation): the centralised coverage baseline.

Lloyd's algorithm minimises the locational cost

.. math::

    H(x) = \int_\Omega \min_i |q - x_i|^2\, \bar\rho(q)\, dq

by moving every generator to the :math:`\bar\rho`-centroid of its Voronoi cell, which never
increases :math:`H`. It needs the whole map and every position (a central computer), so it is the
yardstick, not a decentralised law. The integrals use the target's midpoint quadrature
(:meth:`Target.quadrature`), the cells a k-d tree (:class:`scipy.spatial.cKDTree`): this is the
discrete (weighted k-means) form of Lloyd. A generator whose cell holds no target mass stays where it
is. The discrete iteration has exact fixed points once a step moves no cell boundary across a
quadrature point, so it stops within about (quadrature cell)/(spectral gap of the iteration) of the
continuous fixed point; in 1-D with ``n`` generators the gap is about :math:`(\pi/2n)^2`, in 2-D
the boundaries are long and the effect is far smaller.

References
----------
S. P. Lloyd, *Least squares quantization in PCM*, IEEE Trans. Inf. Theory 28 (1982).
J. Cortés, S. Martínez, T. Karataş, F. Bullo, *Coverage control for mobile sensing networks*,
IEEE Trans. Robot. Autom. 20 (2004).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.spatial import cKDTree

from ._checks import as_points, as_positive
from .targets import Target

__all__ = ["LloydResult", "lloyd"]


@dataclass(frozen=True)
class LloydResult:
    """Outcome of :func:`lloyd`.

    Attributes
    ----------
    x : ndarray, shape (n, d)
        Final generators.
    costs : ndarray, shape (k + 1,)
        Locational cost before each iteration and after the last one (non-increasing).
    iterations : int
    converged : bool
        Whether the largest move fell below ``tol``.
    """

    x: np.ndarray
    costs: np.ndarray
    iterations: int
    converged: bool


def lloyd(
    target: Target,
    x0: ArrayLike,
    *,
    max_iter: int = 500,
    tol: float = 1e-4,
    cells: int = 256,
) -> LloydResult:
    r"""Run Lloyd's algorithm on ``target`` from generators ``x0``.

    Parameters
    ----------
    target : Target
    x0 : array_like, shape (n, d)
        Starting positions (projected into the box).
    max_iter : int
        Iteration limit.
    tol : float
        Stop when no generator moves more than ``tol`` times the fleet spacing
        :math:`(|\Omega|/n)^{1/d}`.
    cells : int
        Quadrature cells per axis (the same grid as :func:`swarmcover.metrics.lloyd_cost`).

    Returns
    -------
    LloydResult
    """
    x = target.box.clip(as_points(x0, target.dim, "x0")).copy()
    n, d = x.shape
    if n == 0:
        raise ValueError("lloyd needs at least one generator")
    if int(max_iter) != max_iter or max_iter < 0:
        raise ValueError(f"max_iter must be a non-negative integer, got {max_iter!r}")
    tol = as_positive(tol, "tol") * (target.box.volume / n) ** (1.0 / d)
    q, wq = target.quadrature(cells)
    keep = wq > 0
    q, wq = q[keep], wq[keep]
    costs = []
    converged = False
    it = 0
    for it in range(1, int(max_iter) + 1):  # noqa: B007 - the count is returned
        dist, owner = cKDTree(x).query(q)
        costs.append(float(np.sum(wq * dist**2)))
        mass = np.bincount(owner, weights=wq, minlength=n)
        filled = mass > 0
        centroid = x.copy()
        for a in range(d):
            centroid[filled, a] = np.bincount(owner, weights=wq * q[:, a], minlength=n)[filled] / mass[filled]
        move = float(np.max(np.linalg.norm(centroid - x, axis=1)))
        x = centroid
        if move <= tol:
            converged = True
            break
    dist, _ = cKDTree(x).query(q)
    costs.append(float(np.sum(wq * dist**2)))
    return LloydResult(x=x, costs=np.asarray(costs), iterations=it if max_iter else 0, converged=converged)
