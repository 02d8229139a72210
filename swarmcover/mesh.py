r"""Particle-mesh evaluation of the blob law: :math:`O(n + G\log G)` for large fleets.

The law is :math:`v = -\nabla\big[\phi_\varepsilon * \big(w\,(\phi_\varepsilon * \rho)\big)\big]`
with :math:`\rho = \sum_j m_j\delta_{x_j}`. On a cell-centred grid of :math:`G` cells:

1. deposit the agents' masses with linear (cloud-in-cell) weights;
2. blur with a Gaussian of variance :math:`\varepsilon^2 - h^2/6` per axis (the deposit itself
   smooths by :math:`h^2/6`, so the total is :math:`\varepsilon^2`);
3. multiply by :math:`w = 1/\bar\rho` sampled at the cell centres;
4. blur again (variance :math:`\varepsilon^2 - h^2/6`: the interpolation back adds :math:`h^2/6`)
   and differentiate spectrally;
5. interpolate :math:`-\nabla` back to the agents with the same linear weights.

Blurs and derivatives are diagonal in the cosine basis of the grid (DCT-II), whose half-sample
even extension is exactly the mirror wall of ``boundary="reflect"``; for ``boundary="free"`` the
grid extends :math:`6\varepsilon` past the box, where :math:`w` is the floor's reciprocal.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft as sfft

from ._kernels import cic_deposit, cic_gather_gradient

if TYPE_CHECKING:  # pragma: no cover
    from .law import BlobLaw

__all__ = ["DEFAULT_MAX_CELLS", "MeshEvaluator", "mesh_shape"]

log = logging.getLogger(__name__)

#: default cap on cells along the longest axis
DEFAULT_MAX_CELLS = 1024


def _layout(law: BlobLaw, cells: int | None) -> tuple[np.ndarray, float, tuple[int, ...]]:
    """Lower corner, spacing and shape of the mesh. The box walls fall on cell edges; with the
    free boundary the grid extends whole cells (at least ``6 eps``) past them."""
    box = law.target.box
    if cells is None:
        cells = int(min(DEFAULT_MAX_CELLS, max(16, math.ceil(box.size.max() / (0.5 * law.eps)))))
    h = float(box.size.max()) / cells
    per_axis = np.maximum(4, np.round(box.size / h)).astype(int)
    pad = 0 if law.boundary == "reflect" else math.ceil(6.0 * law.eps / h)
    return box.lo - pad * h, h, tuple(int(k) + 2 * pad for k in per_axis)


def mesh_shape(law: BlobLaw, cells: int | None = None) -> tuple[int, ...]:
    """Grid shape used by the mesh method: ``cells`` along the box's longest axis (default:
    spacing ``eps/2``, capped at :data:`DEFAULT_MAX_CELLS`), the same spacing on the others,
    plus the padding of the free boundary."""
    return _layout(law, cells)[2]


class MeshEvaluator:
    """Particle-mesh evaluator bound to one law (grid and :math:`w` cached).

    Parameters
    ----------
    law : BlobLaw
    cells : int, optional
        Cells along the longest axis; see :func:`mesh_shape`.
    """

    def __init__(self, law: BlobLaw, cells: int | None = None) -> None:
        self.law = law
        d = law.dim
        self.lo, h, self.shape = _layout(law, cells)
        box = law.target.box
        # the spacing is exact along the longest axis; the others are stretched to fit whole cells
        pad = (np.asarray(self.shape) - np.round(box.size / h)) / 2
        self.h = box.size / (np.asarray(self.shape) - 2 * pad)
        if np.any(self.h > law.eps):
            log.warning(
                "mesh spacing %s exceeds eps = %g: the mesh law is a poor approximation",
                self.h.tolist(), law.eps,
            )  # fmt: skip
        self.cell_volume = float(np.prod(self.h))
        axes = [self.lo[a] + (np.arange(self.shape[a]) + 0.5) * self.h[a] for a in range(d)]
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        sigma_t = law.target_smoothing
        if sigma_t > 0:
            pdf = law.target.pdf(pts).reshape(self._grid_shape)
            blur = np.ones(self._grid_shape)
            for a in range(d):
                om = math.pi * np.arange(self.shape[a]) / (self.shape[a] * self.h[a])
                blur = blur * np.exp(-0.5 * sigma_t**2 * om.reshape([-1, 1] if a == 0 else [1, -1]) ** 2)
            ax = tuple(range(d))
            pdf = sfft.idctn(sfft.dctn(pdf, type=2, axes=ax) * blur, type=2, axes=ax)
            self.w = 1.0 / np.maximum(pdf, law.target.floor_density)
        else:
            self.w = law.target.reciprocal(pts).reshape(self._grid_shape)
        # angular frequencies of the DCT-II basis, per axis, shaped for broadcasting
        self.omega = []
        transfer = np.ones(self._grid_shape)
        for a in range(d):
            om = math.pi * np.arange(self.shape[a]) / (self.shape[a] * self.h[a])
            var = max(law.eps**2 - self.h[a] ** 2 / 6.0, 0.0)
            shape = [1, 1]
            shape[a] = self.shape[a]
            om = om.reshape(shape)
            self.omega.append(om)
            transfer = transfer * np.exp(-0.5 * var * om**2)
        self.transfer = transfer

    @property
    def _grid_shape(self) -> tuple[int, int]:
        return (self.shape[0], self.shape[1] if len(self.shape) > 1 else 1)

    @property
    def _axes(self) -> tuple[int, ...]:
        return tuple(range(self.law.dim))

    def density(self, X: np.ndarray, m: np.ndarray) -> np.ndarray:
        r"""The blob density :math:`\phi_\varepsilon * \rho` on the grid, shape ``(n_1, n_2)``
        (``n_2 = 1`` in 1-D)."""
        grid = np.zeros(self._grid_shape)
        cic_deposit(X, m, self.lo, self.h, grid)
        grid /= self.cell_volume
        ax = self._axes
        return sfft.idctn(sfft.dctn(grid, type=2, axes=ax, workers=-1) * self.transfer,
                          type=2, axes=ax, workers=-1)  # fmt: skip

    def evaluate(self, X: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, float]:
        """Velocities ``(n, d)`` and the (grid) blob energy."""
        d = self.law.dim
        rho_eps = self.density(X, m)
        f = rho_eps * self.w
        energy = 0.5 * float(np.sum(rho_eps * f)) * self.cell_volume
        ax = self._axes
        coeff = sfft.dctn(f, type=2, axes=ax, workers=-1) * self.transfer
        grads = np.empty((d, *self._grid_shape))
        for a in range(d):
            c = -self.omega[a] * coeff
            z = np.zeros_like(c)
            sl_dst = [slice(None)] * 2
            sl_src = [slice(None)] * 2
            sl_dst[a], sl_src[a] = slice(0, -1), slice(1, None)
            z[tuple(sl_dst)] = c[tuple(sl_src)]
            g = sfft.idst(z, type=2, axis=a, workers=-1)
            for b in ax:
                if b != a:
                    g = sfft.idct(g, type=2, axis=b, workers=-1)
            grads[a] = g
        vel = np.empty((X.shape[0], d))
        cic_gather_gradient(X, self.lo, self.h, grads, vel)
        return -vel, energy
