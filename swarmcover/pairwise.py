r"""The blob law summed over neighbour pairs: a k-d tree finds every pair within the law's radius
(and every agent's pairs with the mirror images of the others, for reflecting walls), and the
closed form of :mod:`swarmcover.law` is summed over them by :func:`swarmcover._kernels.accumulate_pairs`.

For a pair :math:`(i, j)` at distance below :math:`r` the kernel adds
:math:`m_j\,\phi_{\sqrt2\varepsilon}(x_i - x_j)\big[\frac{x_i - x_j}{2\varepsilon^2}W(m_{ij})
- \frac12\nabla W(m_{ij})\big]` to :math:`\dot x_i` (and the mirror term to :math:`\dot x_j` for a
pair of agents), with :math:`\phi_{\sqrt2\varepsilon}(z) = (4\pi\varepsilon^2)^{-d/2}
e^{-|z|^2/4\varepsilon^2}`; the energy adds :math:`m_i m_j\phi_{\sqrt2\varepsilon}(x_i - x_j)
W(m_{ij})`, halved over the full double sum.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import numpy as np
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from .law import BlobLaw

__all__ = ["NUMPY_PAIRS", "PairwiseEvaluator", "accumulate_pairs_numpy", "choose_method"]

#: pair lists up to this long are summed with numpy while numba is not loaded in the process: a
#: launcher's metrics of a small fleet then never pay numba's import (about a second of CPU)
NUMPY_PAIRS = 20_000


class PairwiseEvaluator:
    """The pairwise sums bound to one law (its constants and :math:`W` grid).

    Parameters
    ----------
    law : BlobLaw
    """

    def __init__(self, law: BlobLaw) -> None:
        self.law = law
        eps, d = law.eps, law.dim
        self._norm = (4.0 * math.pi * eps**2) ** (-d / 2.0)
        self._inv4e2 = 1.0 / (4.0 * eps**2)
        self._inv2e2 = 1.0 / (2.0 * eps**2)

    def evaluate(self, X: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, float]:
        """Velocities ``(n, d)`` and the blob energy of agents ``X`` ``(n, d)`` with masses ``m`` ``(n,)``."""
        n, d = X.shape
        if n == 0:
            return np.zeros((n, d)), 0.0
        # visit agents in spatial order (cells of the cutoff radius) so that pair midpoints walk the
        # W grid coherently: the pair kernel is bound by memory, not arithmetic
        cell = np.floor((X - self.law.target.box.lo) / self.law.radius).astype(np.int64)
        order = np.lexsort(cell.T[::-1])
        vel_sorted, energy = self._sorted(np.ascontiguousarray(X[order]), np.ascontiguousarray(m[order]))
        vel = np.empty_like(vel_sorted)
        vel[order] = vel_sorted
        return vel, energy

    def _sorted(self, X: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, float]:
        n, d = X.shape
        r = self.law.radius
        vel = np.zeros((n, d))
        tree = cKDTree(X)
        pairs = tree.query_pairs(r, output_type="ndarray")
        idx = np.arange(n, dtype=np.int64)
        energy = self._accumulate(X, m, X, m, idx, idx, False, vel)
        if len(pairs):
            energy += self._accumulate(X, m, X, m, pairs[:, 0], pairs[:, 1], True, vel)
        if self.law.boundary == "reflect":  # the mirror images across the walls within the radius
            g, owner = self.law.target.box.images(X, r)
        else:
            g, owner = np.empty((0, d)), np.empty(0, dtype=np.int64)
        if len(g):
            sdm = tree.sparse_distance_matrix(cKDTree(g), r, output_type="ndarray")
            if len(sdm):
                mg = np.ascontiguousarray(m[owner])
                energy += self._accumulate(X, m, np.ascontiguousarray(g), mg, sdm["i"], sdm["j"], False, vel)
        return vel, energy

    def _accumulate(self, xt, mt, xs, ms, pi, pj, symmetric, vel) -> float:
        f = self.law.field
        consts = (symmetric, self._norm, self._inv4e2, self._inv2e2, f.coef, f.origin)
        if len(pi) <= NUMPY_PAIRS and "numba" not in sys.modules:  # the numpy twin: same sums
            return accumulate_pairs_numpy(xt, mt, xs, ms, pi, pj, *consts, f.spacing, vel)
        from ._kernels import accumulate_pairs  # numba loads on first use, not on import

        pi, pj = np.ascontiguousarray(pi, dtype=np.int64), np.ascontiguousarray(pj, dtype=np.int64)
        return float(accumulate_pairs(xt, mt, xs, ms, pi, pj, *consts, 1.0 / f.spacing, vel))


def accumulate_pairs_numpy(xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, spacing,
                           vel) -> float:  # fmt: skip
    r"""The numpy twin of :func:`swarmcover._kernels.accumulate_pairs` (one vectorised pass over
    the pairs; ``spacing`` where the compiled kernel takes its inverse): adds each pair's term
    into ``vel`` and returns the pairs' blob energy.

    Parameters
    ----------
    xt : ndarray, shape (nt, d)
    mt : ndarray, shape (nt,)
    xs : ndarray, shape (ns, d)
    ms : ndarray, shape (ns,)
    pi, pj : ndarray, shape (p,)
        Pair ``k`` is target ``pi[k]`` and source ``pj[k]``.
    symmetric : bool
        Each pair is unordered and both ends are updated (then ``xs is xt``).
    norm, inv4e2, inv2e2 : float
        :math:`(4\pi\varepsilon^2)^{-d/2}`, :math:`1/4\varepsilon^2`, :math:`1/2\varepsilon^2`.
    coef : ndarray, shape (n_1[, n_2], d + 1)
    origin, spacing : ndarray, shape (d,)
    vel : ndarray, shape (nt, d)
        Updated in place.

    Returns
    -------
    float
    """
    from .local import sample_spline

    if len(pi) == 0:
        return 0.0
    dx = xt[pi] - xs[pj]
    f = sample_spline(0.5 * (xt[pi] + xs[pj]), coef, origin, spacing)  # W and grad W at the midpoints
    g = norm * np.exp(-np.einsum("ij,ij->i", dx, dx) * inv4e2)
    w, grad = f[:, 0], f[:, 1:]
    along = dx * (w * inv2e2)[:, None]
    np.add.at(vel, pi, (ms[pj] * g)[:, None] * (along - 0.5 * grad))
    energy = 0.5 * float(np.sum(mt[pi] * ms[pj] * g * w))
    if symmetric:
        np.add.at(vel, pj, (mt[pi] * g)[:, None] * (-along - 0.5 * grad))
        energy *= 2.0
    return energy


def choose_method(law: BlobLaw, n: int) -> str:
    """``"mesh"`` or ``"pairwise"``, whichever the cost model says is cheaper for ``n`` agents
    (pairs within the radius against an FFT of the mesh's cells)."""
    from .mesh import mesh_shape

    box = law.target.box
    ball = (math.pi * law.radius**2) if law.dim == 2 else 2 * law.radius
    pairs = n * n * min(1.0, ball / box.volume) / 2
    pair_cost = 6e-8 * pairs
    cells = int(np.prod(mesh_shape(law, law.mesh_cells)))
    mesh_cost = 4e-8 * cells * math.log2(max(cells, 2)) + 1e-7 * n
    return "mesh" if mesh_cost < pair_cost else "pairwise"
