"""Shortest routes around obstacles: the planner's warm start and its assignment costs.

Waypoints ring every zone (:meth:`Obstacles.rings`, chords that clear it); two points are joined
when the segment between them clears every zone (:meth:`Obstacles.segment_clearance`); the
all-pairs shortest paths between waypoints come from :func:`scipy.sparse.csgraph.shortest_path`,
and a start-to-end length is the min-plus product through the waypoints visible from each end.
With 32 waypoints a disk the routes are about 0.5 % longer than the true geodesics (the ring's
chords); they only seed the solver, which then pulls the paths taut.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.csgraph import shortest_path

from .geometry import Obstacles

__all__ = ["Roadmap", "resample"]

_CHUNK = 64


class Roadmap:
    """Visibility graph of waypoints around ``obstacles`` inside ``box`` (2-D, or none at all).

    Parameters
    ----------
    obstacles : Obstacles
    offset : float
        Waypoint rings clear every zone by ``obstacles.clearance + offset``.
    inside : callable, optional
        Mask ``(G,) `` of waypoints to keep (the planner passes "inside the box").
    """

    def __init__(self, obstacles: Obstacles, offset: float, inside=None) -> None:
        self.obs = obstacles
        self.need = obstacles.clearance
        pts = obstacles.rings(obstacles.clearance + offset) if obstacles else np.zeros((0, obstacles.dim))
        if pts.size:
            keep = obstacles.point_clearance(pts) >= self.need
            if inside is not None:
                keep &= inside(pts)
            pts = pts[keep]
        self.points = pts
        g = len(pts)
        if g:
            vis = self._visible(np.repeat(pts, g, axis=0), np.tile(pts, (g, 1))).reshape(g, g)
            w = np.where(vis, np.linalg.norm(pts[:, None] - pts[None], axis=2), 0.0)
            np.fill_diagonal(w, 0.0)
            self.dist, self.pred = shortest_path(w, method="D", directed=False, return_predecessors=True)
        else:
            self.dist = np.zeros((0, 0))
            self.pred = np.zeros((0, 0), dtype=np.int64)

    def _visible(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if not self.obs:
            return np.ones(a.shape[0], dtype=bool)
        out = np.empty(a.shape[0], dtype=bool)
        for i in range(0, a.shape[0], 65536):
            # strictly clear: two zones that touch leave no gap to pass through
            out[i : i + 65536] = self.obs.segment_clearance(a[i : i + 65536], b[i : i + 65536]) > self.need
        return out

    def _to_points(self, x: np.ndarray) -> np.ndarray:
        """Lengths ``(n, G)`` from points to waypoints, inf where not visible."""
        n, g = x.shape[0], len(self.points)
        if g == 0:
            return np.zeros((n, 0))
        vis = self._visible(np.repeat(x, g, axis=0), np.tile(self.points, (n, 1))).reshape(n, g)
        return np.where(vis, np.linalg.norm(x[:, None] - self.points[None], axis=2), np.inf)

    def lengths(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Shortest route lengths ``(n, m)`` from every start to every end (inf: unreachable)."""
        n, m = starts.shape[0], ends.shape[0]
        direct = np.linalg.norm(starts[:, None] - ends[None], axis=2)
        vis = self._visible(np.repeat(starts, m, axis=0), np.tile(ends, (n, 1))).reshape(n, m)
        out = np.where(vis, direct, np.inf)
        if len(self.points) == 0 or vis.all():
            return out
        a = self._to_points(starts)
        b = self._to_points(ends)
        for i in range(0, n, _CHUNK):
            c = np.min(a[i : i + _CHUNK, :, None] + self.dist[None], axis=1)  # (chunk, G)
            via = np.min(c[:, :, None] + b.T[None], axis=1)  # (chunk, m)
            out[i : i + _CHUNK] = np.minimum(out[i : i + _CHUNK], via)
        return out

    def route(self, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The shortest route's corners ``(k, d)`` from ``start`` to ``end`` (both included)."""
        if self._visible(start[None], end[None])[0] or len(self.points) == 0:
            return np.stack([start, end])
        a = self._to_points(start[None])[0]
        b = self._to_points(end[None])[0]
        total = a[:, None] + self.dist + b[None, :]
        g1, g2 = np.unravel_index(np.argmin(total), total.shape)
        if not np.isfinite(total[g1, g2]):
            raise ValueError(f"no route clears the obstacles from {start.tolist()} to {end.tolist()}")
        chain = [g2]
        while chain[-1] != g1:
            chain.append(self.pred[g1, chain[-1]])
        return np.concatenate([start[None], self.points[chain[::-1]], end[None]])


def resample(corners: np.ndarray, nodes: int) -> np.ndarray:
    """``nodes`` points ``(nodes, d)`` at equal arc length along the polyline ``corners``."""
    seg = np.linalg.norm(np.diff(corners, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if arc[-1] <= 0:
        return np.repeat(corners[:1], nodes, axis=0)
    s = np.linspace(0.0, arc[-1], nodes)
    return np.stack([np.interp(s, arc, corners[:, k]) for k in range(corners.shape[1])], axis=1)
