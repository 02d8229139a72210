"""Exact shortest paths around disjoint disks in the plane (tangent graph), for planner tests.

Independent of :mod:`swarmcover.transport.routes` (which rings disks with waypoints): the nodes are
the tangent points from the two ends to every circle and the bitangents between circles, joined by
straight tangents that clear every disk and by arcs along each circle; Dijkstra finds the length.
"""

from __future__ import annotations

import heapq
import math

import numpy as np

__all__ = ["geodesic_length"]


def _clear(p, q, disks) -> bool:
    p, q = np.asarray(p), np.asarray(q)
    for c, r in disks:
        c = np.asarray(c)
        ab = q - p
        den = float(ab @ ab)
        t = 0.0 if den == 0 else min(1.0, max(0.0, float((c - p) @ ab) / den))
        if np.linalg.norm(p + t * ab - c) < r - 1e-9:
            return False
    return True


def _unit(a):
    return np.array([math.cos(a), math.sin(a)])


def geodesic_length(s, e, disks) -> float:
    """Length of the shortest path from ``s`` to ``e`` avoiding the open disks ``[(centre, r), ...]``."""
    s, e = np.asarray(s, float), np.asarray(e, float)
    if _clear(s, e, disks):
        return float(np.linalg.norm(e - s))
    pts: list[tuple[np.ndarray, int]] = [(s, -1), (e, -1)]  # (point, circle index or -1)
    edges: list[tuple[int, int, float]] = []

    def add(p, k):
        pts.append((p, k))
        return len(pts) - 1

    for k, (c, r) in enumerate(disks):
        c = np.asarray(c, float)
        for end in (0, 1):
            p = pts[end][0]
            d = np.linalg.norm(p - c)
            base, alpha = math.atan2(*(p - c)[::-1]), math.acos(min(1.0, r / d))
            for sgn in (1, -1):
                t = c + r * _unit(base + sgn * alpha)
                i = add(t, k)
                if _clear(p, t, disks):
                    edges.append((end, i, float(np.linalg.norm(t - p))))
    for k1, (c1, r1) in enumerate(disks):
        for k2, (c2, r2) in enumerate(disks):
            if k2 <= k1:
                continue
            c1, c2 = np.asarray(c1, float), np.asarray(c2, float)
            dd = np.linalg.norm(c2 - c1)
            g = math.atan2(*(c2 - c1)[::-1])
            pairs = []
            b = math.acos((r1 - r2) / dd)
            pairs += [(c1 + r1 * _unit(g + sg * b), c2 + r2 * _unit(g + sg * b)) for sg in (1, -1)]
            b = math.acos((r1 + r2) / dd)
            pairs += [(c1 + r1 * _unit(g + sg * b), c2 + r2 * _unit(g + sg * b + math.pi)) for sg in (1, -1)]
            for p1, p2 in pairs:
                if _clear(p1, p2, disks):
                    i, j = add(p1, k1), add(p2, k2)
                    edges.append((i, j, float(np.linalg.norm(p2 - p1))))
    for k, (c, r) in enumerate(disks):
        c = np.asarray(c, float)
        on = [i for i, (_, kk) in enumerate(pts) if kk == k]
        for a in on:
            for b in on:
                if a < b:
                    ta = math.atan2(*(pts[a][0] - c)[::-1])
                    tb = math.atan2(*(pts[b][0] - c)[::-1])
                    dth = abs(ta - tb) % (2 * math.pi)
                    edges.append((a, b, r * min(dth, 2 * math.pi - dth)))
    adj: dict[int, list[tuple[int, float]]] = {}
    for a, b, w in edges:
        adj.setdefault(a, []).append((b, w))
        adj.setdefault(b, []).append((a, w))
    best = {0: 0.0}
    heap = [(0.0, 0)]
    while heap:
        d, u = heapq.heappop(heap)
        if u == 1:
            return d
        if d > best.get(u, math.inf):
            continue
        for v, w in adj.get(u, ()):
            if d + w < best.get(v, math.inf):
                best[v] = d + w
                heapq.heappush(heap, (d + w, v))
    return math.inf
