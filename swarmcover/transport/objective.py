"""One evaluation of the planner's objective and its gradient (see :mod:`.solver` for the maths)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..domain import Box
from .geometry import Obstacles, box_penalty
from .terminal import TerminalTerm, gauss_sum

__all__ = ["Problem"]


@dataclass
class Problem:
    """Everything one objective evaluation needs (built once by :func:`plan`)."""

    x0: np.ndarray
    m: np.ndarray
    term: TerminalTerm
    steps: int
    order: int
    obstacles: Obstacles
    box: Box | None
    r_min: float
    v0: np.ndarray
    v_end: np.ndarray
    ends_only: bool
    c_on: float
    w_obs: float
    w_sep: float

    @property
    def shape(self) -> tuple[int, ...]:
        n, d = self.x0.shape
        if self.ends_only:
            return (1, n, d)
        return (self.steps - (1 if self.order == 2 else 0), n, d)

    def nodes(self, z: np.ndarray) -> np.ndarray:
        """All nodes ``(K+1, N, d)`` from the unknowns."""
        free = z.reshape(self.shape)
        if self.ends_only:
            frac = np.linspace(0.0, 1.0, self.steps + 1)[:, None, None]
            return self.x0[None] + frac * (free[0] - self.x0)[None]
        parts = [self.x0[None], free]
        if self.order == 2:
            parts.append(free[-1:] + self.v_end[None] / self.steps)
        return np.concatenate(parts, axis=0)

    def energy(self, nodes: np.ndarray) -> tuple[float, np.ndarray]:
        """Kinetic (order 1) or acceleration (order 2) energy and its gradient w.r.t. nodes."""
        dt = 1.0 / self.steps
        mm = self.m[None, :, None]
        if self.order == 1:
            dx = np.diff(nodes, axis=0)
            e = float(np.sum(mm * dx * dx)) / dt
            g = np.zeros_like(nodes)
            g[1:] += 2 * mm * dx / dt
            g[:-1] -= 2 * mm * dx / dt
            return e, g
        ghost = nodes[:1] - self.v0[None] * dt
        full = np.concatenate([ghost, nodes], axis=0)
        acc = full[2:] - 2 * full[1:-1] + full[:-2]
        e = float(np.sum(mm * acc * acc)) / dt**3
        gf = np.zeros_like(full)
        c = 2 * mm * acc / dt**3
        gf[2:] += c
        gf[1:-1] -= 2 * c
        gf[:-2] += c
        return e, gf[1:]

    def terminal(self, x: np.ndarray, s: float) -> tuple[float, np.ndarray]:
        """:math:`\\mathrm{MMD}^2` and its gradient w.r.t. the end points ``(N, d)``."""
        kxx, gxx = gauss_sum(x, x, self.m, s)
        c, gc = self.term.cross(x, s)
        val = float(self.m @ kxx - 2 * (self.m @ c) + self.term.self_energy(s))
        return val, 2 * self.m[:, None] * (gxx - gc)

    def separation(self, nodes: np.ndarray, r_on: float) -> tuple[float, np.ndarray]:
        g = np.zeros_like(nodes)
        total = 0.0
        for k in range(1, nodes.shape[0]):
            pairs = cKDTree(nodes[k]).query_pairs(r_on, output_type="ndarray")
            if not len(pairs):
                continue
            diff = nodes[k, pairs[:, 0]] - nodes[k, pairs[:, 1]]
            r = np.maximum(np.linalg.norm(diff, axis=1), 1e-300)
            short = r_on - r
            total += float(np.sum(short**2))
            gi = (-2 * short / r)[:, None] * diff
            np.add.at(g[k], pairs[:, 0], gi)
            np.add.at(g[k], pairs[:, 1], -gi)
        return total, g

    def objective(self, z: np.ndarray, s: float, lam: float, scale: float) -> tuple[float, np.ndarray]:
        nodes = self.nodes(z)
        e, g = self.energy(nodes)
        t, gt = self.terminal(nodes[-1], s)
        total = e + 0.5 * lam * t
        g[-1] += 0.5 * lam * gt
        if self.obstacles:
            p, gp = self.obstacles.penalty(nodes, self.c_on)
            total += self.w_obs * p
            g += self.w_obs * gp
        if self.box is not None:
            p, gp = box_penalty(self.box, nodes)
            total += self.w_obs * p
            g += self.w_obs * gp
        if self.r_min > 0:
            p, gp = self.separation(nodes, self.r_min * 1.02)
            total += self.w_sep * p
            g += self.w_sep * gp
        return total / scale, self._pull_back(g) / scale

    def _pull_back(self, g: np.ndarray) -> np.ndarray:
        """The gradient w.r.t. the unknowns from the gradient w.r.t. all nodes."""
        if self.ends_only:
            frac = np.linspace(0.0, 1.0, self.steps + 1)[:, None, None]
            return np.sum(frac * g, axis=0).ravel()
        free = g[1:].copy() if self.order == 1 else g[1:-1].copy()
        if self.order == 2:
            free[-1] += g[-1]
        return free.ravel()
