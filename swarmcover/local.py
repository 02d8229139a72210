r"""One agent's law, as an agent process runs it: light imports (numpy only), no compiled code.

:func:`local_velocity` is the closed form of :class:`swarmcover.BlobLaw` for one agent, summed over
itself, its neighbours within the radius :math:`c\sqrt2\,\varepsilon` and (walls given) the mirror
images across the walls of both,

.. math::

    v = \sum_j m_j\, \phi_{\sqrt2\varepsilon}(x - x_j)
        \Big[\frac{x - x_j}{2\varepsilon^2} W(m_j) - \frac12 \nabla W(m_j)\Big],
    \qquad m_j = \tfrac12 (x + x_j),

with :math:`W`, :math:`\nabla W` sampled from cubic B-spline coefficients (the whole field of
:class:`~swarmcover.field.SmoothedReciprocal`, or a patch of it sent by a body).

Three kernels compute the pair sum and give the same numbers (to rounding; tests check):

- ``"c"``: the whole sum in one call of a small C extension (``swarmcover/_hotpath.c``, built at
  install when a C compiler is present; :func:`c_kernel_available` says whether it was). An agent
  wakes every control period with cold caches, where each numpy call costs tens of microseconds
  (``benchmarks/tick_cost.py``); one call then costs far less than the dozens the numpy kernel makes.
- ``"numpy"``: vectorised over the neighbours, no compiled code of ours; a process that imports
  only numpy.
- ``"numba"``: the compiled kernel the fleet-wide law uses; loading numba and LLVM costs a process
  about 100 MB and 0.4 s, which matters when one machine runs hundreds of agent processes.

:func:`resolve_kernel` turns ``"auto"`` (the agents' default) into ``"c"`` where it was built and
``"numpy"`` elsewhere.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .domain import Box
from .kernels import KERNELS, c_available, hotpath, law_radius, resolve_kernel

__all__ = [
    "KERNELS",
    "c_kernel_available",
    "local_velocity",
    "near_images",
    "neighbor_bound",
    "patch_covers",
    "resolve_kernel",
    "sample_spline",
    "warm_local_velocity",
]

_c_velocity = hotpath("velocity")


def c_kernel_available() -> bool:
    """Whether the C kernel was built (:func:`swarmcover.kernels.c_available`)."""
    return c_available()


def near_images(
    pts: np.ndarray, x: np.ndarray, radius: float, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Mirror images of ``pts (k, d)`` across the walls of the box ``[lo, hi]`` (repeatedly: the
    reflection group, :math:`p + 2kL` and :math:`2\,lo - p + 2kL` per axis) that lie within
    ``radius`` of ``x``, the points themselves excluded. Returns the images ``(m, d)`` and, for
    each, the row of ``pts`` it mirrors ``(m,)``.

    Per axis, only the transforms that map the box to within ``radius`` of ``x`` are tried (two
    scalar comparisons each), so an agent farther than ``radius`` from every wall tries none and
    one near a single wall tries one."""
    d = pts.shape[1]
    per_axis = []
    for a in range(d):
        lo_a, hi_a, x_a = float(lo[a]), float(hi[a]), float(x[a])
        size = hi_a - lo_a
        if radius < size:  # the usual case: at most one mirror per wall, no translates
            opts = [(1.0, 0.0, False)]
            if x_a - lo_a < radius:
                opts.append((-1.0, 2.0 * lo_a, True))
            if hi_a - x_a < radius:
                opts.append((-1.0, 2.0 * hi_a, True))
            per_axis.append(opts)
            continue
        kmax = math.ceil((radius + size) / (2.0 * size)) + 1
        opts = []
        for k in range(-kmax, kmax + 1):
            s = 2.0 * k * size
            # (sign, offset, the image of the box under the transform, moved at all)
            for sign, off, ilo, ihi, moved in (
                (1.0, s, lo_a + s, hi_a + s, k != 0),
                (-1.0, 2.0 * lo_a + s, lo_a - size + s, lo_a + s, True),
            ):
                if max(ilo - x_a, 0.0, x_a - ihi) < radius:
                    opts.append((sign, off, moved))
        per_axis.append(opts)
    # every combination of the surviving transforms (the identity excepted) applied at once:
    # images (t, k, d) = sign * pts + offset, kept where within the radius of x
    combos = [c for c in itertools.product(*per_axis) if any(o[2] for o in c)]
    if not combos:
        return np.empty((0, d)), np.empty(0, dtype=np.intp)
    sign = np.array([[o[0] for o in c] for c in combos])
    off = np.array([[o[1] for o in c] for c in combos])
    images = pts * sign[:, None, :] + off[:, None, :]
    diff = images - x
    close = np.einsum("tkd,tkd->tk", diff, diff) < radius * radius
    hit = np.nonzero(close)
    return images[hit], hit[1]


