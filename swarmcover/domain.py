"""Box domains and no-go zones (obstacles, geofences)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points

__all__ = ["Box", "Disk", "Polygon", "Rectangle", "Zone"]


@dataclass(frozen=True, eq=False)
class Box:
    r"""An axis-aligned box :math:`\Omega = \prod_k [lo_k, hi_k]` in ``d`` dimensions.

    Parameters
    ----------
    bounds : array_like, shape (d, 2)
        ``bounds[k] = (lo_k, hi_k)`` with ``lo_k < hi_k``. A pair ``(lo, hi)`` means 1-D.
    """

    bounds: np.ndarray

    def __init__(self, bounds: ArrayLike) -> None:
        b = np.asarray(bounds, dtype=np.float64)
        if b.shape == (2,):
            b = b.reshape(1, 2)
        if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
            raise ValueError(f"bounds must have shape (d, 2), got {np.shape(bounds)}")
        if not np.all(np.isfinite(b)):
            raise ValueError("bounds must be finite")
        if np.any(b[:, 1] <= b[:, 0]):
            raise ValueError(f"bounds need lo < hi on every axis, got {b.tolist()}")
        b.setflags(write=False)
        object.__setattr__(self, "bounds", b)

    @property
    def dim(self) -> int:
        """Number of dimensions ``d``."""
        return self.bounds.shape[0]

    @property
    def lo(self) -> np.ndarray:
        """Lower corner, shape ``(d,)``."""
        return self.bounds[:, 0]

    @property
    def hi(self) -> np.ndarray:
        """Upper corner, shape ``(d,)``."""
        return self.bounds[:, 1]

    @property
    def size(self) -> np.ndarray:
        """Side lengths, shape ``(d,)``."""
        return self.bounds[:, 1] - self.bounds[:, 0]

    @property
    def volume(self) -> float:
        """Lebesgue measure of the box."""
        return float(np.prod(self.size))

    def contains(self, points: ArrayLike, tol: float = 0.0) -> np.ndarray:
        """Boolean mask ``(n,)``: which points lie in the box (closed, widened by ``tol``)."""
        p = np.asarray(points, dtype=np.float64)
        return np.all((p >= self.lo - tol) & (p <= self.hi + tol), axis=-1)

    def require_inside(self, points: np.ndarray, name: str) -> None:
        """``ValueError`` naming the first row of ``points`` ``(n, d)`` outside the box (beyond
        round-off: :math:`10^{-9}` of its longest side)."""
        inside = self.contains(points, 1e-9 * float(np.max(self.size)))
        if not np.all(inside):
            k = int(np.flatnonzero(~inside)[0])
            raise ValueError(f"{name} row {k} at {points[k].tolist()} lies outside the domain")

    def clip(self, points: ArrayLike) -> np.ndarray:
        """Project points ``(n, d)`` onto the box."""
        return np.clip(np.asarray(points, dtype=np.float64), self.lo, self.hi)

    def fold(self, points: ArrayLike) -> np.ndarray:
        """Map points of :math:`\\mathbb{R}^d` into the box by repeated mirror reflection at walls.

        This is the map under which a function on the box extends evenly (no-flux) to the plane.
        """
        p = np.asarray(points, dtype=np.float64)
        size = self.size
        u = np.mod(p - self.lo, 2.0 * size)
        u = np.where(u > size, 2.0 * size - u, u)
        return self.lo + u

    def images(self, points: ArrayLike, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Mirror images of points across the walls (repeatedly) lying within ``radius`` of the box.

        Parameters
        ----------
        points : array_like, shape (n, d)
        radius : float

        Returns
        -------
        images : ndarray, shape (g, d)
        owner : ndarray of int, shape (g,)
            Row of ``points`` each image belongs to.
        """
        X = as_points(points, self.dim, "points")
        d, r = self.dim, float(radius)
        lo, hi, size = self.lo, self.hi, self.size
        # per axis: candidate coordinates x + 2kL and 2lo - x + 2kL, kept only where that axis alone
        # is within r of the box; then combine the axes (few candidates survive)
        per_axis = []
        for a in range(d):
            kmax = math.ceil(r / (2 * size[a])) + 1
            cands = []
            for k in range(-kmax, kmax + 1):
                for coord, moved in (
                    (X[:, a] + 2 * k * size[a], k != 0),
                    (2 * lo[a] - X[:, a] + 2 * k * size[a], True),
                ):
                    gap = np.maximum(lo[a] - coord, 0.0) + np.maximum(coord - hi[a], 0.0)
                    near = gap < r
                    if np.any(near):
                        cands.append((coord, gap * gap, near, moved))
            per_axis.append(cands)
        pts, owners = [], []
        idx = np.arange(X.shape[0])
        for combo in itertools.product(*per_axis):
            if not any(c[3] for c in combo):
                continue
            keep = np.logical_and.reduce([c[2] for c in combo])
            keep &= np.sum([c[1] for c in combo], axis=0) < r * r
            if np.any(keep):
                pts.append(np.stack([c[0][keep] for c in combo], axis=1))
                owners.append(idx[keep])
        if not pts:
            return np.empty((0, d)), np.empty(0, dtype=np.int64)
        return np.concatenate(pts), np.concatenate(owners)

    def grid(self, cells: ArrayLike) -> tuple[list[np.ndarray], np.ndarray]:
        """Cell-centred grid: per-axis centre coordinates and the cell volume."""
        c = np.broadcast_to(np.asarray(cells, dtype=int), (self.dim,))
        if np.any(c < 1):
            raise ValueError(f"cells must be >= 1 per axis, got {c.tolist()}")
        axes = [
            lo + (np.arange(k) + 0.5) * (hi - lo) / k for lo, hi, k in zip(self.lo, self.hi, c, strict=True)
        ]
        return axes, float(np.prod(self.size / c))


