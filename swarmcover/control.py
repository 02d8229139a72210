r"""From the law to a robot's command: gain, minimum separation and the speed limit.

The blob law (:class:`swarmcover.BlobLaw`) fixes the *direction* agents move in; its time scale is
arbitrary (scaling :math:`\bar\rho` scales every velocity). A robot's command is

.. math::

    u_i = \operatorname{sat}_{v_{\max}}\Big(\operatorname{sat}_{v_{\max}}(g\, v_i)
        + \sum_{j:\,r_{ij} < r_s} v_{\text{sep}}\, s(r_{ij})\, \frac{x_i - x_j}{r_{ij}}\Big),

where :math:`v_i` is the law's velocity, :math:`g` the gain, :math:`r_{ij} = |x_i - x_j|` and
:math:`\operatorname{sat}_v` scales a vector down to length at most :math:`v`. The law's part is
saturated first so that no pull, however large (off the support :math:`1/\bar\rho` is huge), can
outweigh the separation barrier.

**Gain rule** (:func:`gain_for`). Near equilibrium the law is a diffusion of the density ratio
:math:`\rho/\bar\rho` at scale :math:`\varepsilon`: an agent whose neighbourhood is off by a relative
mismatch :math:`\delta` over a distance :math:`\varepsilon` moves at about
:math:`\delta/\varepsilon` (law units). The gain :math:`g = v_{\max}\varepsilon/\delta_{\text{sat}}`
makes every agent whose mismatch exceeds :math:`\delta_{\text{sat}}` (default 0.5) move at its speed
limit, so a fleet far from equilibrium travels at full speed and slows down only when the pattern is
nearly right. The relaxation time at scale :math:`\varepsilon` is then about
:math:`\varepsilon\,\delta_{\text{sat}}/v_{\max}`.

**Minimum separation** (:class:`Separation`). Robots have a size, and the law alone lets agents
merge: its pair repulsion vanishes at zero distance, and off the support the pull towards a bump can
dwarf it. A short-range barrier with compact support :math:`r_s = \text{reach}\cdot r_{\min}`,

.. math::

    s(r) = \min\Big(s_{\max},\ \frac{(r_s - r)^2}{(r_s - r_{\min})(r - r_{\min})}\Big)
    \ (r_{\min} < r < r_s), \qquad s(r) = s_{\max}\ (r \le r_{\min}), \qquad s(r) = 0\ (r \ge r_s),

grows without bound (up to the cap :math:`s_{\max}`) as a pair closes in on :math:`r_{\min}`, so it
beats any saturated pull, and leaves the law untouched beyond :math:`r_s`. It is the gradient of a
pair potential, so the combined flow still decreases an energy. Coincident agents (which the law
can never separate: they have identical velocities) are split along a direction fixed by their ids.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points, as_positive
from .kernels import hotpath

if TYPE_CHECKING:
    from .law import BlobLaw

__all__ = ["Controller", "Separation", "clip_speed", "compose", "gain_for", "saturate"]

# optional C (swarmcover/_hotpath.c): an agent's usual "nobody within reach" in one call
_nearest2 = hotpath("nearest2")

_COINCIDENT = 1e-9  # relative to r_min: closer than this, the pair direction comes from the ids


def saturate(v: np.ndarray, speed_limit: float | np.ndarray | None) -> np.ndarray:
    """Scale each row of ``v (n, d)`` down to at most ``speed_limit`` (scalar or ``(n,)``)."""
    if speed_limit is None:
        return v
    speed = np.linalg.norm(v, axis=1)
    lim = np.broadcast_to(np.asarray(speed_limit, dtype=np.float64), speed.shape)
    scale = np.where(speed > lim, lim / np.maximum(speed, 1e-300), 1.0)
    return v * scale[:, None]


def clip_speed(v: np.ndarray, speed_limit: float) -> np.ndarray:
    """One vector ``v (d,)`` scaled down to ``speed_limit`` if longer: :func:`saturate` for a
    single row, without its array overhead (an agent and the world call it every tick)."""
    speed = math.sqrt(float(v @ v))
    return v * (speed_limit / speed) if speed > speed_limit else v


def compose(
    v: np.ndarray,
    gain: float,
    speed_limit: float,
    push: np.ndarray | None = None,
    drift: np.ndarray | None = None,
) -> np.ndarray:
    r"""The command from the law's velocity, the one chain every agent and :func:`swarmcover.cover`
    use: :math:`u = \operatorname{sat}(\operatorname{sat}(\operatorname{sat}(g v) + p) - \hat w)`.

    Parameters
    ----------
    v : ndarray, shape (d,) or (n, d)
        The law's velocity (one agent, or a fleet).
    gain : float
    speed_limit : float
    push : ndarray, same shape as ``v``, optional
        The separation barrier's velocity, added after the law's part is saturated.
    drift : ndarray, shape (d,) or (n, d), optional
        An estimate of the drift the body suffers (wind), subtracted last.
    """
    clip = clip_speed if v.ndim == 1 else saturate
    u = clip(gain * v, speed_limit)
    if push is not None:
        u = clip(u + push, speed_limit)
    if drift is not None:
        u = clip(u - drift, speed_limit)
    return u


def gain_for(eps: float, speed_limit: float, mismatch: float = 0.5) -> float:
    r"""The gain :math:`g = v_{\max}\,\varepsilon/\delta_{\text{sat}}` that makes agents use their
    speed limit when the density ratio is off by more than ``mismatch`` (see module docstring)."""
    return (
        as_positive(speed_limit, "speed_limit") * as_positive(eps, "eps") / as_positive(mismatch, "mismatch")
    )


def _tiebreak(a: np.ndarray, b: np.ndarray, d: int) -> np.ndarray:
    """Unit vectors ``(k, d)`` for coincident pairs ``(a_k, b_k)`` of ids, pointing from b to a:
    a direction hashed from the unordered pair, signed by which id is smaller."""
    lo, hi = np.minimum(a, b).astype(np.uint64), np.maximum(a, b).astype(np.uint64)
    h = (lo * np.uint64(2654435761) + hi * np.uint64(40503) + np.uint64(12345)) % np.uint64(65536)
    ang = h.astype(np.float64) * (2.0 * math.pi / 65536.0)
    u = np.zeros((len(a), d))
    if d == 1:
        u[:, 0] = 1.0
    else:
        u[:, 0], u[:, 1] = np.cos(ang), np.sin(ang)
    return np.where((a < b)[:, None], u, -u)


@dataclass(frozen=True)
class Separation:
    r"""Short-range repulsion that keeps agents at least ``r_min`` apart (see module docstring).

    Parameters
    ----------
    r_min : float
        The minimum distance between two agents (robot size plus margin).
    speed : float
        Speed :math:`v_{\text{sep}}` of the push at :math:`s = 1`; use the speed limit.
    reach : float
        Support :math:`r_s = \text{reach}\cdot r_{\min}` (> 1, default 2).
    cap : float
        :math:`s_{\max}` (default 50).
    """

    r_min: float
    speed: float
    reach: float = 2.0
    cap: float = 50.0

    def __post_init__(self) -> None:
        as_positive(self.r_min, "r_min")
        as_positive(self.speed, "speed")
        as_positive(self.cap, "cap")
        if not (math.isfinite(self.reach) and self.reach > 1.0):
            raise ValueError(f"reach must be > 1, got {self.reach!r}")

    @property
    def radius(self) -> float:
        """Distance beyond which the repulsion is exactly zero."""
        return self.reach * self.r_min

    def strength(self, r: ArrayLike) -> np.ndarray:
        """The profile :math:`s(r)`, elementwise."""
        r = np.asarray(r, dtype=np.float64)
        rs, rm = self.radius, self.r_min
        with np.errstate(divide="ignore", invalid="ignore"):
            s = (rs - r) ** 2 / ((rs - rm) * (r - rm))
        s = np.where(r <= rm, self.cap, np.minimum(s, self.cap))
        return np.where(r >= rs, 0.0, s)

    def _pair_push(self, diff: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Push on agent ``a`` from agent ``b``, ``diff = x_a - x_b`` of shape (k, d)."""
        r = np.linalg.norm(diff, axis=1)
        coincident = r < _COINCIDENT * self.r_min
        u = diff / np.where(coincident, 1.0, r)[:, None]
        if np.any(coincident):
            u[coincident] = _tiebreak(a[coincident], b[coincident], diff.shape[1])
        return (self.speed * self.strength(r))[:, None] * u

    def velocities(self, x: ArrayLike, ids: ArrayLike | None = None) -> np.ndarray:
        r"""The repulsion on every agent, ``(n, d) -> (n, d)``.

        Parameters
        ----------
        x : array_like, shape (n, d)
        ids : array_like of int, shape (n,), optional
            Agent ids for the coincident tie-break (default: row numbers).
        """
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        out = np.zeros_like(x)
        if n < 2:
            return out
        ident = np.arange(n) if ids is None else np.asarray(ids, dtype=np.int64)
        from scipy.spatial import cKDTree

        pairs = cKDTree(x).query_pairs(self.radius, output_type="ndarray")
        if len(pairs) == 0:
            return out
        i, j = pairs[:, 0], pairs[:, 1]
        push = self._pair_push(x[i] - x[j], ident[i], ident[j])
        for a in range(x.shape[1]):
            out[:, a] += np.bincount(i, push[:, a], n) - np.bincount(j, push[:, a], n)
        return out

    def velocity(
        self, x: ArrayLike, neighbors: ArrayLike, own_id: int = 0, neighbor_ids: ArrayLike | None = None
    ) -> np.ndarray:
        """The repulsion on one agent at ``x (d,)`` from ``neighbors (k, d)``; shape ``(d,)``."""
        xi = np.asarray(x, dtype=np.float64).reshape(-1)
        nb = np.asarray(neighbors, dtype=np.float64).reshape(-1, xi.shape[0])
        if nb.shape[0] == 0:
            return np.zeros_like(xi)
        r2 = self.radius * self.radius
        if _nearest2 is not None and _nearest2(xi, np.ascontiguousarray(nb)) >= r2:
            return np.zeros_like(xi)  # the usual case, in one call: no neighbour within reach
        nid = np.arange(1, nb.shape[0] + 1) + own_id if neighbor_ids is None else np.asarray(neighbor_ids)
        diff = xi - nb
        near = np.einsum("ij,ij->i", diff, diff) < r2  # usually none or few
        if not near.any():
            return np.zeros_like(xi)
        push = self._pair_push(diff[near], np.full(int(near.sum()), own_id), nid[near].astype(np.int64))
        return push.sum(axis=0)


