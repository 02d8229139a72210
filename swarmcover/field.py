r"""The smoothed reciprocal target :math:`W = \phi_s * w` on a grid, sampled by cubic B-splines.

The blob law needs, at midpoints of pairs of agents,

.. math::

    W = \phi_{\varepsilon/\sqrt 2} * w, \qquad \nabla W = (\nabla\phi_{\varepsilon/\sqrt2}) * w,
    \qquad w = 1/\bar\rho,

where :math:`\phi_s` is the Gaussian of standard deviation :math:`s`. Both are computed once per
:math:`s` on a regular grid of spacing :math:`h = s/\text{oversample}` by separable discrete
convolution of the sampled :math:`w` with the sampled Gaussian (and its derivative), which for a
smooth :math:`w` is spectrally accurate (trapezoidal rule); where :math:`w` has a kink or a jump on
a cell edge (the evenly extended :math:`w` at a reflecting wall; the floor's edge at a free wall)
it is second order (:math:`\sim 10^{-3}` relative at the default ``oversample = 4``).
Each of the :math:`d+1` fields is then
represented by a cubic B-spline (:func:`scipy.ndimage.spline_filter`), so sampling anywhere costs
:math:`4^d` multiply-adds per field and is :math:`O(h^4)` accurate.

With ``boundary="reflect"`` the reciprocal is extended evenly across the walls (``Box.fold``): the
smoothing then has no-flux walls. With ``boundary="free"`` the target is taken as the floor outside
the box, i.e. :math:`w = |\Omega|/f` there (the literal law on :math:`\mathbb R^d`).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np

from ._checks import as_points, as_positive
from .local import patch_covers

if TYPE_CHECKING:  # pragma: no cover
    from .targets import Target

__all__ = ["BOUNDARIES", "MAX_GRID_NODES", "SmoothedReciprocal", "patch_covers"]

log = logging.getLogger(__name__)

BOUNDARIES = ("reflect", "free")
#: the largest grid (nodes in all) a field may use; beyond it the oversampling is reduced
MAX_GRID_NODES = 1 << 23
_TRUNCATE = 8.0  # Gaussian kernels are cut at 8 standard deviations (relative tail < 1e-15)
_SPLINE_PAD = 16  # extra nodes so the spline prefilter's edge effect (0.268^k) is < 1e-9 inside


def _gauss(k: int, h: float, s: float) -> np.ndarray:
    """The Gaussian of standard deviation ``s`` sampled at ``-k h .. k h``, times ``h``."""
    offs = np.arange(-k, k + 1) * h
    return h * np.exp(-0.5 * (offs / s) ** 2) / (math.sqrt(2 * math.pi) * s)


class SmoothedReciprocal:
    r"""Grid representation of :math:`W = \phi_s * (1/\bar\rho)` and :math:`\nabla W`.

    Parameters
    ----------
    target : Target
    scale : float
        Standard deviation :math:`s` of the smoothing Gaussian (:math:`\varepsilon/\sqrt 2`).
    margin : float
        How far beyond the box the field must be valid (half the truncation radius suffices for
        pair midpoints with reflected images).
    boundary : {"reflect", "free"}
    target_smoothing : float
        If > 0, the target is first smoothed by a Gaussian of this standard deviation and then
        floored and inverted: :math:`w = 1/\max(\phi_\sigma * \bar\rho, f/|\Omega|)`.
    oversample : float
        Grid nodes per :math:`s`; reduced (with a warning) if the grid would exceed
        :data:`MAX_GRID_NODES`.

    Attributes
    ----------
    origin : ndarray, shape (d,)
        Coordinates of grid node ``(0, ..., 0)``.
    spacing : ndarray, shape (d,)
        Grid spacing per axis (about ``scale / oversample``; whole cells span the box).
    coef : ndarray, shape (n_1, ..., n_d, d + 1)
        Cubic B-spline coefficients of :math:`(W, \partial_1 W, \dots, \partial_d W)`.
    """

    def __init__(
        self,
        target: Target,
        scale: float,
        margin: float,
        boundary: str = "reflect",
        oversample: float = 4.0,
        target_smoothing: float = 0.0,
    ) -> None:
        s = as_positive(scale, "scale")
        sigma_t = float(target_smoothing)
        if not math.isfinite(sigma_t) or sigma_t < 0:
            raise ValueError(f"target_smoothing must be finite and >= 0, got {target_smoothing!r}")
        margin = float(margin)
        if not math.isfinite(margin) or margin < 0:
            raise ValueError(f"margin must be finite and >= 0, got {margin!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        oversample = as_positive(oversample, "oversample")
        box = target.box
        d = box.dim
        if d > 2:
            raise ValueError(f"the blob law is implemented for 1-D and 2-D domains, got d = {d}")
        while True:
            # per axis: whole cells across the box, nodes at cell centres, so that walls lie
            # halfway between nodes (a jump of w at a wall then costs O(h^2), not O(h))
            cells = np.ceil(box.size / (s / oversample)).astype(int)
            h = box.size / cells
            pad = np.ceil(margin / h).astype(int) + _SPLINE_PAD
            nodes = cells + 2 * pad
            if np.prod(nodes.astype(float)) <= MAX_GRID_NODES or oversample <= 1.0:
                break
            oversample = max(1.0, oversample / 1.25)
        if np.prod(nodes.astype(float)) > MAX_GRID_NODES:
            raise ValueError(
                f"eps is too small for this domain: the grid for W would need {nodes.tolist()} nodes "
                f"(more than {MAX_GRID_NODES}); use a larger eps or the mesh method"
            )
        if oversample < 2.0:
            log.warning("W grid coarsened to %.2f nodes per smoothing length (accuracy drops)", oversample)
        self.target, self.scale, self.boundary, self.oversample = target, s, boundary, oversample
        self.spacing = h
        self.origin = box.lo + (0.5 - pad) * h
        self.shape = tuple(int(v) for v in nodes)

        self.target_smoothing = sigma_t
        axes, kern, dkern, taps, tkern, ttaps = [], [], [], [], [], []
        for a in range(d):
            k = math.ceil(_TRUNCATE * s / h[a])
            g = _gauss(k, h[a], s)
            kern.append(g)
            dkern.append(-np.arange(-k, k + 1) * h[a] / s**2 * g)  # derivative of the Gaussian
            taps.append(k)
            kt = math.ceil(_TRUNCATE * sigma_t / h[a]) if sigma_t > 0 else 0
            tkern.append(_gauss(kt, h[a], sigma_t) if kt else None)
            ttaps.append(kt)
            axes.append(self.origin[a] + (np.arange(self.shape[a] + 2 * (k + kt)) - k - kt) * h[a])
        from scipy import ndimage  # imported here: agents fed patches never build a field (0.3 s)

        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
        if boundary == "reflect":
            pts = box.fold(pts)
        if sigma_t > 0:
            # w = 1 / max(phi_sigma * rhobar, floor): the target smoothed before it is inverted
            rho = target.pdf(pts).reshape([len(a) for a in axes])
            for a in range(d):
                rho = ndimage.convolve1d(rho, tkern[a], axis=a, mode="nearest")
            rho = rho[tuple(slice(kt, rho.shape[a] - kt) for a, kt in enumerate(ttaps))]
            w = 1.0 / np.maximum(rho, target.floor_density)
        else:
            w = target.reciprocal(pts).reshape([len(a) for a in axes])
        del pts

        fields = []
        for deriv_axis in [None, *range(d)]:
            f = w
            for a in range(d):
                wts = dkern[a] if a == deriv_axis else kern[a]
                f = ndimage.convolve1d(f, wts, axis=a, mode="nearest")
            f = f[tuple(slice(k, k + n) for k, n in zip(taps, self.shape, strict=True))]
            fields.append(ndimage.spline_filter(f, order=3, mode="mirror", output=np.float64))
        self.coef = np.ascontiguousarray(np.stack(fields, axis=-1))
        self._lo_valid = box.lo - margin
        self._hi_valid = box.hi + margin

    @property
    def dim(self) -> int:
        return self.target.dim

    def patch(self, center: np.ndarray, half_width: float) -> tuple[np.ndarray, np.ndarray]:
        """The part of the spline grid that sampling anywhere within ``half_width`` of ``center``
        uses (what a body sends an agent): returns ``origin (d,)`` and ``coef (m_1, ..., m_d, d+1)``
        (a copy); the spacing is :attr:`spacing`. Evaluating the patch with its origin gives the
        same values as the whole field there (see :func:`patch_covers`)."""
        c = np.asarray(center, dtype=np.float64).reshape(-1)
        lo = np.floor((c - half_width - self.origin) / self.spacing).astype(np.int64) - 2
        hi = np.floor((c + half_width - self.origin) / self.spacing).astype(np.int64) + 4
        shape = np.asarray(self.shape)
        lo, hi = np.clip(lo, 0, shape - 4), np.clip(hi, 4, shape)
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        return self.origin + lo * self.spacing, np.ascontiguousarray(self.coef[sl])

    def sample(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r"""Sample :math:`W` and :math:`\nabla W` at points.

        Parameters
        ----------
        points : ndarray, shape (n, d)
            Must lie within ``margin`` of the box.

        Returns
        -------
        W : ndarray, shape (n,)
        grad_W : ndarray, shape (n, d)
        """
        p = as_points(points, self.dim, "points")
        if np.any(p < self._lo_valid) or np.any(p > self._hi_valid):
            raise ValueError("points lie outside the region where W was computed (box + margin)")
        out = np.empty((p.shape[0], self.dim + 1))
        from ._kernels import sample_field  # numba loads on first use

        sample_field(p, self.coef, self.origin, 1.0 / self.spacing, out)
        return out[:, 0], out[:, 1:]
