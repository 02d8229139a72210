"""The law of ``docs/protocol.md`` ("What the agent computes"), for ``protocol_agent.py``: the
field's B-spline sampling, the patch coverage rule, the box's reflection group, the blob law, the
saturation and the separation barrier. numpy only."""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["covers", "images", "law", "sample", "sat", "separation"]


def sample(xs: np.ndarray, coef: np.ndarray, origin: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(W, ∇W) at the points ``xs`` ``(n, d)``, as ``(n, d + 1)``: the page's cubic B-spline weights
    per axis, the 4^d nodes around each point."""
    u = (xs - origin) / h
    i = np.floor(u).astype(int)
    t = u - i
    w = np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=-1) / 6
    d = xs.shape[1]
    out = np.zeros((len(xs), coef.shape[-1]))
    for q in itertools.product(range(4), repeat=d):
        weight = np.prod([w[:, a, q[a]] for a in range(d)], axis=0)
        out += weight[:, None] * coef[tuple(i[:, a] - 1 + q[a] for a in range(d))]
    return out


def covers(x: np.ndarray, half: float, origin: np.ndarray, h: np.ndarray, shape) -> bool:
    lo = np.floor((x - half - origin) / h)
    hi = np.floor((x + half - origin) / h)
    return bool(np.all(lo >= 1) and np.all(hi <= np.asarray(shape) - 3))


def images(pts: np.ndarray, x: np.ndarray, r: float, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images of ``pts`` ``(n, d)`` under the box's reflection group within r of x (not the points
    themselves), and the row of ``pts`` each is an image of: per axis ``p + 2kL`` and
    ``2 lo - p + 2kL``; an image takes one of them on every axis."""
    per_axis = []
    for a, ((lo, hi), xa) in enumerate(zip(bounds, x, strict=True)):
        size = hi - lo
        kmax = math.ceil((r + abs(xa - lo)) / (2 * size)) + 1
        opts = []
        for k in range(-kmax, kmax + 1):
            opts.append((pts[:, a] + 2 * k * size, k != 0))
            opts.append((2 * lo - pts[:, a] + 2 * k * size, True))
        # an option no point brings within r of x on this axis cannot be part of an image within r
        per_axis.append([(c, moved) for c, moved in opts if np.any(np.abs(c - xa) < r)])
    out, rows = [np.empty((0, len(x)))], [np.empty(0, dtype=int)]
    for combo in itertools.product(*per_axis):
        if not any(moved for _, moved in combo):
            continue  # every axis unmoved: the points themselves
        img = np.stack([c for c, _ in combo], axis=1)
        near = np.sum((img - x) ** 2, axis=1) < r * r
        out.append(img[near])
        rows.append(np.flatnonzero(near))
    return np.concatenate(out), np.concatenate(rows)


def law(x, m, others, masses, eps, cutoff, field, bounds) -> np.ndarray:
    """Σ_j m_j φ(x − x_j) [(x − x_j)/(2ε²) W(mid) − ½ ∇W(mid)] over self, neighbours and images."""
    coef, origin, h = field
    d = len(x)
    r = cutoff * math.sqrt(2) * eps
    others = np.asarray(others, dtype=float).reshape(-1, d)
    masses = np.asarray(masses, dtype=float).reshape(-1)
    near = np.sum((others - x) ** 2, axis=1) < r * r
    everyone = np.vstack([others, x[None, :]])
    mass_all = np.append(masses, m)
    img, row = images(everyone, x, r, bounds)
    src = np.concatenate([x[None, :], others[near], img])
    msrc = np.concatenate([[m], masses[near], mass_all[row]])
    dx = x - src
    f = sample((x + src) / 2, coef, origin, h)
    phi = (4 * math.pi * eps * eps) ** (-d / 2) * np.exp(-np.sum(dx * dx, axis=1) / (4 * eps * eps))
    terms = dx / (2 * eps * eps) * f[:, :1] - 0.5 * f[:, 1:]
    return np.sum((msrc * phi)[:, None] * terms, axis=0)


def sat(v: np.ndarray, vmax: float) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v * (vmax / n) if n > vmax else v


def separation(x, me: int, ids, others, r_min: float, vmax: float) -> np.ndarray:
    v = np.zeros(len(x))
    for b, xb in zip(ids, others, strict=True):
        dx = x - xb
        r = float(np.linalg.norm(dx))
        if r >= 2 * r_min:
            continue
        s = 50.0 if r <= r_min else min((2 * r_min - r) ** 2 / (r_min * (r - r_min)), 50.0)
        if r < 1e-9 * r_min:
            lo, hi = min(me, b), max(me, b)
            th = 2 * math.pi * ((lo * 2654435761 + hi * 40503 + 12345) % 65536) / 65536
            u = np.array([1.0]) if len(x) == 1 else np.array([math.cos(th), math.sin(th)])
            u = u if me < b else -u
        else:
            u = dx / r
        v += vmax * s * u
    return v
