r"""Time integration of the blob law: :func:`flow`.

The law is stiff: its Lipschitz constant grows like :math:`\varepsilon^{-(d+2)}` and :math:`w =
1/\bar\rho` is large where demand is low, so a fixed step blows up. :func:`flow` uses Heun's
method (explicit RK2) with the embedded Euler step as error estimate,

.. math::

    \text{err} = \tfrac{\Delta t}{2}\max_i |k_2^{(i)} - k_1^{(i)}|
    \le \text{rtol}\cdot\varepsilon,

and additionally limits every step so that no agent moves more than ``max_move`` :math:`\cdot
\varepsilon`. Rejected steps are retried with a smaller step. An optional speed limit saturates each
agent's velocity (direction kept, so the blob energy still decreases). The walls are no-flux: an
agent on a wall loses the outward component of its velocity and slides along it
(:func:`slide_at_walls`), and positions are projected into the box after every step.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points, as_positive
from .control import Separation, saturate
from .law import BlobLaw

__all__ = ["FlowResult", "flow", "slide_at_walls"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FlowResult:
    """Outcome of :func:`flow`.

    Attributes
    ----------
    x : ndarray, shape (n, d)
        Positions at ``t``.
    t : float
        The time reached (``t_end`` unless ``max_steps`` ran out).
    times : ndarray, shape (k,)
        The output times (``t_eval``; empty if none were asked for).
    trajectory : ndarray, shape (k, n, d)
        Positions at ``times``.
    step_times : ndarray, shape (s,)
        Start time of every accepted step.
    energies : ndarray, shape (s,)
        Blob energy at the start of every accepted step (the law's; non-increasing without a
        separation term, up to the integration tolerance).
    n_steps, n_rejected : int
        Accepted and rejected steps.
    completed : bool
        Whether ``t_end`` was reached.
    """

    x: np.ndarray
    t: float
    times: np.ndarray
    trajectory: np.ndarray
    step_times: np.ndarray
    energies: np.ndarray
    n_steps: int
    n_rejected: int
    completed: bool


def slide_at_walls(x: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Remove the outward normal component of ``v (n, d)`` for agents on a wall of ``[lo, hi]``:
    the walls are no-flux, so an agent pushed against one slides along it."""
    tol = 1e-12 * (hi - lo)
    out = np.where((x <= lo + tol) & (v < 0), 0.0, v)
    return np.where((x >= hi - tol) & (out > 0), 0.0, out)


