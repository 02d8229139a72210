r"""The blob terminal term: a Gaussian-kernel MMD between the fleet's end positions and the target.

With the mollifier :math:`\varphi_\varepsilon` (a Gaussian of standard deviation :math:`\varepsilon`),
the blob method's soft terminal constraint is the mollified squared distance

.. math::

    \tfrac12 \int \big(\varphi_\varepsilon * (\mu - \nu)\big)^2
    \;\propto\; \mathrm{MMD}_k^2(\mu, \nu)
    = \iint k\,d\mu\,d\mu - 2 \iint k\,d\mu\,d\nu + \iint k\,d\nu\,d\nu,
    \qquad k(x, y) = e^{-|x-y|^2 / (2 s^2)},\quad s = \sqrt2\,\varepsilon,

because :math:`\varphi_\varepsilon * \varphi_\varepsilon = \varphi_{\sqrt2\varepsilon}`. The fleet
:math:`\mu = \sum_i m_i \delta_{x_i}` enters through the particle sums; the target :math:`\nu`
through the *cross potential* :math:`c(x) = \int k(x, y)\,d\nu(y)` and its self energy
:math:`\iint k\,d\nu\,d\nu`. Both are closed forms for point sets, Gaussian mixtures and uniform
boxes; any other :class:`~swarmcover.targets.Target` (a raster, zones, truncation) is integrated
by a midpoint quadrature whose cells follow the kernel width (coarse early in the annealing,
fine at the end).

References
----------
K. Craig, K. Elamvazhuthi, H. Lee, *A blob method for mean field control with terminal
constraints*, ESAIM: COCV 31 (2025), art. 20 (arXiv:2402.10124).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import erf

from .._checks import as_points
from ..targets import GaussianMixture, Target, Uniform

__all__ = ["BoxUniformTerm", "GaussianTerm", "PointSetTerm", "QuadratureTerm", "TerminalTerm", "terminal_for"]

#: kernel sums beyond this many kernel widths are dropped (relative weight exp(-36/2) ~ 1.5e-8)
_CUTOFF = 6.0
#: dense kernel sums up to this many pairs, a k-d tree of pairs within the cutoff beyond
_DENSE_PAIRS = 2_000_000


def gauss_sum(x: np.ndarray, y: np.ndarray, w: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Kernel sums :math:`c_i = \sum_j w_j k(x_i, y_j)` and gradients :math:`\nabla_{x_i} c_i`.

    Parameters
    ----------
    x : ndarray, shape (n, d)
    y : ndarray, shape (m, d)
    w : ndarray, shape (m,)
    s : float
        Kernel width.

    Returns
    -------
    c : ndarray, shape (n,)
    grad : ndarray, shape (n, d)
    """
    n, d = x.shape
    inv = 1.0 / (s * s)
    lo = np.minimum(x.min(axis=0), y.min(axis=0))
    hi = np.maximum(x.max(axis=0), y.max(axis=0))
    near = float(np.prod(np.minimum(1.0, 2 * _CUTOFF * s / np.maximum(hi - lo, 1e-300))))
    if n * y.shape[0] <= 20_000 or near > 0.3:
        c, grad = np.empty(n), np.empty((n, d))
        rows = max(1, _DENSE_PAIRS // max(y.shape[0], 1))
        # elementwise over the d coordinates, not a matrix product: BLAS threads for an inner
        # dimension of 2 cost more than they save (and spin while L-BFGS-B runs)
        for a in range(0, n, rows):
            xa = x[a : a + rows]
            r2 = np.zeros((xa.shape[0], y.shape[0]))
            for k in range(d):
                r2 += np.subtract.outer(xa[:, k], y[:, k]) ** 2
            kk = np.exp(-0.5 * inv * r2)
            kk *= w[None, :]
            ck = kk.sum(axis=1)
            c[a : a + rows] = ck
            grad[a : a + rows] = -inv * np.stack(
                [xa[:, k] * ck - np.einsum("ij,j->i", kk, y[:, k]) for k in range(d)], axis=1
            )
        return c, grad
    pairs = cKDTree(x).sparse_distance_matrix(cKDTree(y), _CUTOFF * s, output_type="ndarray")
    i, j, r = pairs["i"], pairs["j"], pairs["v"]
    k = w[j] * np.exp(-0.5 * inv * r * r)
    c = np.bincount(i, k, minlength=n)
    diff = x[i] - y[j]
    grad = np.stack([np.bincount(i, k * diff[:, a], minlength=n) for a in range(d)], axis=1)
    return c, -inv * grad


class TerminalTerm:
    """A target as the terminal term sees it: the cross potential, its self energy and its moments."""

    dim: int
    mean: np.ndarray
    cov: np.ndarray

    def cross(self, x: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
        r""":math:`c(x_i) = \int k(x_i, y)\,d\nu(y)` ``(n,)`` and its gradient ``(n, d)``."""
        raise NotImplementedError

    def self_energy(self, s: float) -> float:  # pragma: no cover - interface
        r""":math:`\iint k\,d\nu\,d\nu`."""
        raise NotImplementedError

    def quantize(self, n: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover
        """``n`` points of equal mass that represent the target (the warm start's end points)."""
        raise NotImplementedError

    @property
    def spread(self) -> float:
        """Root-mean-square standard deviation per axis, :math:`\\sqrt{\\operatorname{tr}\\Sigma / d}`."""
        return float(np.sqrt(max(np.trace(self.cov), 1e-300) / self.dim))

    def spacing(self, n: int) -> float:
        """The typical distance between ``n`` robots spread over the target."""
        return float(np.sqrt(12.0) * self.spread * n ** (-1.0 / self.dim))

    def mmd2(self, x: np.ndarray, m: np.ndarray, s: float) -> float:
        """The squared MMD between the fleet ``x`` ``(n, d)`` of masses ``m`` and the target."""
        kxx, _ = gauss_sum(x, x, m, s)
        c, _ = self.cross(x, s)
        return float(max(m @ kxx - 2.0 * (m @ c) + self.self_energy(s), 0.0))


def _largest_remainder(w: np.ndarray, n: int) -> np.ndarray:
    """Integer counts summing to ``n`` proportional to the weights ``w``."""
    raw = w / w.sum() * n
    counts = np.floor(raw).astype(np.int64)
    short = n - int(counts.sum())
    if short > 0:
        counts[np.argsort(-(raw - counts), kind="stable")[:short]] += 1
    return counts


class PointSetTerm(TerminalTerm):
    """A weighted point set :math:`\\nu = \\sum_j w_j \\delta_{y_j}` (weights normalised to 1)."""

    def __init__(self, points: np.ndarray, weights: np.ndarray | None = None) -> None:
        self.points = as_points(points, None, "target points")
        mm = self.points.shape[0]
        if mm == 0:
            raise ValueError("the target point set is empty")
        w = np.full(mm, 1.0 / mm) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (mm,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"target weights must be {mm} non-negative finite numbers, not all zero")
        keep = w > 0
        self.points, self.weights = self.points[keep], w[keep] / w[keep].sum()
        self.dim = self.points.shape[1]
        self.mean = self.weights @ self.points
        dev = self.points - self.mean
        self.cov = np.einsum("j,ja,jb->ab", self.weights, dev, dev)
        self._self: dict[float, float] = {}

    @property
    def equal(self) -> bool:
        """Whether every point carries the same weight."""
        return bool(np.allclose(self.weights, self.weights[0]))

    def cross(self, x: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        return gauss_sum(x, self.points, self.weights, s)

    def self_energy(self, s: float) -> float:
        if s not in self._self:
            c, _ = gauss_sum(self.points, self.points, self.weights, s)
            self._self[s] = float(self.weights @ c)
        return self._self[s]

    def spacing(self, n: int) -> float:
        if self.points.shape[0] < 2:
            return super().spacing(n)
        dist, _ = cKDTree(self.points).query(self.points, k=2)
        h = float(np.median(dist[:, 1]))
        # more robots than points: they share; fewer: they spread wider
        return max(h * (self.points.shape[0] / n) ** (1.0 / self.dim), 1e-12) if h > 0 else super().spacing(n)

    def quantize(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.points.shape[0] == n and self.equal:
            return self.points.copy()
        return np.repeat(self.points, _largest_remainder(self.weights, n), axis=0)


class GaussianTerm(TerminalTerm):
    r"""A Gaussian mixture on all of :math:`\mathbb R^d` (closed forms):

    .. math::

        c(x) = \sum_k \pi_k \frac{s^d}{\sqrt{\det S_k}} e^{-\frac12 (x-\mu_k)^\top S_k^{-1}(x-\mu_k)},
        \qquad S_k = s^2 I + \Sigma_k.
    """

    def __init__(self, means: np.ndarray, covs: np.ndarray, weights: np.ndarray) -> None:
        self.means, self.covs, self.weights = means, covs, weights / weights.sum()
        self.dim = means.shape[1]
        self.mean = self.weights @ means
        dev = means - self.mean
        self.cov = np.einsum("k,kab->ab", self.weights, covs) + np.einsum(
            "k,ka,kb->ab", self.weights, dev, dev
        )

    def cross(self, x: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        c = np.zeros(x.shape[0])
        g = np.zeros_like(x)
        eye = np.eye(self.dim)
        for mu, cov, pi in zip(self.means, self.covs, self.weights, strict=True):
            sk = s * s * eye + cov
            inv = np.linalg.inv(sk)
            amp = pi * s**self.dim / np.sqrt(np.linalg.det(sk))
            z = (x - mu) @ inv
            term = amp * np.exp(-0.5 * np.einsum("ia,ia->i", z, x - mu))
            c += term
            g -= term[:, None] * z
        return c, g

    def self_energy(self, s: float) -> float:
        eye = np.eye(self.dim)
        total = 0.0
        for mk, ck, pk in zip(self.means, self.covs, self.weights, strict=True):
            for ml, cl, pl in zip(self.means, self.covs, self.weights, strict=True):
                sk = s * s * eye + ck + cl
                dm = mk - ml
                total += (
                    pk
                    * pl
                    * s**self.dim
                    / np.sqrt(np.linalg.det(sk))
                    * np.exp(-0.5 * dm @ np.linalg.solve(sk, dm))
                )
        return float(total)

    def quantize(self, n: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.stats import norm, qmc

        counts = _largest_remainder(self.weights, n)
        parts = []
        for mu, cov, cnt in zip(self.means, self.covs, counts, strict=True):
            if cnt == 0:
                continue
            u = qmc.Sobol(self.dim, scramble=True, seed=rng).random(int(cnt))
            z = norm.ppf(np.clip(u, 1e-9, 1 - 1e-9))
            parts.append(mu + z @ np.linalg.cholesky(cov).T)
        return np.concatenate(parts, axis=0)


class BoxUniformTerm(TerminalTerm):
    r"""The uniform density on a box :math:`\prod_a [l_a, u_a]` (closed forms, products of erf)."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = np.asarray(lo, float), np.asarray(hi, float)
        self.dim = self.lo.size
        self.mean = (self.lo + self.hi) / 2
        self.cov = np.diag((self.hi - self.lo) ** 2 / 12.0)

    def cross(self, x: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        width = self.hi - self.lo
        r2 = np.sqrt(2.0) * s
        g = s * np.sqrt(np.pi / 2) / width * (erf((self.hi - x) / r2) - erf((self.lo - x) / r2))
        dg = (
            np.exp(-((x - self.lo) ** 2) / (2 * s * s)) - np.exp(-((x - self.hi) ** 2) / (2 * s * s))
        ) / width
        c = np.prod(g, axis=1)
        grad = np.empty_like(x)
        for a in range(self.dim):
            grad[:, a] = dg[:, a] * np.prod(np.delete(g, a, axis=1), axis=1)
        return c, grad

    def self_energy(self, s: float) -> float:
        w = self.hi - self.lo
        inner = 2 * (
            w * s * np.sqrt(np.pi / 2) * erf(w / (np.sqrt(2) * s))
            + s * s * (np.exp(-(w**2) / (2 * s * s)) - 1)
        )
        return float(np.prod(inner / w**2))

    def quantize(self, n: int, rng: np.random.Generator) -> np.ndarray:
        from scipy.stats import qmc

        return self.lo + qmc.Sobol(self.dim, scramble=True, seed=rng).random(n) * (self.hi - self.lo)


class QuadratureTerm(TerminalTerm):
    """Any :class:`~swarmcover.targets.Target` by midpoint quadrature; the cells follow the kernel
    width ``s`` (about ``s / 2`` wide, at most ``max_cells`` per axis)."""

    def __init__(self, target: Target, max_cells: int = 256) -> None:
        self.target, self.max_cells, self.dim = target, max_cells, target.dim
        self._grids: dict[int, tuple[PointSetTerm, np.ndarray]] = {}
        self._self: dict[float, float] = {}
        fine = self._grid(max_cells)
        self.mean, self.cov = fine.mean, fine.cov

    def _grid(self, cells: int) -> PointSetTerm:
        if cells not in self._grids:
            pts, wts = self.target.quadrature(cells)
            self._grids[cells] = (PointSetTerm(pts, wts), wts.reshape((cells,) * self.dim))
        return self._grids[cells][0]

    def _cells(self, s: float) -> int:
        want = int(np.ceil(float(np.max(self.target.box.size)) / (0.5 * s)))
        return int(min(self.max_cells, max(16, 1 << int(np.ceil(np.log2(max(want, 1)))))))

    def cross(self, x: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
        return self._grid(self._cells(s)).cross(x, s)

    def self_energy(self, s: float) -> float:
        # the grid's own kernel sum by a separable Gaussian filter: O(G) instead of O(G s^d / h^d)
        if s not in self._self:
            from scipy.ndimage import gaussian_filter

            cells = self._cells(s)
            self._grid(cells)
            wgrid = self._grids[cells][1]
            h = self.target.box.size / cells
            smooth = gaussian_filter(wgrid, sigma=tuple(s / h), mode="constant", truncate=_CUTOFF)
            self._self[s] = float(np.sum(wgrid * smooth) * (2 * np.pi * s * s) ** (self.dim / 2) / np.prod(h))
        return self._self[s]

    def quantize(self, n: int, rng: np.random.Generator) -> np.ndarray:
        grid = self._grid(self.max_cells)
        pts = grid.quantize(n, rng)
        cell = self.target.box.size / self.max_cells
        return pts + (rng.random(pts.shape) - 0.5) * cell


def terminal_for(target, weights=None) -> TerminalTerm:
    """The terminal term for a :class:`~swarmcover.targets.Target` or a point set ``(m, d)``
    (optionally weighted): closed forms where they exist, quadrature otherwise."""
    if isinstance(target, TerminalTerm):
        return target
    if isinstance(target, GaussianMixture):
        if not target.zones and target.truncate is None and target._z > 0.999:
            return GaussianTerm(target.means, target.covs, target.weights)
        return QuadratureTerm(target)
    if isinstance(target, Uniform) and not target.zones:
        return BoxUniformTerm(target.box.lo, target.box.hi)
    if isinstance(target, Target):
        return QuadratureTerm(target)
    return PointSetTerm(
        np.asarray(target, dtype=np.float64) if not isinstance(target, np.ndarray) else target, weights
    )
