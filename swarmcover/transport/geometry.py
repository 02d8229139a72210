r"""Obstacles for planned paths: exact clearance of path *segments*, and smooth penalties.

A path is a polyline through time nodes; a robot sweeps every point of each segment, not only
the nodes. The clearance of a segment :math:`[a, b]` from a zone is the distance from the zone to
the nearest point of the segment (negative when the segment enters the zone):

- a disk (any dimension) of centre :math:`c` and radius :math:`r`: with
  :math:`t^* = \operatorname{clip}\big((c-a)\cdot(b-a)/|b-a|^2, 0, 1\big)` and
  :math:`p^* = a + t^*(b-a)`, the clearance is :math:`|p^* - c| - r`, exactly;
- a polygon (2-D; a rectangle is one): when the segment crosses no edge and neither end is inside,
  the distance between two segments is attained at an end point of one of them, so the clearance is
  :math:`\min\big(\operatorname{sd}(a), \operatorname{sd}(b), \min_v \operatorname{dist}(v, [a,b])\big)`
  over the polygon's vertices :math:`v`, exactly. A crossing segment gets the most negative signed
  distance of its end points and 16 interior samples.

The penalty the solver adds (weight :math:`w`, active below :math:`c_{on}`) is
:math:`w \sum (c_{on} - c)_+^2` over: every disk and segment (the exact clearance, with the envelope
gradient :math:`\partial c/\partial a = (1-t^*) n`, :math:`\partial c/\partial b = t^* n`); every
polygon and node; every polygon vertex and every segment (the distance from the vertex to the
segment, negative when the segment crosses both edges at the vertex: a segment cutting a corner is
pushed past the vertex); and three interior samples of every segment (they push a segment that crosses
deep out across the nearest edge).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..domain import Box, Disk, Polygon, Rectangle, Zone

__all__ = ["Obstacles"]

_SAMPLES = (0.25, 0.5, 0.75)
_EXACT_SAMPLES = np.linspace(0.0, 1.0, 18)[1:-1]


def _closest_on_segment(a: np.ndarray, b: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameter ``t`` ``(...)`` and point ``(..., d)`` of segment ``[a, b]`` nearest to ``p`` (broadcast)."""
    ab = b - a
    den = np.einsum("...k,...k->...", ab, ab)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(den > 0, np.einsum("...k,...k->...", p - a, ab) / np.where(den > 0, den, 1.0), 0.0)
    t = np.clip(t, 0.0, 1.0)
    return t, a + t[..., None] * ab