def flow(
    law: BlobLaw,
    x0: ArrayLike,
    t_end: float,
    *,
    t_eval: ArrayLike | None = None,
    speed_limit: float | ArrayLike | None = None,
    gain: float = 1.0,
    separation: Separation | None = None,
    method: str = "auto",
    rtol: float = 1e-3,
    max_move: float = 0.25,
    dt_max: float | None = None,
    fixed_step: float | None = None,
    max_steps: int = 1_000_000,
    callback: Callable[[float, np.ndarray], None] | None = None,
) -> FlowResult:
    r"""Integrate :math:`\dot x_i = v_i(x)` of the blob law from ``x0`` to time ``t_end``.

    Parameters
    ----------
    law : BlobLaw
    x0 : array_like, shape (n, d)
        Initial positions (projected into the box).
    t_end : float
        Final time (>= 0).
    t_eval : array_like, shape (k,), optional
        Increasing times in ``[0, t_end]`` at which to record positions (steps land on them).
    speed_limit : float or array_like, shape (n,), optional
        Per-agent maximum speed; velocities are saturated to it.
    gain : float
        Multiplies the law's velocity (see :func:`swarmcover.control.gain_for`).
    separation : Separation, optional
        Short-range repulsion added before saturation (row numbers serve as ids).
    method : {"auto", "pairwise", "mesh"}
        How :meth:`BlobLaw.evaluate` computes velocities.
    rtol : float
        Local error tolerance per step, in units of ``eps``.
    max_move : float
        No agent moves more than ``max_move * eps`` in one step.
    dt_max : float, optional
        Largest step.
    fixed_step : float, optional
        Take explicit Euler steps of exactly this length instead (no error control, no
        ``max_move``): :math:`x \leftarrow \Pi_\Omega(x + \Delta t\, v(x))`. This is what a body
        does that applies each velocity command for one tick (the simulator); the last step may be
        shorter to land on ``t_end``.
    max_steps : int
        Give up (``completed=False``) after this many accepted steps.
    callback : callable, optional
        ``callback(t, x)`` after every accepted step.

    Returns
    -------
    FlowResult
    """
    x = law.target.box.clip(as_points(x0, law.dim, "x0"))
    t_end = float(t_end)
    if not math.isfinite(t_end) or t_end < 0:
        raise ValueError(f"t_end must be finite and >= 0, got {t_end!r}")
    rtol = as_positive(rtol, "rtol")
    max_move = as_positive(max_move, "max_move")
    dt_cap = math.inf if dt_max is None else as_positive(dt_max, "dt_max")
    if speed_limit is not None:
        lim = np.asarray(speed_limit, dtype=np.float64)
        if lim.ndim not in (0, 1) or (lim.ndim == 1 and lim.shape != (x.shape[0],)):
            raise ValueError(f"speed_limit must be a scalar or shape ({x.shape[0]},)")
        if not np.all(np.isfinite(lim)) or np.any(lim <= 0):
            raise ValueError("speed_limit must be finite and > 0")
        speed_limit = lim
    if t_eval is None:
        marks = np.empty(0)
    else:
        marks = np.asarray(t_eval, dtype=np.float64).ravel()
        if np.any(~np.isfinite(marks)) or np.any(np.diff(marks) < 0):
            raise ValueError("t_eval must be finite and non-decreasing")
        if marks.size and (marks[0] < 0 or marks[-1] > t_end):
            raise ValueError(f"t_eval must lie in [0, t_end = {t_end}]")
    box, eps = law.target.box, law.eps
    tol = rtol * eps

    gain = as_positive(gain, "gain")

    def rhs(y: np.ndarray) -> tuple[np.ndarray, float]:
        ev = law.evaluate(y, method=method)
        v = gain * ev.velocities
        if separation is not None:  # the law's part saturated first, as Controller does
            v = saturate(v, speed_limit) + separation.velocities(y)
        return saturate(slide_at_walls(y, v, box.lo, box.hi), speed_limit), ev.energy

    t, n_steps, n_rej, k_mark, rejected = 0.0, 0, 0, 0, False
    traj, step_t, energies = [], [], []
    while k_mark < marks.size and marks[k_mark] <= 0.0:
        traj.append(x.copy())
        k_mark += 1
    k1, e1 = rhs(x)
    vmax = float(np.max(np.linalg.norm(k1, axis=1))) if x.shape[0] else 0.0
    dt = min(dt_cap, max_move * eps / vmax if vmax > 0 else t_end)
    if fixed_step is not None:
        h_fixed = as_positive(fixed_step, "fixed_step")
        while t < t_end * (1 - 1e-12) and n_steps < max_steps:
            h = min(h_fixed, t_end - t)
            step_t.append(t)
            energies.append(e1)
            x = box.clip(x + h * k1)
            t = t_end if t + h >= t_end * (1 - 1e-12) else t + h
            n_steps += 1
            while k_mark < marks.size and marks[k_mark] <= t * (1 + 1e-12):
                traj.append(x.copy())
                k_mark += 1
            if callback is not None:
                callback(t, x)
            k1, e1 = rhs(x)
    while t < t_end and n_steps < max_steps:
        vmax = float(np.max(np.linalg.norm(k1, axis=1))) if x.shape[0] else 0.0
        h = min(dt, dt_cap, t_end - t)
        if vmax > 0:
            h = min(h, max_move * eps / vmax)
        stop = marks[k_mark] if k_mark < marks.size else math.inf
        if t + h >= stop:
            h = stop - t
        if h <= 0:
            h = t_end - t
        x_euler = box.clip(x + h * k1)
        k2, _ = rhs(x_euler)
        err = 0.5 * h * float(np.max(np.linalg.norm(k2 - k1, axis=1))) if x.shape[0] else 0.0
        if err > tol and h > 1e-14 * max(t_end, 1.0):
            n_rej += 1
            rejected = True
            dt = h * max(0.2, 0.9 * math.sqrt(tol / err))
            continue
        step_t.append(t)
        energies.append(e1)
        x = box.clip(x + 0.5 * h * (k1 + k2))
        t = stop if t + h >= stop else t + h
        n_steps += 1
        grow = 1.0 if rejected else 2.0  # no growth right after a rejection (avoids thrashing)
        dt = h * min(grow, max(0.2, 0.9 * math.sqrt(tol / err))) if err > 0 else grow * h
        rejected = False
        while k_mark < marks.size and marks[k_mark] <= t:
            traj.append(x.copy())
            k_mark += 1
        if callback is not None:
            callback(t, x)
        k1, e1 = rhs(x)
    completed = t >= t_end
    if not completed:
        log.warning("flow stopped at t = %g < t_end = %g after %d steps", t, t_end, n_steps)
    n, d = x.shape
    return FlowResult(
        x=x,
        t=t,
        times=marks[: len(traj)],
        trajectory=np.array(traj) if traj else np.empty((0, n, d)),
        step_times=np.asarray(step_t),
        energies=np.asarray(energies),
        n_steps=n_steps,
        n_rejected=n_rej,
        completed=completed,
    )