def patch_covers(
    origin: np.ndarray, spacing: np.ndarray, shape: tuple[int, ...], center: np.ndarray, half_width: float
) -> bool:
    """Whether a spline patch (``shape`` nodes from ``origin``) can be sampled exactly everywhere
    within ``half_width`` of ``center``: cubic B-spline sampling at ``x`` uses nodes
    ``floor(u) - 1 .. floor(u) + 2`` with ``u = (x - origin) / spacing``. (Scalar arithmetic per
    axis: an agent asks this every tick, for one or two axes.)"""
    for o, h, n, c in zip(origin, spacing, shape, center, strict=True):
        o, h, c = float(o), float(h), float(c)
        if math.floor((c - half_width - o) / h) < 1 or math.floor((c + half_width - o) / h) > int(n) - 3:
            return False
    return True


# cubic B-spline weights of the four nodes floor(u) - 1 .. floor(u) + 2 as polynomials in the
# fractional part t: [1, t, t^2, t^3] @ _BASIS
_BASIS = np.array([[1, 4, 1, 0], [-3, 0, 3, 0], [3, -6, 3, 0], [-1, 3, -3, 1]], dtype=np.float64) / 6.0
_POWERS = np.arange(4.0)
_TAPS = np.arange(4)


def sample_spline(
    points: np.ndarray, coef: np.ndarray, origin: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    r"""Sample a cubic B-spline field at points (numpy; 1-D or 2-D).

    Parameters
    ----------
    points : ndarray, shape (m, d)
    coef : ndarray, shape (n_1, ..., n_d, c)
        Coefficients; node ``k`` sits at ``origin + k * spacing``.
    origin, spacing : ndarray, shape (d,)

    Returns
    -------
    ndarray, shape (m, c)
        :math:`\sum_k c_k \prod_a \beta_3(u_a - k_a)` with :math:`u = (x - o)/h`; points beyond
        the grid are clamped to its last cell, as the compiled kernel does.

    Notes
    -----
    Written for few array operations (an agent calls it every tick for about a hundred points,
    where each numpy call costs more than its arithmetic): the weights are one matrix product of
    the powers of the fractional part with the B-spline basis matrix.
    """
    m, d = points.shape
    if d > 2:  # the tensor product below is written out for 1-D and 2-D
        raise ValueError(f"sample_spline: points of 1 or 2 coordinates, got {d} (3-D is not supported)")
    shape = coef.shape[:d]
    u = (points - origin) / spacing
    i = np.floor(u)
    t = u - i
    i = i.astype(np.intp)
    lo, hi = i.min(axis=0), i.max(axis=0)
    if any(int(lo[a]) < 1 or int(hi[a]) > shape[a] - 3 for a in range(d)):  # beyond the grid: clamp
        top = np.asarray(shape) - 3
        low, high = i < 1, i > top
        i = np.clip(i, 1, top)
        t = np.where(low, 0.0, np.where(high, 1.0, t))
    w = (t[..., None] ** _POWERS) @ _BASIS  # (m, d, 4)
    flat = coef.reshape(-1, coef.shape[-1])
    if d == 1:
        return (w[:, 0, None, :] @ np.take(flat, i[:, 0, None] - 1 + _TAPS, axis=0))[:, 0]
    n1 = shape[1]
    idx = ((i[:, 0] - 1) * n1 + (i[:, 1] - 1))[:, None] + (_TAPS[:, None] * n1 + _TAPS[None, :]).reshape(16)
    ww = (w[:, 0, :, None] * w[:, 1, None, :]).reshape(m, 1, 16)
    return (ww @ np.take(flat, idx, axis=0))[:, 0]  # take: a few times faster than flat[idx] here


def neighbor_bound(
    mass: float,
    eps: float,
    coef: np.ndarray,
    origin: np.ndarray | None = None,
    spacing: np.ndarray | None = None,
    center: np.ndarray | None = None,
    half_width: float | None = None,
) -> float:
    r"""The most one source (a neighbour, or one mirror image of it) of mass ``mass`` can add to
    :func:`local_velocity`, wherever it stands, with the field of spline coefficients ``coef``.

    With :math:`\phi_{\sqrt2\varepsilon}(r) = (4\pi\varepsilon^2)^{-d/2} e^{-r^2/4\varepsilon^2}`,
    :math:`\max_r r\,e^{-r^2/4\varepsilon^2} = \sqrt2\,\varepsilon\,e^{-1/2}`, and cubic B-spline
    samples being convex combinations of their coefficients (so :math:`|W| \le \max|c_W|` and
    :math:`|\nabla W| \le \lVert(\max|c_{\partial_a W}|)_a\rVert`), one pair term is bounded by

    .. math::

        B(m) = m\,(4\pi\varepsilon^2)^{-d/2}\Big[\frac{e^{-1/2}}{\sqrt2\,\varepsilon}\max|W|
               + \frac12 \max|\nabla W|\Big].

    A neighbour counts once, plus once per mirror image of it within the radius (at most
    :math:`2^d - 1` when every side of the box is at least twice the radius). The command chain
    (:func:`swarmcover.control.compose`) multiplies the law by the gain and saturates, which moves
    no vector farther than it was moved, so one neighbour changes a command by at most
    ``gain * (1 + images) * B`` (plus the separation barrier's push from it), and never by more
    than twice the speed limit. With masses capped at the fleet's (``docs/security.md``) a liar
    moves its neighbours exactly as an honest robot where it claims to be, within this bound.

    The maxima are taken over the whole patch, or (``origin``, ``spacing``, ``center`` and
    ``half_width`` given) over the coefficients that samples within ``half_width`` of ``center``
    use: the pair midpoints of an agent at ``center`` lie within half its radius of it, so that is
    the bound for that agent (far tighter where the target is dense: :math:`W = 1/\bar\rho` is
    large only where the demand is low).

    Parameters
    ----------
    mass, eps : float
    coef : ndarray, shape (n_1, ..., n_d, d + 1)
    origin, spacing, center : ndarray, shape (d,), optional
    half_width : float, optional

    Returns
    -------
    float
    """
    d = coef.ndim - 1
    if center is not None:
        u_lo = np.floor((np.asarray(center) - half_width - origin) / spacing).astype(np.intp) - 1
        u_hi = np.floor((np.asarray(center) + half_width - origin) / spacing).astype(np.intp) + 3
        shape = np.asarray(coef.shape[:d])
        u_lo, u_hi = np.clip(u_lo, 0, shape - 1), np.clip(u_hi, 1, shape)
        coef = coef[tuple(slice(int(a), int(b)) for a, b in zip(u_lo, u_hi, strict=True))]
    flat = np.abs(coef.reshape(-1, coef.shape[-1]))
    peak = flat.max(axis=0)
    w_max, g_max = float(peak[0]), float(np.linalg.norm(peak[1:]))
    norm = (4.0 * math.pi * eps * eps) ** (-d / 2.0)
    return float(mass) * norm * (math.exp(-0.5) / (math.sqrt(2.0) * eps) * w_max + 0.5 * g_max)


def _pairs_numpy(
    x: np.ndarray, mass: float, src: np.ndarray, msrc: np.ndarray, eps: float, coef, origin, spacing
) -> np.ndarray:
    d = x.shape[0]
    pts = np.concatenate([x[None], src])  # the agent itself is a source too
    m = np.concatenate([[mass], msrc])
    dx = x - pts
    mid = 0.5 * (x + pts)
    f = sample_spline(mid, coef, origin, spacing)  # (k + 1, d + 1): W, grad W
    r2 = np.einsum("ij,ij->i", dx, dx)
    g = m * (4.0 * math.pi * eps * eps) ** (-d / 2.0) * np.exp(-r2 / (4.0 * eps * eps))
    return g @ (dx * (f[:, :1] / (2.0 * eps * eps)) - 0.5 * f[:, 1:])


def local_velocity(
    x: np.ndarray,
    neighbors: np.ndarray,
    mass: float,
    neighbor_mass: np.ndarray,
    *,
    eps: float,
    cutoff: float,
    coef: np.ndarray,
    origin: np.ndarray,
    spacing: np.ndarray,
    box: Box | None,
    kernel: str = "numba",
) -> np.ndarray:
    r"""One agent's blob velocity from its neighbours and a field of :math:`W` (pure, unchecked).

    This is the whole law as an agent runs it (see the module docstring). Inputs are trusted:
    callers validate (``BlobLaw.velocity``, the agent's message decoder).

    Parameters
    ----------
    x : ndarray, shape (d,)
    neighbors : ndarray, shape (k, d)
    mass : float
    neighbor_mass : ndarray, shape (k,)
    eps, cutoff : float
    coef : ndarray, shape (n_1, ..., n_d, d + 1)
    origin, spacing : ndarray, shape (d,)
    box : Box or None
        Reflecting walls (method of images), or ``None`` for the free law.
    kernel : {"numba", "numpy", "c"}
        Which implementation sums the pairs (same result; see the module docstring).

    Returns
    -------
    ndarray, shape (d,)
    """
    if kernel == "c":  # one call: the cutoff, the mirror images and the sum
        if _c_velocity is None:
            resolve_kernel("c")  # raises, saying why
        lo, hi = (None, None) if box is None else (box.lo, box.hi)
        v = _c_velocity(x, neighbors, mass, neighbor_mass, eps, cutoff, coef, origin, spacing, lo, hi)
        return np.array(v)
    d = x.shape[0]
    xi = x.reshape(1, d)
    radius = law_radius(eps, cutoff)
    r2 = radius * radius
    diff = neighbors - xi
    near = np.einsum("ij,ij->i", diff, diff) < r2
    nb, mn = neighbors[near], neighbor_mass[near]
    if box is not None and ((x - box.lo < radius).any() or (box.hi - x < radius).any()):
        pts = np.concatenate([nb, xi])
        mpts = np.concatenate([mn, [mass]])
        g, owner = near_images(pts, x, radius, box.lo, box.hi)
        src = np.concatenate([nb, g])
        msrc = np.concatenate([mn, mpts[owner]])
    else:  # farther than the radius from every wall: no image is in range
        src, msrc = nb, mn
    if kernel == "numpy":
        return _pairs_numpy(x, mass, src, np.asarray(msrc, dtype=np.float64), eps, coef, origin, spacing)
    if kernel != "numba":
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    from ._kernels import accumulate_pairs  # loads numba: only the compiled path pays for it

    src, msrc = np.ascontiguousarray(src), np.ascontiguousarray(msrc, dtype=np.float64)
    vel = np.zeros((1, d))
    mi = np.array([mass])
    zero = np.zeros(1, dtype=np.int64)
    norm = (4.0 * math.pi * eps**2) ** (-d / 2.0)
    consts = (norm, 1.0 / (4.0 * eps**2), 1.0 / (2.0 * eps**2))
    inv_h = 1.0 / np.asarray(spacing, dtype=np.float64)
    accumulate_pairs(xi, mi, xi, mi, zero, zero, False, *consts, coef, origin, inv_h, vel)
    if len(src):
        pj = np.arange(len(src), dtype=np.int64)
        accumulate_pairs(xi, mi, src, msrc, np.zeros(len(src), dtype=np.int64), pj, False, *consts, coef,
                         origin, inv_h, vel)  # fmt: skip
    return vel[0]


def warm_local_velocity(box: Box, boundary: str = "reflect") -> None:
    """Compile (or load from numba's cache) every specialisation :func:`local_velocity` takes in an
    agent: field coefficients writable (a field of its own) and read-only (a patch decoded from a
    message's buffer), with walls or without. Agents call it before saying hello; a launcher calls
    it once before starting many agents, so that they load the cache instead of each compiling."""
    d = box.dim
    x = np.array(box.lo + 0.5 * box.size)
    neighbors = x[None] + 0.01 * box.size

    def ro(a: np.ndarray) -> np.ndarray:
        return np.frombuffer(a.tobytes()).reshape(a.shape)  # read-only, as decoded from a buffer

    coef = np.zeros((4,) * d + (d + 1,))
    origin, spacing = np.array(box.lo, dtype=np.float64), np.array(box.size / 3.0, dtype=np.float64)
    walls = box if boundary == "reflect" else None
    eps = float(box.size.min()) / 4
    # a field of its own (all writable or all read-only), a patch (read-only coef, writable grid)
    for c, o, s in (
        (coef, origin, spacing),
        (ro(coef), ro(origin), ro(spacing)),
        (ro(coef), origin, spacing),
    ):
        local_velocity(x, neighbors, 0.5, np.array([0.5]), eps=eps, cutoff=4.0, coef=c, origin=o, spacing=s,
                       box=walls)  # fmt: skip
