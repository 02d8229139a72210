r"""Target (coverage) densities :math:`\bar\rho` on a box domain.

Every target is a probability density on its box :math:`\Omega` (zero inside its no-go zones),
*floored* so that the reciprocal :math:`w = 1/\bar\rho` the law needs stays finite:

.. math::

    \bar\rho_{\text{floored}}(x) = \max\big(\bar\rho(x),\ f / |\Omega|\big),

with ``floor`` :math:`f` a fraction of the mean density :math:`1/|\Omega|`. The floored density is
not renormalised (the floor only changes the law where demand is negligible). Outside the box the
density is the floor too (the "free" boundary convention); with reflecting walls the law never looks
there.

``target.pdf`` is the normalised density without the floor (what coverage is measured against);
``target.density`` is the floored one (what the law inverts).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points, as_positive
from .domain import Box, Zone
from .field import SmoothedReciprocal

__all__ = ["GaussianMixture", "Powered", "Raster", "Target", "Uniform"]

_DEFAULT_FLOOR = 1e-3
#: quadrature cells per axis used to normalise targets without a closed-form mass
_NORM_CELLS = {1: 1 << 16, 2: 1024, 3: 128}


class Target:
    """Base class: a floored, normalised density on a box with optional no-go zones.

    Subclasses implement :meth:`_raw`, an unnormalised non-negative density inside the box.
    """

    def __init__(
        self, bounds: ArrayLike | Box, zones: Sequence[Zone] = (), floor: float = _DEFAULT_FLOOR
    ) -> None:
        self.box = bounds if isinstance(bounds, Box) else Box(bounds)
        self.zones = tuple(zones)
        for z in self.zones:
            if not isinstance(z, Zone):
                raise ValueError(f"zones must be Disk, Rectangle or Polygon, got {type(z).__name__}")
            if z.dim != self.dim:
                raise ValueError(f"zone {z!r} is {z.dim}-D but the domain is {self.dim}-D")
        self.floor = as_positive(floor, "floor")
        self._cache: dict[tuple, SmoothedReciprocal] = {}
        #: per-target results of metrics that depend on the target alone (filled lazily)
        self.metric_cache: dict[tuple, float] = {}
        self._z = self._mass()
        if not np.isfinite(self._z) or self._z <= 0:
            raise ValueError(
                f"{type(self).__name__} has zero mass on its domain (outside its no-go zones): "
                "there is nothing to cover"
            )

    # -- to be provided by subclasses -------------------------------------------------------
    def _raw(self, p: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def _mass(self) -> float:
        """Integral of :meth:`_raw` over the box minus the zones (midpoint rule by default)."""
        axes, cell = self.box.grid(_NORM_CELLS.get(self.dim, 32))
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.dim)
        return float(np.sum(self._masked_raw(pts))) * cell

    # -- public API --------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Dimension ``d`` of the domain."""
        return self.box.dim

    @property
    def floor_density(self) -> float:
        """The absolute floor value ``floor / |Omega|``."""
        return self.floor / self.box.volume

    def _masked_raw(self, p: np.ndarray) -> np.ndarray:
        v = np.where(self.box.contains(p), self._raw(p), 0.0)
        for z in self.zones:
            v = np.where(z.contains(p), 0.0, v)
        return v

    def pdf(self, points: ArrayLike) -> np.ndarray:
        """Normalised density without the floor, ``(n, d) -> (n,)``; zero outside the box."""
        p = as_points(points, self.dim, "points")
        return self._masked_raw(p) / self._z

    def density(self, points: ArrayLike) -> np.ndarray:
        r"""The normalised, floored density :math:`\max(\bar\rho, f/|\Omega|)`, ``(n, d) -> (n,)``."""
        return np.maximum(self.pdf(points), self.floor_density)

    def reciprocal(self, points: ArrayLike) -> np.ndarray:
        r""":math:`w = 1/\bar\rho` with the floored density, ``(n, d) -> (n,)``."""
        return 1.0 / self.density(points)

    def quadrature(self, cells: int | Sequence[int] = 128) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centred quadrature of the (unfloored) target: points ``(M, d)`` and weights ``(M,)``
        that sum to 1 (midpoint rule, renormalised)."""
        axes, cell = self.box.grid(cells)
        pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, self.dim)
        wts = self.pdf(pts) * cell
        s = wts.sum()
        if s <= 0:
            raise ValueError("the target has no mass on this quadrature grid; use more cells")
        return pts, wts / s

    def smoothed_reciprocal(
        self,
        scale: float,
        margin: float,
        boundary: str = "reflect",
        oversample: float = 4.0,
        target_smoothing: float = 0.0,
    ) -> SmoothedReciprocal:
        r"""The field :math:`W = \phi_{\text{scale}} * w` and its gradient on a grid, cached.

        See :class:`swarmcover.field.SmoothedReciprocal`.
        """
        key = (float(scale), float(margin), boundary, float(oversample), float(target_smoothing))
        if key not in self._cache:
            self._cache[key] = SmoothedReciprocal(self, scale, margin, boundary, oversample, target_smoothing)
        return self._cache[key]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(bounds={self.box.bounds.tolist()}, zones={len(self.zones)})"

    def for_service(self) -> Target:
        r"""The density a fleet should match to serve this demand best: :math:`\bar\rho^{d/(d+2)}`,
        normalised (:class:`Powered`).

        Density matching (:math:`\rho = \bar\rho`, the blob flow's fixed point) is what a sampler
        wants. The locational cost :math:`\int \min_i |q - x_i|^2 \bar\rho(q)\,dq` (the distance
        from demand to the nearest robot) is minimised instead, for many robots, by a density
        proportional to :math:`\bar\rho^{d/(d+2)}` (Zador; Gersho, *IEEE Trans. Inf. Theory* 1979):
        flatter, fewer robots on the peaks, more between them."""
        return Powered(self, self.dim / (self.dim + 2.0))


class Uniform(Target):
    """The uniform density ``1/|Omega|`` on a box (minus its no-go zones).

    Examples
    --------
    >>> Uniform([(0, 2), (0, 1)]).density([[0.5, 0.5]])
    array([0.5])
    """

    def _raw(self, p: np.ndarray) -> np.ndarray:
        return np.ones(p.shape[0])

    def _mass(self) -> float:
        return self.box.volume if not self.zones else super()._mass()


class GaussianMixture(Target):
    r"""A mixture :math:`\sum_k \pi_k \mathcal N(\mu_k, \Sigma_k)` restricted to the box, renormalised.

    Parameters
    ----------
    means : array_like, shape (K, d)
    covs : array_like, shape (K, d, d), (K, d) (diagonal) or (K,) (isotropic variances)
    weights : array_like, shape (K,), optional
        Non-negative, not all zero; normalised to sum 1. Default: equal.
    bounds : array_like, shape (d, 2)
    zones, floor : see :class:`Target`.
    truncate : float, optional
        Cut each component off at this many standard deviations (Mahalanobis distance): the
        density is exactly zero beyond, like a demand map with sharp edges. Default: no cut.
    """

    def __init__(
        self,
        means: ArrayLike,
        covs: ArrayLike,
        weights: ArrayLike | None = None,
        bounds: ArrayLike | Box = ((0.0, 1.0), (0.0, 1.0)),
        zones: Sequence[Zone] = (),
        floor: float = _DEFAULT_FLOOR,
        truncate: float | None = None,
    ) -> None:
        box = bounds if isinstance(bounds, Box) else Box(bounds)
        d = box.dim
        mu = as_points(means, d, "means")
        k = mu.shape[0]
        c = np.asarray(covs, dtype=np.float64)
        if c.shape == (k,):
            c = c[:, None, None] * np.eye(d)
        elif c.shape == (k, d):
            c = np.einsum("ki,ij->kij", c, np.eye(d))
        if c.shape != (k, d, d) or not np.all(np.isfinite(c)):
            raise ValueError(f"covs must have shape ({k},), ({k}, {d}) or ({k}, {d}, {d}), finite")
        if not np.allclose(c, np.swapaxes(c, 1, 2)):
            raise ValueError("each covariance must be symmetric")
        try:
            chol = np.linalg.cholesky(c)
        except np.linalg.LinAlgError:
            raise ValueError("each covariance must be positive definite") from None
        wts = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
        if wts.shape != (k,) or not np.all(np.isfinite(wts)) or np.any(wts < 0) or wts.sum() <= 0:
            raise ValueError(f"weights must be {k} non-negative finite numbers, not all zero")
        self.means, self.covs, self.weights = mu, c, wts / wts.sum()
        self.truncate = None if truncate is None else as_positive(truncate, "truncate")
        self._inv_chol = np.linalg.inv(chol)
        self._norms = self.weights / (
            (2 * np.pi) ** (d / 2) * np.prod(np.diagonal(chol, axis1=1, axis2=2), axis=1)
        )
        super().__init__(box, zones, floor)

    def _raw(self, p: np.ndarray) -> np.ndarray:
        out = np.zeros(p.shape[0])
        for mu, li, nk in zip(self.means, self._inv_chol, self._norms, strict=True):
            z = (p - mu) @ li.T
            r2 = np.einsum("ij,ij->i", z, z)
            term = nk * np.exp(-0.5 * r2)
            if self.truncate is not None:
                term = np.where(r2 <= self.truncate**2, term, 0.0)
            out += term
        return out

    def _mass(self) -> float:
        diag = np.all(self.covs == np.einsum("kii->ki", self.covs)[:, :, None] * np.eye(self.dim))
        if self.zones or not diag or self.truncate is not None:
            return super()._mass()
        sd = np.sqrt(np.einsum("kii->ki", self.covs))
        lo, hi = self.box.lo, self.box.hi
        from scipy.special import ndtr  # imported here: it costs agents 0.2 s at start-up

        per = ndtr((hi - self.means) / sd) - ndtr((lo - self.means) / sd)
        return float(np.sum(self.weights * np.prod(per, axis=1)))


class Raster(Target):
    """A piecewise-constant density from a non-negative array over the box (a demand map).

    Parameters
    ----------
    values : array_like, shape (n_1, ..., n_d)
        Cell values; axis ``k`` runs along coordinate ``k`` from ``lo_k`` to ``hi_k``
        (so for a 2-D map ``values[ix, iy]``; an image array ``img[row, col]`` with row 0 at the
        top corresponds to ``values = img[::-1].T``).
    bounds : array_like, shape (d, 2)
    zones, floor : see :class:`Target`.
    """

    def __init__(
        self,
        values: ArrayLike,
        bounds: ArrayLike | Box,
        zones: Sequence[Zone] = (),
        floor: float = _DEFAULT_FLOOR,
    ) -> None:
        box = bounds if isinstance(bounds, Box) else Box(bounds)
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != box.dim:
            raise ValueError(f"raster values must be a {box.dim}-D array, got shape {v.shape}")
        if v.size == 0 or not np.all(np.isfinite(v)):
            raise ValueError("raster values must be finite and non-empty")
        if np.any(v < 0):
            raise ValueError("raster values must be non-negative (a density cannot be negative)")
        if not np.any(v > 0):
            raise ValueError("raster values are all zero: there is nothing to cover")
        self.values = v
        super().__init__(box, zones, floor)

    @classmethod
    def from_npy(
        cls,
        path: str | Path,
        bounds: ArrayLike | Box,
        zones: Sequence[Zone] = (),
        floor: float = _DEFAULT_FLOOR,
    ) -> Raster:
        """Load ``values`` from a ``.npy`` file (never with pickle)."""
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"demand map file not found: {p}")
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise ValueError(f"cannot read demand map {p} as a .npy array: {exc}") from None
        return cls(arr, bounds, zones, floor)

    def _index(self, p: np.ndarray) -> tuple[np.ndarray, ...]:
        shape = np.asarray(self.values.shape)
        u = (p - self.box.lo) / self.box.size * shape
        idx = np.clip(np.floor(u).astype(np.int64), 0, shape - 1)
        return tuple(idx.T)

    def _raw(self, p: np.ndarray) -> np.ndarray:
        return self.values[self._index(p)]

    def _mass(self) -> float:
        if self.zones:
            return super()._mass()
        return float(self.values.sum() * self.box.volume / self.values.size)


class Powered(Target):
    r"""A target raised to a power and normalised: :math:`\bar\rho^{p} / \int \bar\rho^{p}`
    (same box, zones and floor). See :meth:`Target.for_service`.

    Parameters
    ----------
    base : Target
    power : float
        In (0, inf).
    """

    def __init__(self, base: Target, power: float) -> None:
        self.base, self.power = base, as_positive(power, "power")
        super().__init__(base.box, base.zones, base.floor)

    def _raw(self, p: np.ndarray) -> np.ndarray:
        return self.base.pdf(p) ** self.power
