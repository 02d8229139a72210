r"""Tracking a planned path (:mod:`swarmcover.transport`) by velocity commands (pure, numpy only).

A path is positions :math:`p_j` at times :math:`t_j`, straight lines at constant speed between.
Each command aims at where the plan is one control period ahead:

.. math::

    u = \operatorname{sat}\!\Big(\frac{p(t + \Delta t) - x}{\Delta t}\Big),

which is the plan's own velocity when the robot is on it (feed-forward) and closes an offset in
one period when the speed limit allows (feedback). Before :math:`t_0` the target is
:math:`p_0`; after the last node the path is done and the coverage law takes over.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["PathTracker"]


class PathTracker:
    """Follow ``points (K+1, d)`` at ``times (K+1,)`` (strictly increasing).

    Parameters
    ----------
    times : array_like, shape (K+1,)
    points : array_like, shape (K+1, d)
    plan : int
        The plan's number (see :class:`swarmcover.protocol.Path`).
    """

    def __init__(self, times: ArrayLike, points: ArrayLike, plan: int = 0) -> None:
        t = np.asarray(times, dtype=np.float64)
        p = np.asarray(points, dtype=np.float64)
        if t.ndim != 1 or t.size < 2 or p.shape[0] != t.size or p.ndim != 2:
            raise ValueError(f"a path needs K+1 >= 2 times and points (K+1, d), got {t.shape}, {p.shape}")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))) or np.any(np.diff(t) <= 0):
            raise ValueError("path times must be finite and strictly increasing, points finite")
        self.times, self.points, self.plan = t, p, int(plan)

    @property
    def end(self) -> float:
        """The time of the last node."""
        return float(self.times[-1])

    def done(self, t: float) -> bool:
        """Whether the path is over at world time ``t``."""
        return t >= self.end

    def position(self, t: float) -> np.ndarray:
        """The planned position ``(d,)`` at ``t`` (held before the first and after the last node)."""
        return np.array([np.interp(t, self.times, self.points[:, a]) for a in range(self.points.shape[1])])

    def velocity(self, t: float, x: ArrayLike, dt: float) -> np.ndarray:
        """The tracking velocity ``(d,)`` at world time ``t`` from position ``x`` for a control
        period ``dt`` (unsaturated: the caller's chain saturates it)."""
        if not dt > 0:
            raise ValueError(f"dt must be > 0, got {dt!r}")
        return (self.position(t + dt) - np.asarray(x, dtype=np.float64)) / dt
