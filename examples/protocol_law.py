"""The law of ``docs/protocol.md`` ("What the agent computes"), for ``protocol_agent.py``: the
field's B-spline sampling, the patch coverage rule, the box's reflection group, the blob law, the
saturation and the separation barrier. numpy only."""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["covers", "images", "law", "sample", "sat", "separation"]


def sample(x: np.ndarray, coef: np.ndarray, origin: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(W, ∇W) at x: cubic B-spline weights per axis, the page's formula."""
    u = (x - origin) / h
    i = np.floor(u).astype(int)
    t = u - i
    w = [
        np.array([(1 - s) ** 3, 3 * s**3 - 6 * s**2 + 4, -3 * s**3 + 3 * s**2 + 3 * s + 1, s**3]) / 6
        for s in t
    ]
    out = np.zeros(coef.shape[-1])
    for q in itertools.product(range(4), repeat=len(x)):
        weight = np.prod([w[a][q[a]] for a in range(len(x))])
        out += weight * coef[tuple(i[a] - 1 + q[a] for a in range(len(x)))]
    return out


def covers(x: np.ndarray, half: float, origin: np.ndarray, h: np.ndarray, shape) -> bool:
    lo = np.floor((x - half - origin) / h)
    hi = np.floor((x + half - origin) / h)
    return bool(np.all(lo >= 1) and np.all(hi <= np.asarray(shape) - 3))


def images(pts: np.ndarray, x: np.ndarray, r: float, bounds: np.ndarray) -> np.ndarray:
    """Images of ``pts`` under the box's reflection group within r of x (not the points themselves)."""
    per_axis = []
    for (lo, hi), xa in zip(bounds, x, strict=True):
        size = hi - lo
        kmax = math.ceil((r + abs(xa - lo)) / (2 * size)) + 1
        opts = []
        for k in range(-kmax, kmax + 1):
            opts.append((1.0, 2 * k * size, k != 0))
            opts.append((-1.0, 2 * lo + 2 * k * size, True))
        per_axis.append(opts)
    out = []
    for combo in itertools.product(*per_axis):
        if not any(c[2] for c in combo):
            continue
        sign = np.array([c[0] for c in combo])
        off = np.array([c[1] for c in combo])
        for p in pts:
            img = sign * p + off
            if np.sum((img - x) ** 2) < r * r:
                out.append(img)
    return np.array(out).reshape(-1, len(x))


def law(x, m, others, masses, eps, cutoff, field, bounds) -> np.ndarray:
    """Σ_j m_j φ(x − x_j) [(x − x_j)/(2ε²) W(mid) − ½ ∇W(mid)] over self, neighbours and images."""
    coef, origin, h = field
    d = len(x)
    r = cutoff * math.sqrt(2) * eps
    near = [k for k in range(len(others)) if np.sum((others[k] - x) ** 2) < r * r]
    src = [x] + [others[k] for k in near]
    msrc = [m] + [masses[k] for k in near]
    everyone = np.vstack([others, x[None, :]]) if len(others) else x[None, :]
    mass_all = [*masses, m]
    for p, mp in zip(everyone, mass_all, strict=True):
        for img in images(p[None, :], x, r, bounds):
            src.append(img)
            msrc.append(mp)
    v = np.zeros(d)
    for xj, mj in zip(src, msrc, strict=True):
        dx = x - xj
        f = sample((x + xj) / 2, coef, origin, h)
        phi = (4 * math.pi * eps * eps) ** (-d / 2) * math.exp(-float(dx @ dx) / (4 * eps * eps))
        v += mj * phi * (dx / (2 * eps * eps) * f[0] - 0.5 * f[1:])
    return v


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
