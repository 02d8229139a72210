r"""Coverage schedules and the phase an agent keeps of them, without a coordinator.

A :class:`CoverageSchedule` is a sequence of :class:`Stage` (mollifier :math:`\varepsilon`, target
smoothing, duration): the annealed blob flow of :func:`swarmcover.coverage.cover`. A fleet runs it
decentralized by each agent keeping a :class:`PhaseClock`: the *phase* is the pair (epoch, start)
of which schedule is in force since when, on the agent's own clock:

- epoch 0 is the initial schedule, epoch :math:`k \ge 1` the :math:`k`-th restart after losses
  (:meth:`CoverageSchedule.after_losses`);
- an agent's beacons carry its phase as (epoch, *age*), the time since the phase started, so that
  no two clocks need to agree (only their rates); a receiver's start is its own now minus the age;
- a phase heard with a higher epoch is adopted, and so is the same epoch started earlier (a late
  joiner takes up the stage its neighbours are in; two agents that restarted independently for the
  same losses settle on the first of them);
- an agent that detects losses around it (:class:`swarmcover.policy.LossWatch`) starts epoch
  :math:`\max + 1` now, and the restart spreads through beacons to the whole connected fleet;
- a later restart heard while the current one is still annealing is held off until it is done
  (``PhaseClock.holdoff``): a peer claiming ever higher epochs cannot keep a fleet re-annealing.

Light imports (numpy only): an agent process uses this module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._checks import as_positive
from .kernels import hotpath

if TYPE_CHECKING:
    from .targets import Target

__all__ = ["CoverageSchedule", "Phase", "PhaseClock", "Stage"]

# the optional C pass over neighbours' phases (PhaseClock.hear_many; the loop below otherwise)
_phase_top = hotpath("phase_top")


@dataclass(frozen=True)
class Stage:
    """One stage of a coverage schedule.

    Attributes
    ----------
    eps : float
        Mollifier width.
    smoothing : float
        Target smoothing (standard deviation), usually ``eps``.
    duration : float
        How long the stage lasts (the last stage of a schedule holds for ever).
    """

    eps: float
    smoothing: float
    duration: float


@dataclass(frozen=True)
class CoverageSchedule:
    """A sequence of :class:`Stage`; an agent looks up its stage by the time since the start."""

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a schedule needs at least one stage")
        for s in self.stages:
            as_positive(s.eps, "stage eps")
            if not (math.isfinite(s.smoothing) and s.smoothing >= 0):
                raise ValueError(f"stage smoothing must be finite and >= 0, got {s.smoothing!r}")
            if not (math.isfinite(s.duration) and s.duration >= 0):
                raise ValueError(f"stage duration must be finite and >= 0, got {s.duration!r}")

    @classmethod
    def fixed(cls, eps: float, smoothing: float = 0.0) -> CoverageSchedule:
        """One stage for ever: the plain blob law at ``eps``."""
        return cls((Stage(float(eps), float(smoothing), 0.0),))

    @classmethod
    def annealed(
        cls,
        target: Target,
        n: int,
        speed_limit: float,
        *,
        resolution: float = 0.3,
        stages: int = 10,
        start: float | None = None,
        smoothing: float = 1.0,
        mismatch: float = 0.5,
        relax: float = 20.0,
    ) -> CoverageSchedule:
        r"""The annealed schedule for ``n`` agents with a speed limit.

        :math:`\varepsilon` shrinks geometrically over ``stages`` stages from ``start`` (default a
        quarter of the box's shortest side) to :math:`\varepsilon_f = \text{resolution}\cdot h`,
        :math:`h = (|\Omega|/n)^{1/d}`; each stage smooths the target at ``smoothing`` times its
        :math:`\varepsilon`. Durations are in time units of the speed limit: the first stage lasts
        the time to cross the domain plus ``relax`` relaxation times
        :math:`\varepsilon_k\delta_{\text{sat}}/v_{\max}`, every later one ``relax`` relaxation
        times (see :mod:`swarmcover.coverage` for how the defaults were chosen).

        Parameters
        ----------
        target : Target
            Only its box is used.
        n : int
            Fleet size (sets the spacing :math:`h`).
        speed_limit : float
        resolution : float
            Final :math:`\varepsilon` in units of :math:`h`.
        stages : int
            Number of stages (default 10).
        start : float, optional
            First :math:`\varepsilon`.
        smoothing : float
            Target smoothing per stage, in units of that stage's :math:`\varepsilon`.
        mismatch : float
            :math:`\delta_{\text{sat}}` of the gain rule.
        relax : float
            Relaxation times per stage (default 20).
        """
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if int(stages) != stages or stages < 1:
            raise ValueError(f"stages must be a positive integer, got {stages!r}")
        v = as_positive(speed_limit, "speed_limit")
        box = target.box
        h = (box.volume / n) ** (1.0 / box.dim)
        eps_f = as_positive(resolution, "resolution") * h
        e0 = 0.25 * float(box.size.min()) if start is None else as_positive(start, "start")
        e0 = max(e0, eps_f)
        eps = np.geomspace(e0, eps_f, int(stages)) if stages > 1 else np.array([eps_f])
        if not (math.isfinite(smoothing) and smoothing >= 0):
            raise ValueError(f"smoothing must be finite and >= 0, got {smoothing!r}")
        relax, mismatch = as_positive(relax, "relax"), as_positive(mismatch, "mismatch")
        cross = float(np.linalg.norm(box.size)) / v
        out = []
        for k, e in enumerate(eps):
            out.append(
                Stage(float(e), smoothing * float(e), (cross if k == 0 else 0.0) + relax * e * mismatch / v)
            )
        return cls(tuple(out))

    @classmethod
    def after_losses(cls, target: Target, n: int, speed_limit: float, **kwargs: float) -> CoverageSchedule:
        """The schedule survivors restart after losing part of the fleet: :meth:`annealed` for the
        original fleet size ``n`` from two spacings (at the final ``eps`` an agent sees only a few
        spacings around it, so a hole left by a whole group of lost agents is invisible).
        ``kwargs`` go to :meth:`annealed` (``start`` is set here)."""
        kwargs.pop("start", None)
        h = (target.box.volume / n) ** (1.0 / target.dim)
        return cls.annealed(target, n, speed_limit, start=2.0 * h, **kwargs)

    @property
    def duration(self) -> float:
        """Time until the last stage starts plus its nominal duration."""
        return float(sum(s.duration for s in self.stages))

    def stage_index(self, t: float) -> int:
        """Index of the stage in force at time ``t`` since the start (the last one after the end)."""
        acc = 0.0
        for k, s in enumerate(self.stages[:-1]):
            acc += s.duration
            if t < acc:
                return k
        return len(self.stages) - 1

    def segments(self, t0: float, t1: float) -> list[tuple[int, float]]:
        """Split the interval ``[t0, t1]`` at stage boundaries: ``[(stage index, length), ...]``."""
        if not (math.isfinite(t0) and math.isfinite(t1)) or t1 < t0 or t0 < 0:
            raise ValueError(f"need 0 <= t0 <= t1, finite; got {t0!r}, {t1!r}")
        out, start = [], 0.0
        for k, st in enumerate(self.stages):
            end = math.inf if k == len(self.stages) - 1 else start + st.duration
            a, b = max(t0, start), min(t1, end)
            if b > a:
                out.append((k, b - a))
            start = end
        return out


@dataclass(frozen=True)
class Phase:
    """Which schedule is in force since when: ``epoch`` 0 is the initial schedule, ``k >= 1`` the
    ``k``-th restart after losses; ``start`` is on the clock of whoever holds it."""

    epoch: int
    start: float


class PhaseClock:
    r"""One agent's phase of the fleet's schedules (see the module docstring).

    Parameters
    ----------
    initial : CoverageSchedule
        Epoch 0.
    after_losses : CoverageSchedule, optional
        Every later epoch (default: ``initial`` again).
    max_epoch : int
        Epochs heard above this are refused (a bound on what a peer can claim).
    holdoff : float, optional
        A restart heard while the current restart (epoch :math:`\ge 1`) is younger than this is
        not taken up yet (it is, from the next beacon that carries it once the current one is
        that old). Default: the time the after-losses schedule takes to reach its last stage. So
        a peer that claims ever higher epochs re-anneals its neighbours at most once per
        annealing, and each annealing runs to its end; the first restart is never held off.
    """

    def __init__(
        self,
        initial: CoverageSchedule,
        after_losses: CoverageSchedule | None = None,
        max_epoch: int = (1 << 31) - 1,
        holdoff: float | None = None,
    ) -> None:
        self.initial = initial
        self.after = initial if after_losses is None else after_losses
        self.max_epoch = int(max_epoch)
        if holdoff is None:
            holdoff = sum(st.duration for st in self.after.stages[:-1])
        if not (math.isfinite(holdoff) and holdoff >= 0):
            raise ValueError(f"holdoff must be finite and >= 0, got {holdoff!r}")
        self.holdoff = float(holdoff)
        self.phase: Phase | None = None
        #: why the phase last changed: "start", "losses" or "neighbours"
        self.cause = "start"
        #: higher epochs heard and held off (see ``holdoff``)
        self.deferred = 0

    def begin(self, now: float) -> None:
        """Start epoch 0 at ``now`` unless a phase is already held."""
        if self.phase is None:
            self.phase, self.cause = Phase(0, float(now)), "start"

    def schedule(self) -> CoverageSchedule:
        return self.initial if self.phase is None or self.phase.epoch == 0 else self.after

    def age(self, now: float) -> float:
        """Time since the phase started (0 before it begins; never negative)."""
        return 0.0 if self.phase is None else max(0.0, float(now) - self.phase.start)

    def stage_index(self, now: float) -> int:
        return self.schedule().stage_index(self.age(now))

    def stage(self, now: float) -> Stage:
        return self.schedule().stages[self.stage_index(now)]

    def hear(self, epoch: int, age: float, now: float) -> bool:
        """A neighbour's phase (its ``epoch`` and its ``age`` when sent); adopt it if it is ahead:
        a higher epoch, or the same epoch started earlier. Returns whether it was adopted."""
        epoch = int(epoch)
        if not (0 <= epoch <= self.max_epoch) or not (math.isfinite(age) and age >= 0):
            return False
        start = float(now) - float(age)
        p = self.phase
        if p is not None and epoch > p.epoch >= 1 and float(now) - p.start < self.holdoff:
            self.deferred += 1
            return False
        if p is None or epoch > p.epoch or (epoch == p.epoch and start < p.start):
            self.phase, self.cause = Phase(epoch, start), "neighbours"
            return True
        return False

    def hear_many(self, epochs: np.ndarray, ages: np.ndarray, now: float) -> bool:
        """:meth:`hear` for arrays of phases (``epochs`` of -1: the sender gave none); only the
        one that is furthest ahead matters (the highest epoch, of those the oldest)."""
        # an agent does this every tick for about a hundred rows: one C call where it was built;
        # else one pass over Python floats (a dozen small numpy calls cost more, with cold caches)
        if _phase_top is not None:
            top, oldest = _phase_top(epochs, ages, float(self.max_epoch))
        else:
            top, oldest, hi = -1.0, -1.0, self.max_epoch
            for e, a in zip(np.asarray(epochs).tolist(), np.asarray(ages).tolist(), strict=True):
                if 0 <= e <= hi and 0 <= a < math.inf and (e > top or (e == top and a > oldest)):
                    top, oldest = e, a
        return top >= 0 and self.hear(int(top), oldest, now)

    def restart(self, now: float) -> Phase:
        """Losses detected here: start the next epoch now."""
        epoch = 1 if self.phase is None else min(self.phase.epoch + 1, self.max_epoch)
        self.phase, self.cause = Phase(epoch, float(now)), "losses"
        return self.phase