class Zone:
    """A no-go region: the target density is zero inside it."""

    dim: int

    def contains(self, points: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """Boolean mask ``(n,)``: which points are inside the zone."""
        raise NotImplementedError

    def signed_distance(self, points: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        """Signed distance ``(n,)`` to the zone's edge, negative inside."""
        raise NotImplementedError


@dataclass(frozen=True)
class Disk(Zone):
    """A ball (a disk in 2-D, an interval in 1-D) of given ``center`` and ``radius``."""

    center: tuple[float, ...]
    radius: float

    def __post_init__(self) -> None:
        c = np.asarray(self.center, dtype=np.float64).ravel()
        if c.size < 1 or not np.all(np.isfinite(c)):
            raise ValueError(f"Disk center must be finite coordinates, got {self.center!r}")
        if not np.isfinite(self.radius) or self.radius <= 0:
            raise ValueError(f"Disk radius must be > 0, got {self.radius!r}")
        object.__setattr__(self, "center", tuple(float(v) for v in c))

    @property
    def dim(self) -> int:  # type: ignore[override]
        return len(self.center)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        p = as_points(points, self.dim, "points")
        return np.linalg.norm(p - np.asarray(self.center), axis=1) - self.radius

    def contains(self, points: np.ndarray) -> np.ndarray:
        return self.signed_distance(points) < 0


@dataclass(frozen=True)
class Rectangle(Zone):
    """An axis-aligned box zone ``[lo, hi]`` (any dimension)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]

    def __post_init__(self) -> None:
        lo = np.asarray(self.lo, dtype=np.float64).ravel()
        hi = np.asarray(self.hi, dtype=np.float64).ravel()
        if lo.shape != hi.shape or lo.size < 1:
            raise ValueError("Rectangle lo and hi must have the same length")
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))) or np.any(hi <= lo):
            raise ValueError(f"Rectangle needs finite lo < hi, got lo={self.lo!r}, hi={self.hi!r}")
        object.__setattr__(self, "lo", tuple(float(v) for v in lo))
        object.__setattr__(self, "hi", tuple(float(v) for v in hi))

    @property
    def dim(self) -> int:  # type: ignore[override]
        return len(self.lo)

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        p = as_points(points, self.dim, "points")
        lo, hi = np.asarray(self.lo), np.asarray(self.hi)
        c, half = (lo + hi) / 2, (hi - lo) / 2
        q = np.abs(p - c) - half
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        inside = np.minimum(q.max(axis=1), 0.0)
        return outside + inside

    def contains(self, points: np.ndarray) -> np.ndarray:
        return self.signed_distance(points) < 0


@dataclass(frozen=True)
class Polygon(Zone):
    """A simple polygon in 2-D given by its vertices ``(m, 2)`` in order (m >= 3)."""

    vertices: tuple[tuple[float, float], ...]
    _v: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = np.asarray(self.vertices, dtype=np.float64)
        if v.ndim != 2 or v.shape[1] != 2 or v.shape[0] < 3:
            raise ValueError(f"Polygon needs at least 3 vertices of shape (m, 2), got {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("Polygon vertices must be finite")
        object.__setattr__(self, "vertices", tuple(map(tuple, v.tolist())))
        object.__setattr__(self, "_v", v)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return 2

    def contains(self, points: np.ndarray) -> np.ndarray:
        p = as_points(points, 2, "points")
        a, b = self._v, np.roll(self._v, -1, axis=0)
        x, y = p[:, :1], p[:, 1:]
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        return (np.count_nonzero(crosses & (x < xint), axis=1) % 2) == 1

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        p = as_points(points, 2, "points")
        a, b = self._v, np.roll(self._v, -1, axis=0)
        ab = b - a
        ap = p[:, None, :] - a[None]
        t = np.clip(np.einsum("nmk,mk->nm", ap, ab) / np.einsum("mk,mk->m", ab, ab), 0.0, 1.0)
        d = np.linalg.norm(ap - t[..., None] * ab[None], axis=2).min(axis=1)
        return np.where(self.contains(p), -d, d)