@dataclass(frozen=True)
class Controller:
    r"""A robot's command law: ``sat(sat(gain * law) + separation)`` (see module docstring).

    Parameters
    ----------
    law : BlobLaw
    gain : float
        Multiplies the law's velocity (:func:`gain_for` gives the rule).
    speed_limit : float, optional
        Saturation of the command.
    separation : Separation, optional
    """

    law: BlobLaw
    gain: float = 1.0
    speed_limit: float | None = None
    separation: Separation | None = None

    def __post_init__(self) -> None:
        as_positive(self.gain, "gain")
        if self.speed_limit is not None:
            as_positive(self.speed_limit, "speed_limit")

    @classmethod
    def for_fleet(
        cls, law: BlobLaw, speed_limit: float, r_min: float | None = None, mismatch: float = 0.5
    ) -> Controller:
        """The controller with :func:`gain_for` the law's eps and a separation pushing at the
        speed limit (if ``r_min`` is given)."""
        sep = None if r_min is None else Separation(r_min, speed_limit)
        return cls(law, gain_for(law.eps, speed_limit, mismatch), speed_limit, sep)

    def commands(self, x: ArrayLike, *, ids: ArrayLike | None = None, method: str = "auto") -> np.ndarray:
        """Every agent's command, ``(n, d) -> (n, d)`` (the fleet-wide, vectorised path)."""
        x = as_points(x, self.law.dim)
        push = None if self.separation is None else self.separation.velocities(x, ids)
        return compose(self.law.velocities(x, method=method), self.gain, self.speed_limit, push)

    def command(
        self,
        x: ArrayLike,
        neighbors: ArrayLike,
        *,
        own_id: int = 0,
        neighbor_ids: ArrayLike | None = None,
    ) -> np.ndarray:
        """One agent's command from its position ``(d,)`` and its neighbours' ``(k, d)``; ``(d,)``."""
        v = self.law.velocity(x, neighbors)[None, :]
        push = None
        if self.separation is not None:
            push = self.separation.velocity(x, neighbors, own_id, neighbor_ids)[None, :]
        return compose(v, self.gain, self.speed_limit, push)[0]
