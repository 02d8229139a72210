"""What the planner returns: every robot's path on a time base, and the solver's record."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Plan", "PlanInfeasible", "StageRecord"]


class PlanInfeasible(RuntimeError):
    """The solver could not make every segment clear the obstacles (or every pair keep ``r_min``)."""


@dataclass(frozen=True)
class StageRecord:
    """One annealing stage (or one continuation of the obstacle / separation weights)."""

    eps: float
    penalty: float
    iterations: int
    evaluations: int
    objective: float
    cost: float
    mmd: float
    clearance: float
    separation: float
    seconds: float
    message: str


@dataclass(frozen=True)
class Plan:
    r"""Planned paths.

    Attributes
    ----------
    times : ndarray, shape (K+1,)
        Time nodes in seconds from the start, ``0 .. duration``.
    paths : ndarray, shape (K+1, N, d)
        Every robot's position at every time node; between nodes a robot moves in a straight line
        at constant speed.
    masses : ndarray, shape (N,)
        Each robot's share of the fleet (sum 1).
    order : int
        1 (velocity control, kinetic energy) or 2 (acceleration control).
    cost : float
        The control energy on the *unit* time base: :math:`\sum_i m_i \int_0^1 |\dot x_i|^2` for
        order 1 (comparable with the exact optimal-transport cost :math:`W_2^2`), or
        :math:`\sum_i m_i \int_0^1 |\ddot x_i|^2` for order 2.
    kinetic : float
        :math:`\sum_i m_i \int_0^1 |\dot x_i|^2` on the unit time base (equal to ``cost`` at order 1).
    misfit : float
        :math:`\mathrm{MMD}_s` between the end points and the target at the final mollifier.
    clearance : float
        The smallest exact clearance of any path segment from any obstacle (inf without obstacles).
    separation : float
        The smallest distance between two robots at any time node (inf for one robot).
    duration : float
        Seconds from the first node to the last.
    eps : float
        The final mollifier width.
    stages : tuple of StageRecord
    seconds : float
        Wall time the planner took.
    """

    times: np.ndarray
    paths: np.ndarray
    masses: np.ndarray
    order: int
    cost: float
    kinetic: float
    misfit: float
    clearance: float
    separation: float
    duration: float
    eps: float
    stages: tuple[StageRecord, ...] = field(default=())
    seconds: float = 0.0

    @property
    def n(self) -> int:
        """Number of robots."""
        return int(self.paths.shape[1])

    @property
    def ends(self) -> np.ndarray:
        """End positions ``(N, d)``."""
        return self.paths[-1]

    @property
    def lengths(self) -> np.ndarray:
        """Path length of every robot ``(N,)``."""
        return np.linalg.norm(np.diff(self.paths, axis=0), axis=2).sum(axis=0)

    @property
    def velocities(self) -> np.ndarray:
        """Velocity on every segment ``(K, N, d)`` in units per second."""
        return np.diff(self.paths, axis=0) / np.diff(self.times)[:, None, None]

    @property
    def peak_speed(self) -> float:
        """The fastest segment of any robot, units per second."""
        return float(np.linalg.norm(self.velocities, axis=2).max()) if self.paths.shape[0] > 1 else 0.0

    def position(self, t: float) -> np.ndarray:
        """Every robot's planned position ``(N, d)`` at time ``t`` seconds (clamped to the plan)."""
        t = float(np.clip(t, self.times[0], self.times[-1]))
        k = int(np.clip(np.searchsorted(self.times, t, side="right") - 1, 0, len(self.times) - 2))
        span = self.times[k + 1] - self.times[k]
        u = 0.0 if span <= 0 else (t - self.times[k]) / span
        return (1 - u) * self.paths[k] + u * self.paths[k + 1]
