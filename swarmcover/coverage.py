r"""Covering a target from any start: the annealed, speed-limited blob flow a fleet runs.

A literal blob flow fails on realistic demand maps (see ``docs/sparse-targets.md`` for the
measurements). :func:`cover` runs what works, as a schedule of stages every agent can follow with its
own clock (:class:`CoverageSchedule`):

- **Annealing.** :math:`\varepsilon` shrinks geometrically from a quarter of the domain's shortest
  side to the final resolution :math:`\varepsilon_f = \text{resolution}\cdot h`, with the fleet
  spacing :math:`h = (|\Omega|/n)^{1/d}`. At a large :math:`\varepsilon` mass moves between distant
  parts of the target; at a small one the pattern is refined.
- **Target smoothing at the same scale.** Each stage inverts :math:`\phi_\varepsilon*\bar\rho`
  (``target_smoothing = smoothing * eps``): the energy
  :math:`\frac12\int(\phi_\varepsilon*\rho)^2/(\phi_\varepsilon*\bar\rho)` is still minimised by
  :math:`\rho = \bar\rho`, but the reciprocal has no plateau of :math:`1/\text{floor}` next to a
  bump, so agents off the support feel a pull towards it and gaps stop trapping them.
- **Reflecting walls, gain rule, separation.** See :class:`swarmcover.BlobLaw` and
  :mod:`swarmcover.control`.

Stage durations are in time units of the speed limit: the first stage lasts the time to cross the
domain plus ``relax`` relaxation times, every later one ``relax`` relaxation times
:math:`\varepsilon_k\delta_{\text{sat}}/v_{\max}`. The last stage holds for ever.

**After losses** the survivors restart the schedule from two spacings
(:meth:`CoverageSchedule.after_losses`): at the final :math:`\varepsilon` an agent only sees a few
spacings around it, so a hole left by a whole group of lost agents (a bump that lost all its agents)
is invisible to the others.

The defaults (10 stages, 20 relaxation times each) were chosen on sparse maps: with 6 stages of 10
the fleet deploys 2.7 times faster and covers as well, but survivors re-covered a map within 25 % of a
fresh fleet in 44 of 48 loss trials instead of 48 of 48 (``docs/sparse-targets.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points, as_positive
from .control import Separation, compose, gain_for
from .integrate import FlowResult, flow, slide_at_walls
from .law import BlobLaw
from .schedule import CoverageSchedule, PhaseClock, Stage
from .targets import Target

__all__ = ["CoverResult", "CoverageSchedule", "Stage", "cover", "default_r_min"]


@dataclass(frozen=True)
class CoverResult:
    """Outcome of :func:`cover`.

    Attributes
    ----------
    x : ndarray, shape (n, d)
        Final positions.
    schedule : CoverageSchedule
    flows : tuple of FlowResult
        One per stage run.
    """

    x: np.ndarray
    schedule: CoverageSchedule
    flows: tuple[FlowResult, ...]

    @property
    def n_steps(self) -> int:
        """Accepted integration steps over all stages."""
        return sum(f.n_steps for f in self.flows)


def default_r_min(target: Target, n: int, fraction: float = 0.2, peak_fraction: float = 0.5) -> float:
    r"""The minimum separation a fleet of ``n`` can keep and still match ``target``.

    .. math::

        r_{\min} = \min\left(f\,h,\; f_p\,h_p\right), \qquad
        h = (|\Omega|/n)^{1/d}, \quad h_p = \left(\frac{1}{n\,\max\bar\rho}\right)^{1/d}

    :math:`h` is the fleet's mean spacing and :math:`h_p` the spacing the target asks for at its
    densest point (one agent's mass :math:`1/n` over the peak density). A barrier wider than
    :math:`h_p` keeps the fleet from the density the peaks need: on a sparse map at 128 agents,
    ``0.2 h`` was 1.1 :math:`h_p` and the energy distance twice what a barrier of ``0.5 h_p`` gives
    (``docs/sparse-targets.md``). The peak is read on a 128-cell grid of the box.

    Parameters
    ----------
    target : Target
        The density the fleet matches (for the service objective, :meth:`Target.for_service`).
    n : int
        Fleet size.
    fraction, peak_fraction : float
        :math:`f` and :math:`f_p`.

    Returns
    -------
    float
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    d = target.dim
    h = (target.box.volume / n) ** (1.0 / d)
    q, _ = target.quadrature(128 if d <= 2 else 32)
    peak = float(np.max(target.pdf(q)))
    h_peak = (1.0 / (n * peak)) ** (1.0 / d) if peak > 0 else math.inf
    return float(
        min(as_positive(fraction, "fraction") * h, as_positive(peak_fraction, "peak_fraction") * h_peak)
    )


def cover(
    target: Target,
    x0: ArrayLike,
    speed_limit: float,
    *,
    r_min: float | None = None,
    schedule: CoverageSchedule | None = None,
    t_end: float | None = None,
    mass: float | None = None,
    mismatch: float = 0.5,
    method: str = "auto",
    fixed_step: float | None = None,
    objective: str = "density",
    callback: Callable[[float, np.ndarray], None] | None = None,
) -> CoverResult:
    r"""Run a fleet from ``x0`` through a coverage schedule with a speed limit, centrally (for
    studies and tests).

    With ``fixed_step`` the fleet moves as bodies do that apply each command for one tick (the
    simulator): every tick, each agent's command is the chain of :func:`swarmcover.control.compose`
    for the stage its :class:`~swarmcover.schedule.PhaseClock` is in at the tick's start, the
    world slides bodies along walls and projects them into the box. This is exactly what the
    agent processes of ``swarmcover launch`` compute in lockstep (``tests/test_fleet_law.py``
    checks them against each other to round-off). Without it, every stage is integrated by the
    adaptive :func:`swarmcover.flow`.

    Parameters
    ----------
    target : Target
    x0 : array_like, shape (n, d)
    speed_limit : float
    r_min : float, optional
        Minimum separation (:class:`swarmcover.Separation` pushing at the speed limit).
    schedule : CoverageSchedule, optional
        Default :meth:`CoverageSchedule.annealed` for ``n`` agents.
    t_end : float, optional
        Total time (default: the schedule's duration); the last stage runs to it.
    mass : float, optional
        Each agent's mass (default ``1/n``; survivors of losses keep the mass they had).
    mismatch : float
        :math:`\delta_{\text{sat}}` of the gain rule.
    method : str
        See :func:`swarmcover.flow`.
    fixed_step : float, optional
        The tick of a lockstep fleet (see above). To compare with a fleet, give
        ``method="pairwise"`` too: agents compute the exact pairwise law, and ``"auto"`` picks
        the particle-mesh approximation from about a hundred agents on.
    objective : {"density", "service"}
        ``"service"`` covers :meth:`Target.for_service` (:math:`\bar\rho^{d/(d+2)}`, which
        minimises the distance from demand to the nearest robot) instead of :math:`\bar\rho`.
    callback : callable, optional
        ``callback(t, x)`` after every accepted step, ``t`` counted from the start of the run.

    Returns
    -------
    CoverResult
    """
    x = target.box.clip(as_points(x0, target.dim, "x0"))
    n = x.shape[0]
    if n == 0:
        raise ValueError("cover needs at least one agent")
    v = as_positive(speed_limit, "speed_limit")
    sched = CoverageSchedule.annealed(target, n, v, mismatch=mismatch) if schedule is None else schedule
    total = sched.duration if t_end is None else float(t_end)
    if not (math.isfinite(total) and total >= 0):
        raise ValueError(f"t_end must be finite and >= 0, got {t_end!r}")
    if objective not in ("density", "service"):
        raise ValueError(f"objective must be 'density' or 'service', got {objective!r}")
    law_target = target.for_service() if objective == "service" else target
    m = 1.0 / n if mass is None else as_positive(mass, "mass")
    sep = None if r_min is None else Separation(as_positive(r_min, "r_min"), v)
    if fixed_step is not None:
        tick = as_positive(fixed_step, "fixed_step")
        return _cover_ticks(law_target, x, v, sep, sched, total, m, mismatch, tick, method, callback)
    flows, t0 = [], 0.0
    for k, dur in sched.segments(0.0, total):
        st = sched.stages[k]
        law = BlobLaw(law_target, st.eps, m, target_smoothing=st.smoothing)
        shifted = None if callback is None else (lambda t, y, t0=t0: callback(t0 + t, y))
        res = flow(
            law, x, dur, speed_limit=v, gain=gain_for(st.eps, v, mismatch), separation=sep,
            method=method, callback=shifted,
        )  # fmt: skip
        flows.append(res)
        x, t0 = res.x, t0 + dur
    return CoverResult(x=x, schedule=sched, flows=tuple(flows))


def _cover_ticks(target, x, v, sep, sched, total, m, mismatch, tick, method, callback) -> CoverResult:
    """:func:`cover` with ``fixed_step``: tick by tick, as a lockstep world runs its agents."""
    clock = PhaseClock(sched)
    clock.begin(0.0)
    laws: dict[Stage, BlobLaw] = {}
    box, t, steps = target.box, 0.0, 0
    while t < total * (1 - 1e-12):
        st = clock.stage(t)
        law = laws.get(st)
        if law is None:
            law = laws[st] = BlobLaw(target, st.eps, m, target_smoothing=st.smoothing)
        push = None if sep is None else sep.velocities(x)
        u = compose(law.velocities(x, method=method), gain_for(st.eps, v, mismatch), v, push)
        x = box.clip(x + tick * slide_at_walls(x, u, box.lo, box.hi))
        t += tick
        steps += 1
        if callback is not None:
            callback(t, x)
    done = FlowResult(x, t, np.empty(0), np.empty((0, *x.shape)), np.empty(0), np.empty(0), steps, 0, True)
    return CoverResult(x=x, schedule=sched, flows=(done,))