def _unit(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Norms ``(...)`` and unit vectors ``(..., d)``; a zero vector gets the first axis' direction."""
    r = np.linalg.norm(v, axis=-1)
    safe = r > 1e-300
    u = np.where(safe[..., None], v / np.where(safe, r, 1.0)[..., None], 0.0)
    if not np.all(safe):
        e = np.zeros(v.shape[-1])
        e[-1] = 1.0
        u[~safe] = e
    return r, u


class _Poly:
    """A 2-D polygon's arrays: vertices ``(m, 2)`` and the edges that follow them."""

    def __init__(self, vertices: np.ndarray) -> None:
        self.v = np.asarray(vertices, dtype=np.float64)
        self.w = np.roll(self.v, -1, axis=0)

    def contains(self, p: np.ndarray) -> np.ndarray:
        a, b = self.v, self.w
        x, y = p[..., :1], p[..., 1:]
        crosses = (a[:, 1] > y) != (b[:, 1] > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / (b[:, 1] - a[:, 1])
        return (np.count_nonzero(crosses & (x < xint), axis=-1) % 2) == 1

    def sd(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distance ``(n,)`` (negative inside) and its gradient ``(n, 2)``."""
        _, q = _closest_on_segment(self.v[None], self.w[None], p[:, None, :])
        r, u = _unit(p[:, None, :] - q)
        k = np.argmin(r, axis=1)
        idx = np.arange(p.shape[0])
        sign = np.where(self.contains(p), -1.0, 1.0)
        return sign * r[idx, k], sign[:, None] * u[idx, k]

    def crossed(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Whether each segment ``[a_i, b_i]`` touches or crosses an edge or lies inside ``(n,)``."""
        return self.edge_hits(a, b).any(axis=1) | self.contains(a)

    def corner_cuts(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(n, m)``: segment ``i`` crosses both edges next to vertex ``k`` (it cuts that corner)."""
        hits = self.edge_hits(a, b)
        return hits & np.roll(hits, 1, axis=1)

    def edge_hits(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``(n, m)``: segment ``i`` touches or crosses edge ``k`` (from vertex ``k`` to ``k+1``)."""

        def orient(p, q, r):
            return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (
                r[..., 0] - p[..., 0]
            )

        A, B = a[:, None, :], b[:, None, :]
        C, D = self.v[None], self.w[None]
        d1, d2 = orient(C, D, A), orient(C, D, B)
        d3, d4 = orient(A, B, C), orient(A, B, D)
        return (d1 * d2 <= 0) & (d3 * d4 <= 0)


class Obstacles:
    """The zones a plan must clear, with a required ``clearance`` (a robot's radius and margin).

    Parameters
    ----------
    zones : sequence of Disk, Rectangle or Polygon
        Disks in any dimension; rectangles and polygons in 2-D.
    dim : int
    clearance : float
        Required distance from every zone to every point of every path segment.
    """

    def __init__(self, zones: Sequence[Zone], dim: int, clearance: float = 0.0) -> None:
        if not np.isfinite(clearance) or clearance < 0:
            raise ValueError(f"clearance must be finite and >= 0, got {clearance!r}")
        self.dim, self.clearance = dim, float(clearance)
        self.zones = tuple(zones)
        centres, radii, polys = [], [], []
        for z in self.zones:
            if not isinstance(z, Zone):
                raise ValueError(f"obstacles must be Disk, Rectangle or Polygon, got {type(z).__name__}")
            if z.dim != dim:
                raise ValueError(f"obstacle {z!r} is {z.dim}-D but the plan is {dim}-D")
            if isinstance(z, Disk):
                centres.append(z.center)
                radii.append(z.radius)
            elif isinstance(z, Rectangle) and dim == 1:
                centres.append(((z.lo[0] + z.hi[0]) / 2,))
                radii.append((z.hi[0] - z.lo[0]) / 2)
            elif isinstance(z, Rectangle) and dim == 2:
                (x0, y0), (x1, y1) = z.lo, z.hi
                polys.append(_Poly(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])))
            elif isinstance(z, Polygon):
                polys.append(_Poly(np.asarray(z.vertices)))
            else:
                raise ValueError(f"a {type(z).__name__} obstacle in {dim}-D is not supported (disks only)")
        self.centres = np.asarray(centres, dtype=np.float64).reshape(-1, dim)
        self.radii = np.asarray(radii, dtype=np.float64)
        self.polys = polys

    def __bool__(self) -> bool:
        return bool(self.zones)

    @property
    def size(self) -> float:
        """The smallest obstacle's size (a radius or half the shortest side), inf without obstacles."""
        sizes = list(self.radii)
        for p in self.polys:
            ext = p.v.max(axis=0) - p.v.min(axis=0)
            sizes.append(float(ext.min()) / 2)
        return float(min(sizes)) if sizes else float("inf")

    # -- exact checks ------------------------------------------------------------------------
    def point_clearance(self, p: np.ndarray) -> np.ndarray:
        """Signed distance ``(n,)`` of points to the nearest zone (inf without zones)."""
        out = np.full(p.shape[0], np.inf)
        if self.radii.size:
            d = np.linalg.norm(p[:, None, :] - self.centres[None], axis=2) - self.radii
            out = np.minimum(out, d.min(axis=1))
        for poly in self.polys:
            out = np.minimum(out, poly.sd(p)[0])
        return out

    def segment_clearance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact clearance ``(n,)`` of segments ``[a_i, b_i]`` from the nearest zone (see module doc)."""
        out = np.full(a.shape[0], np.inf)
        if self.radii.size:
            _, q = _closest_on_segment(a[:, None, :], b[:, None, :], self.centres[None])
            d = np.linalg.norm(q - self.centres[None], axis=2) - self.radii
            out = np.minimum(out, d.min(axis=1))
        for poly in self.polys:
            sa, sb = poly.sd(a)[0], poly.sd(b)[0]
            _, q = _closest_on_segment(a[:, None, :], b[:, None, :], poly.v[None])
            dv = np.linalg.norm(q - poly.v[None], axis=2).min(axis=1)
            clear = np.minimum(np.minimum(sa, sb), dv)
            hit = poly.crossed(a, b)
            if np.any(hit):
                ah, bh = a[hit], b[hit]
                inner = [poly.sd(ah + t * (bh - ah))[0] for t in _EXACT_SAMPLES]
                _, qh = _closest_on_segment(ah[:, None, :], bh[:, None, :], poly.v[None])
                rv = np.linalg.norm(qh - poly.v[None], axis=2)
                cut = np.where(poly.corner_cuts(ah, bh), -rv, np.inf).min(axis=1)
                deepest = np.minimum(np.minimum(np.minimum(sa[hit], sb[hit]), np.min(inner, axis=0)), cut)
                clear[hit] = np.minimum(deepest, 0.0)
            out = np.minimum(out, clear)
        return out

    def path_clearance(self, nodes: np.ndarray) -> np.ndarray:
        """Clearance ``(N,)`` of each robot's whole path, ``nodes`` of shape ``(K+1, N, d)``."""
        if not self:
            return np.full(nodes.shape[1], np.inf)
        a = nodes[:-1].reshape(-1, self.dim)
        b = nodes[1:].reshape(-1, self.dim)
        return self.segment_clearance(a, b).reshape(nodes.shape[0] - 1, -1).min(axis=0)

    # -- the smooth penalty ------------------------------------------------------------------
    def penalty(self, nodes: np.ndarray, c_on: float) -> tuple[float, np.ndarray]:
        r""":math:`\sum (c_{on} - c)_+^2` over the terms in the module doc, and its gradient with
        respect to ``nodes`` ``(K+1, N, d)``."""
        grad = np.zeros_like(nodes)
        total = 0.0
        if not self:
            return total, grad
        a, b = nodes[:-1], nodes[1:]
        ga, gb = grad[:-1], grad[1:]
        if self.radii.size:
            t, q = _closest_on_segment(a[..., None, :], b[..., None, :], self.centres)
            r, n = _unit(q - self.centres)
            short = np.maximum(c_on - (r - self.radii), 0.0)
            total += float(np.sum(short**2))
            coef = -2.0 * short
            ga += np.einsum("knz,knzd->knd", coef * (1 - t), n)
            gb += np.einsum("knz,knzd->knd", coef * t, n)
        flat = nodes.reshape(-1, self.dim)
        gflat = np.zeros_like(flat)
        seg_a, seg_b = a.reshape(-1, self.dim), b.reshape(-1, self.dim)
        g_a, g_b = np.zeros_like(seg_a), np.zeros_like(seg_b)
        lo_s, hi_s = np.minimum(seg_a, seg_b) - c_on, np.maximum(seg_a, seg_b) + c_on
        for poly in self.polys:
            # only what comes within c_on of the polygon's bounding box can have a term
            plo, phi = poly.v.min(axis=0), poly.v.max(axis=0)
            near = np.flatnonzero(np.all((flat >= plo - c_on) & (flat <= phi + c_on), axis=1))
            if near.size:
                sd, g = poly.sd(flat[near])
                short = np.maximum(c_on - sd, 0.0)
                total += float(np.sum(short**2))
                gflat[near] += -2.0 * short[:, None] * g
            near = np.flatnonzero(np.all((lo_s <= phi) & (hi_s >= plo), axis=1))
            if not near.size:
                continue
            A, B = seg_a[near], seg_b[near]
            t, q = _closest_on_segment(A[:, None, :], B[:, None, :], poly.v)
            r, n = _unit(q - poly.v)
            # a segment that cuts a corner (crosses both edges at the vertex) has clearance -r:
            # it grows as the segment moves to and past the vertex
            sign = np.where(poly.corner_cuts(A, B), -1.0, 1.0)
            short = np.maximum(c_on - sign * r, 0.0)
            total += float(np.sum(short**2))
            coef = -2.0 * short * sign
            g_a[near] += np.einsum("sz,szd->sd", coef * (1 - t), n)
            g_b[near] += np.einsum("sz,szd->sd", coef * t, n)
            for w in _SAMPLES:
                sd, g = poly.sd((1 - w) * A + w * B)
                short = np.maximum(c_on - sd, 0.0)
                total += float(np.sum(short**2))
                gs = -2.0 * short[:, None] * g
                g_a[near] += (1 - w) * gs
                g_b[near] += w * gs
        if self.polys:
            grad += gflat.reshape(grad.shape)
            ga += g_a.reshape(ga.shape)
            gb += g_b.reshape(gb.shape)
        return total, grad

    # -- waypoints for shortest paths ----------------------------------------------------------
    def rings(self, offset: float, per_disk: int = 32) -> np.ndarray:
        """Waypoints around every zone whose chords clear it by ``offset`` ``(G, d)`` (2-D)."""
        pts = []
        for c, r in zip(self.centres, self.radii, strict=True):
            ang = 2 * np.pi * (np.arange(per_disk) + 0.5) / per_disk
            rad = (r + offset) / np.cos(np.pi / per_disk)
            pts.append(c + rad * np.stack([np.cos(ang), np.sin(ang)], axis=1))
        for poly in self.polys:
            prev, nxt = np.roll(poly.v, 1, axis=0), poly.w
            e1 = _unit(poly.v - prev)[1]
            e2 = _unit(nxt - poly.v)[1]
            area = 0.5 * np.sum(poly.v[:, 0] * nxt[:, 1] - nxt[:, 0] * poly.v[:, 1])
            # outward normals of the two edges at each vertex (counter-clockwise: rotate right)
            rot = np.array([[0.0, 1.0], [-1.0, 0.0]]) if area > 0 else np.array([[0.0, -1.0], [1.0, 0.0]])
            n1, n2 = e1 @ rot.T, e2 @ rot.T
            # each vertex: a point off each of its two edges and one on the bisector (a round-off corner)
            bis = _unit(n1 + n2)[1]
            pts.extend(
                [poly.v + 1.05 * offset * n1, poly.v + 1.05 * offset * n2, poly.v + 1.5 * offset * bis]
            )
        return np.concatenate(pts, axis=0) if pts else np.zeros((0, self.dim))


def box_penalty(box: Box, nodes: np.ndarray) -> tuple[float, np.ndarray]:
    r""":math:`\sum (l - x)_+^2 + (x - u)_+^2` over the nodes' coordinates, and its gradient."""
    lo_out = np.maximum(box.lo - nodes, 0.0)
    hi_out = np.maximum(nodes - box.hi, 0.0)
    return float(np.sum(lo_out**2) + np.sum(hi_out**2)), 2.0 * (hi_out - lo_out)
