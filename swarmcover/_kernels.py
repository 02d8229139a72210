r"""Compiled kernels (numba): cubic B-spline sampling of the W field and the blob pair sums.

The pair sum of the blob law for targets ``i`` and sources ``j`` is

.. math::

    v_i \mathrel{+}= m_j\, \phi_{\sqrt2\varepsilon}(x_i - x_j)
        \Big[\frac{x_i - x_j}{2\varepsilon^2} W(m_{ij}) - \tfrac12 \nabla W(m_{ij})\Big],
    \qquad m_{ij} = \tfrac12 (x_i + x_j),

and the blob energy gains :math:`\tfrac12 m_i m_j \phi_{\sqrt2\varepsilon}(x_i-x_j) W(m_{ij})`.
With ``symmetric=True`` each listed pair is an unordered pair and both ends are updated.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

__all__ = ["accumulate_pairs", "cic_deposit", "cic_gather_gradient", "sample_field"]


@njit(cache=True, inline="always")
def _bspline_weights(t: float) -> tuple[float, float, float, float]:
    t2 = t * t
    t3 = t2 * t
    u = 1.0 - t
    return (
        u * u * u / 6.0,
        (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0,
        (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0,
        t3 / 6.0,
    )


@njit(cache=True, inline="always")
def _locate(x: float, o: float, ih: float, n: int) -> tuple[int, float]:
    u = (x - o) * ih
    i = int(np.floor(u))
    t = u - i
    if i < 1:
        i, t = 1, 0.0
    elif i > n - 3:
        i, t = n - 3, 1.0
    return i, t


@njit(cache=True)
def _sample_1d(coef, origin, ih, p, out):
    i, t = _locate(p[0], origin[0], ih[0], coef.shape[0])
    w0, w1, w2, w3 = _bspline_weights(t)
    for c in range(coef.shape[1]):
        out[c] = w0 * coef[i - 1, c] + w1 * coef[i, c] + w2 * coef[i + 1, c] + w3 * coef[i + 2, c]


@njit(cache=True)
def _sample_2d(coef, origin, ih, p, out):
    i, t = _locate(p[0], origin[0], ih[0], coef.shape[0])
    j, s = _locate(p[1], origin[1], ih[1], coef.shape[1])
    a = _bspline_weights(t)
    b = _bspline_weights(s)
    out[0] = 0.0
    out[1] = 0.0
    out[2] = 0.0
    for q in range(4):
        row = coef[i - 1 + q]
        acc0 = 0.0
        acc1 = 0.0
        acc2 = 0.0
        for r in range(4):
            cell = row[j - 1 + r]
            acc0 += b[r] * cell[0]
            acc1 += b[r] * cell[1]
            acc2 += b[r] * cell[2]
        out[0] += a[q] * acc0
        out[1] += a[q] * acc1
        out[2] += a[q] * acc2


@njit(cache=True)
def sample_field_1d(points, coef, origin, ih, out):
    """Sample a 1-D spline field at ``points (n, 1)`` into ``out (n, 2)``."""
    for k in range(points.shape[0]):
        _sample_1d(coef, origin, ih, points[k], out[k])


@njit(cache=True)
def sample_field_2d(points, coef, origin, ih, out):
    """Sample a 2-D spline field at ``points (n, 2)`` into ``out (n, 3)``."""
    for k in range(points.shape[0]):
        _sample_2d(coef, origin, ih, points[k], out[k])


def sample_field(points, coef, origin, ih, out):
    """Sample the spline field (``coef (n_1[, n_2], d + 1)``) at ``points (n, d)`` into ``out``."""
    (sample_field_1d if points.shape[1] == 1 else sample_field_2d)(points, coef, origin, ih, out)


@njit(cache=True, inline="always")
def _pair(xt, mt, xs, ms, i, j, symmetric, norm, inv4e2, inv2e2, buf, dx, vel, d):
    """The pair term once ``buf`` holds W, grad W at the midpoint; returns its energy."""
    r2 = 0.0
    for a in range(d):
        r2 += dx[a] * dx[a]
    g = norm * np.exp(-r2 * inv4e2)
    wmid = buf[0]
    fi = ms[j] * g
    for a in range(d):
        vel[i, a] += fi * (dx[a] * wmid * inv2e2 - 0.5 * buf[1 + a])
    e = 0.5 * mt[i] * ms[j] * g * wmid
    if symmetric:
        fj = mt[i] * g
        for a in range(d):
            vel[j, a] += fj * (-dx[a] * wmid * inv2e2 - 0.5 * buf[1 + a])
        e *= 2.0
    return e


@njit(cache=True)
def accumulate_pairs_1d(xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel):
    """1-D pair sums; see :func:`accumulate_pairs`."""
    buf = np.empty(2)
    mid = np.empty(1)
    dx = np.empty(1)
    energy = 0.0
    for p in range(pi.shape[0]):
        i = pi[p]
        j = pj[p]
        dx[0] = xt[i, 0] - xs[j, 0]
        mid[0] = 0.5 * (xt[i, 0] + xs[j, 0])
        _sample_1d(coef, origin, ih, mid, buf)
        energy += _pair(xt, mt, xs, ms, i, j, symmetric, norm, inv4e2, inv2e2, buf, dx, vel, 1)
    return energy


@njit(cache=True)
def accumulate_pairs_2d(xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel):
    """2-D pair sums; see :func:`accumulate_pairs`."""
    buf = np.empty(3)
    mid = np.empty(2)
    dx = np.empty(2)
    energy = 0.0
    for p in range(pi.shape[0]):
        i = pi[p]
        j = pj[p]
        for a in range(2):
            dx[a] = xt[i, a] - xs[j, a]
            mid[a] = 0.5 * (xt[i, a] + xs[j, a])
        _sample_2d(coef, origin, ih, mid, buf)
        energy += _pair(xt, mt, xs, ms, i, j, symmetric, norm, inv4e2, inv2e2, buf, dx, vel, 2)
    return energy


@njit(cache=True, parallel=True)
def _accumulate_chunks_2d(
    xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel, nchunks
):
    """Split the pair list into ``nchunks`` parts run in parallel, each into its own buffer."""
    npairs = pi.shape[0]
    bufs = np.zeros((nchunks, vel.shape[0], vel.shape[1]))
    energies = np.zeros(nchunks)
    for c in prange(nchunks):
        lo = c * npairs // nchunks
        hi = (c + 1) * npairs // nchunks
        energies[c] = accumulate_pairs_2d(
            xt, mt, xs, ms, pi[lo:hi], pj[lo:hi], symmetric, norm, inv4e2, inv2e2, coef, origin, ih, bufs[c]
        )
    for c in range(nchunks):
        vel += bufs[c]
    return energies.sum()


#: pair lists longer than this run in parallel chunks (2-D)
PARALLEL_PAIRS = 50_000


def accumulate_pairs(xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel):
    """Add the pair terms of the blob law into ``vel``; return the pairs' blob energy.

    ``xt (nt, d)``, ``mt (nt,)`` targets; ``xs (ns, d)``, ``ms (ns,)`` sources; pair ``p`` is
    ``(pi[p], pj[p])``. ``norm = (4 pi eps^2)^(-d/2)``, ``inv4e2 = 1/(4 eps^2)``,
    ``inv2e2 = 1/(2 eps^2)``. ``symmetric``: each pair is unordered and both ends are updated.
    """
    threads = numba.get_num_threads()
    if xt.shape[1] == 2 and pi.shape[0] > PARALLEL_PAIRS and threads > 1:
        return _accumulate_chunks_2d(
            xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel, threads
        )
    kernel = accumulate_pairs_1d if xt.shape[1] == 1 else accumulate_pairs_2d
    return kernel(xt, mt, xs, ms, pi, pj, symmetric, norm, inv4e2, inv2e2, coef, origin, ih, vel)


@njit(cache=True, inline="always")
def _cic_axis(x: float, lo: float, h: float, n: int) -> tuple[int, int, float, bool, bool]:
    """Cell-centred linear weights on one axis with half-sample mirror walls.

    Returns the two node indices, the weight of the second, and whether each index was mirrored.
    """
    u = (x - lo) / h - 0.5
    i = int(np.floor(u))
    t = u - i
    i0, i1 = i, i + 1
    f0 = False
    f1 = False
    if i0 < 0:
        i0, f0 = 0, True
    if i1 > n - 1:
        i1, f1 = n - 1, True
    if i1 < 0:
        i1, f1 = 0, True
    if i0 > n - 1:
        i0, f0 = n - 1, True
    return i0, i1, t, f0, f1


@njit(cache=True)
def cic_deposit(points, mass, lo, h, grid):
    """Deposit point masses on a cell-centred grid (1-D or 2-D) with mirror walls."""
    d = points.shape[1]
    for k in range(points.shape[0]):
        i0, i1, t, _, _ = _cic_axis(points[k, 0], lo[0], h[0], grid.shape[0])
        if d == 1:
            grid[i0, 0] += mass[k] * (1.0 - t)
            grid[i1, 0] += mass[k] * t
        else:
            j0, j1, s, _, _ = _cic_axis(points[k, 1], lo[1], h[1], grid.shape[1])
            grid[i0, j0] += mass[k] * (1.0 - t) * (1.0 - s)
            grid[i1, j0] += mass[k] * t * (1.0 - s)
            grid[i0, j1] += mass[k] * (1.0 - t) * s
            grid[i1, j1] += mass[k] * t * s


@njit(cache=True)
def cic_gather_gradient(points, lo, h, grads, out):
    """Interpolate a gradient field ``grads (d, n_1[, n_2])`` at points, linear weights.

    A gradient is odd across a mirror wall: the component normal to a wall changes sign at a
    mirrored node.
    """
    d = points.shape[1]
    for k in range(points.shape[0]):
        i0, i1, t, fi0, fi1 = _cic_axis(points[k, 0], lo[0], h[0], grads.shape[1])
        if d == 1:
            g0 = grads[0, i0, 0] * (-1.0 if fi0 else 1.0)
            g1 = grads[0, i1, 0] * (-1.0 if fi1 else 1.0)
            out[k, 0] = (1.0 - t) * g0 + t * g1
        else:
            j0, j1, s, fj0, fj1 = _cic_axis(points[k, 1], lo[1], h[1], grads.shape[2])
            sx0 = -1.0 if fi0 else 1.0
            sx1 = -1.0 if fi1 else 1.0
            sy0 = -1.0 if fj0 else 1.0
            sy1 = -1.0 if fj1 else 1.0
            w00 = (1.0 - t) * (1.0 - s)
            w10 = t * (1.0 - s)
            w01 = (1.0 - t) * s
            w11 = t * s
            out[k, 0] = (
                w00 * sx0 * grads[0, i0, j0]
                + w10 * sx1 * grads[0, i1, j0]
                + w01 * sx0 * grads[0, i0, j1]
                + w11 * sx1 * grads[0, i1, j1]
            )
            out[k, 1] = (
                w00 * sy0 * grads[1, i0, j0]
                + w10 * sy0 * grads[1, i1, j0]
                + w01 * sy1 * grads[1, i0, j1]
                + w11 * sy1 * grads[1, i1, j1]
            )
