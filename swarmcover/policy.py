r"""One agent's decisions as a pure object: schedule phase, losses, wind, and the command.

:class:`AgentPolicy` is what an agent process runs on what it receives (``agents/agent.py`` owns
the session: sockets, epochs, fail-safe, rate); it holds no socket and reads no clock, so it can be
tested in process and driven by anything that delivers states and beacons. The chain per command
is the one :func:`swarmcover.coverage.cover` runs for the whole fleet:

.. math::

    u = \operatorname{sat}\Big(\operatorname{sat}\big(\operatorname{sat}(g_k\, v_k(x))
        + v_{\text{sep}}\big) - \hat w\Big),

with :math:`v_k` the blob law of the stage :math:`k` in force (:class:`~swarmcover.schedule.PhaseClock`),
:math:`g_k` its gain, :math:`v_{\text{sep}}` the separation barrier and :math:`\hat w` the drift
estimate (:class:`DriftEstimator`; zero without wind).

**Losses** (:class:`LossWatch`): a neighbour the agent stops hearing (forgotten after
``forget_after``) that was last heard within the law's radius of the agent, and well inside the
radio's reach, counts as lost, unless it fell silent before the current phase began (then it is
the loss that phase answers). The reach is learned, not configured: it is the farthest any
neighbour has been heard (a real radio's range is not known in advance). A neighbour that drifts
out of range is last heard within a few ticks' motion of the reach; one last heard beyond
``REACH_MARGIN`` of it is taken as gone out of range, not as failed. When
``losses`` of them have been counted the agent restarts the schedule (a new epoch), and its beacons
carry the restart to the rest of the fleet.

**Wind** (:class:`DriftEstimator`): between two consecutive states the body moved by
:math:`\Delta x = \Delta t\,(u + w)`; the agent keeps an exponential average of
:math:`\Delta x/\Delta t - u` (axes where the body is on a wall excluded: the wall, not the wind,
stopped it) and subtracts it from its command, bounded by the speed limit.

Light imports (numpy only).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from .control import Separation, clip_speed, compose, gain_for
from .domain import Box
from .kernels import hotpath, law_radius
from .local import local_velocity
from .schedule import CoverageSchedule, PhaseClock, Stage
from .tracking import PathTracker

__all__ = ["REACH_MARGIN", "AgentPolicy", "DriftEstimator", "LossWatch"]

#: A neighbour falling silent farther than this fraction of the radio's (learned) reach is taken
#: as gone out of range, not as lost.
REACH_MARGIN = 0.9
_TRAIL = 4096  # own positions remembered (commands): longer than forget_after at any sane rate

_DEADBAND = 1e-6  # drift estimates below this fraction of the speed limit are taken as none

# optional C (swarmcover/_hotpath.c): the farthest neighbour heard, in one call every tick (it was
# numpy's einsum, used nowhere else in a tick: a cold start of its own in every tick)
_farthest2 = hotpath("farthest2")
# optional C: an agent's usual command from its neighbour table in one call (AgentPolicy.table_command)
_c_command = hotpath("command")


class LossWatch:
    """Counts neighbours lost near an agent; says when to restart (see the module docstring).

    Parameters
    ----------
    losses : int
        Lost neighbours that trigger a restart (0: never restart).
    """

    def __init__(self, losses: int) -> None:
        if int(losses) != losses or losses < 0:
            raise ValueError(f"losses must be an integer >= 0, got {losses!r}")
        self.losses = int(losses)
        self.count = 0
        self.since = -math.inf  # (wall) when the current phase began
        self.reach = 0.0  # the farthest a neighbour has been heard
        self._trail: deque[tuple[float, np.ndarray]] = deque(maxlen=_TRAIL)  # (wall, own position)

    def reset(self, since: float) -> None:
        self.count, self.since = 0, float(since)

    def heard(self, x: np.ndarray, positions: np.ndarray) -> None:
        """Neighbours heard just now at ``positions (k, d)`` by the agent at ``x (d,)``: learns
        the radio's reach (give only fresh beacons: a position heard a while ago, measured from
        where the agent is now, says nothing about the range)."""
        if not len(positions):
            return
        if _farthest2 is not None:
            far2 = _farthest2(x, np.ascontiguousarray(positions, dtype=np.float64))
        else:
            diff = positions - x
            far2 = float((diff * diff).sum(axis=1).max())
        self.reach = max(self.reach, math.sqrt(far2))

    def moved(self, x: np.ndarray, wall: float) -> None:
        """The agent is at ``x (d,)`` at (wall) time ``wall`` (remembered, to measure a forgotten
        peer from where the agent was when it last heard it)."""
        self._trail.append((float(wall), np.array(x, dtype=np.float64)))

    def _where(self, heard: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Where the agent was when each of ``heard (k,)`` was last heard ``(k, d)`` (``x`` when
        not remembered)."""
        at = np.broadcast_to(np.asarray(x, dtype=np.float64), (len(heard), len(x))).copy()
        if self._trail:
            walls = np.array([w for w, _ in self._trail])
            k = np.searchsorted(walls, heard, side="right") - 1
            ok = k >= 0
            if ok.any():
                at[ok] = np.array([self._trail[i][1] for i in k[ok].tolist()])
        return at

    def forgotten(self, positions: np.ndarray, heard: np.ndarray, x: np.ndarray, radius: float) -> bool:
        """Peers just forgotten: their last positions ``(k, d)`` and when they were last heard
        ``(k,)`` (the clock of :meth:`reset`); the agent is at ``x (d,)``. Each is measured from
        where the agent was when it was last heard. Returns whether a restart is due."""
        if self.losses == 0 or not len(heard):
            return False
        r = min(radius, REACH_MARGIN * self.reach) if self.reach > 0 else radius
        rel = positions - self._where(np.asarray(heard, dtype=np.float64), x)
        near = np.einsum("ij,ij->i", rel, rel) <= r * r
        self.count += int(np.sum(near & (heard > self.since)))
        return self.count >= self.losses


class DriftEstimator:
    """An agent's estimate of the drift (wind) its body suffers, from commands and motion.

    Parameters
    ----------
    dim : int
    speed_limit : float
        The estimate is bounded by this.
    tau : float
        Averaging time (same unit as the states' times); 0 disables the estimate.
    box : Box
        Axes on which the body is on a wall are not used.
    """

    def __init__(self, dim: int, speed_limit: float, tau: float, box: Box) -> None:
        self.est = np.zeros(dim)
        self.vmax, self.tau, self.box = float(speed_limit), float(tau), box
        self._tol = 1e-9 * box.size
        self._last: tuple[int, float, np.ndarray, np.ndarray] | None = None

    def _on_wall(self, x: np.ndarray) -> np.ndarray:
        return (x <= self.box.lo + self._tol) | (x >= self.box.hi - self._tol)

    def observe(self, tick: int, t: float, x: np.ndarray) -> None:
        """A new state: the body is at ``x`` at time ``t`` (tick ``tick``)."""
        last, self._last = self._last, None
        if self.tau <= 0 or last is None or tick != last[0] + 1 or not t > last[1]:
            return
        t0, x0, u0 = last[1:]
        dt = t - t0
        obs = (x - x0) / dt - u0
        use = ~(self._on_wall(x) | self._on_wall(x0))
        alpha = 1.0 - math.exp(-dt / self.tau)
        self.est = np.where(use, self.est + alpha * (clip_speed(obs, self.vmax) - self.est), self.est)
        self.est = clip_speed(self.est, self.vmax)

    def commanded(self, tick: int, t: float, x: np.ndarray, u: np.ndarray) -> None:
        """The command ``u`` sent for the state at ``x``, time ``t`` (kept only when estimating)."""
        if self.tau > 0:
            self._last = (int(tick), float(t), np.array(x, dtype=np.float64), np.array(u, dtype=np.float64))

    @property
    def estimate(self) -> np.ndarray | None:
        """The drift to cancel, or None when it is negligible."""
        return self.est if float(self.est @ self.est) > (_DEADBAND * self.vmax) ** 2 else None


class AgentPolicy:
    """The decisions of one agent (see the module docstring).

    Parameters
    ----------
    agent_id : int
    box : Box
    mass : float
        This agent's mass (``1/n``).
    speed_limit : float
    schedule : CoverageSchedule
        Epoch 0.
    after_losses : CoverageSchedule, optional
        Every later epoch.
    boundary : {"reflect", "free"}
    cutoff : float
        The law's radius is ``cutoff * sqrt(2) * eps``.
    mismatch : float
        :math:`\\delta_{\text{sat}}` of the gain rule (``gain`` overrides it for every stage).
    gain : float, optional
    r_min : float, optional
        Separation barrier.
    restart_losses : int
        See :class:`LossWatch`.
    wind_tau : float
        See :class:`DriftEstimator` (0: no wind estimate).
    kernel : str
        See :func:`swarmcover.local.local_velocity`.
    """

    def __init__(
        self,
        *,
        agent_id: int,
        box: Box,
        mass: float,
        speed_limit: float,
        schedule: CoverageSchedule,
        after_losses: CoverageSchedule | None = None,
        boundary: str = "reflect",
        cutoff: float = 4.0,
        mismatch: float = 0.5,
        gain: float | None = None,
        r_min: float | None = None,
        restart_losses: int = 1,
        wind_tau: float = 0.0,
        kernel: str = "numpy",
    ) -> None:
        self.agent_id, self.box, self.mass = agent_id, box, float(mass)
        self.vmax, self.cutoff, self.mismatch, self.fixed_gain = float(speed_limit), cutoff, mismatch, gain
        self.walls = box if boundary == "reflect" else None
        self.kernel = kernel
        self.clock = PhaseClock(schedule, after_losses)
        self.sep = None if r_min is None else Separation(r_min, self.vmax)
        self.watch = LossWatch(restart_losses)
        self.drift = DriftEstimator(box.dim, self.vmax, wind_tau, box)
        self.restarts = 0
        #: a planned deployment path, tracked before the coverage law (None: coverage from the start)
        self.path: PathTracker | None = None

    # ------------------------------------------------------------------ planned path
    def follow(self, path: PathTracker | None) -> bool:
        """Take up a planned path (``None``: drop the one held); a path with the number of the
        one held is a repeat. Returns whether it was taken."""
        if path is None:
            taken, self.path = self.path is not None, None
            return taken
        if self.path is not None and path.plan <= self.path.plan:
            return False
        self.path = path
        return True

    def on_path(self, t: float) -> bool:
        """Whether a path is being tracked at world time ``t`` (the schedule waits for its end)."""
        return self.path is not None and not self.path.done(t)

    # ------------------------------------------------------------------ schedule
    def radius(self, stage: Stage) -> float:
        """The law's radius at ``stage``."""
        return law_radius(stage.eps, self.cutoff)

    def stages(self) -> list[Stage]:
        """Every stage this agent may sense for (both schedules)."""
        return list(dict.fromkeys(self.clock.initial.stages + self.clock.after.stages))

    def knows(self, eps: float, smoothing: float | None) -> Stage | None:
        """The stage of either schedule sensed for ``eps`` (and ``smoothing``, if given)."""
        for s in self.stages():
            if abs(s.eps - eps) <= 1e-9 * s.eps and (
                smoothing is None or abs(s.smoothing - smoothing) <= 1e-9 * max(s.smoothing, s.eps)
            ):
                return s
        return None

    def begin(self, t: float, wall: float) -> None:
        """A state at time ``t``: start epoch 0 if no phase is held yet (on a planned path: when
        the path ends, so that the schedule's stages are not spent in transit)."""
        if self.clock.phase is None and not self.on_path(t):
            self.clock.begin(t)
            self.watch.reset(wall)

    def hear(self, epochs: np.ndarray, ages: np.ndarray, t: float, wall: float) -> bool:
        """Neighbours' phases; returns whether one was adopted."""
        if self.clock.hear_many(np.asarray(epochs, dtype=np.float64), np.asarray(ages, dtype=np.float64), t):
            self.watch.reset(wall)
            return True
        return False

    def heard(self, x: np.ndarray, positions: np.ndarray) -> None:
        """Fresh beacons from ``positions (k, d)`` heard at ``x (d,)`` (:meth:`LossWatch.heard`)."""
        self.watch.heard(x, positions)

    def moved(self, x: np.ndarray, wall: float) -> None:
        """The agent's position at a wall time (:meth:`LossWatch.moved`)."""
        self.watch.moved(x, wall)

    def forgotten(
        self, positions: np.ndarray, heard: np.ndarray, x: np.ndarray, t: float, wall: float
    ) -> bool:
        """Peers the neighbour table just dropped (their last positions and wall times heard);
        restarts the schedule when the losses call for it. Returns whether it restarted."""
        if self.clock.phase is None:
            return False
        if self.watch.forgotten(positions, heard, x, self.radius(self.clock.stage(t))):
            self.clock.restart(t)
            self.watch.reset(wall)
            self.restarts += 1
            return True
        return False

    def request(self, t: float, dt: float | None) -> Stage:
        """The stage to ask the body to sense for at the next state (``t + dt``)."""
        return self.clock.stage(t + (dt or 0.0))

    # ------------------------------------------------------------------ command
    def gain(self, stage: Stage) -> float:
        return (
            self.fixed_gain if self.fixed_gain is not None else gain_for(stage.eps, self.vmax, self.mismatch)
        )

    def velocity(
        self,
        x: np.ndarray,
        ids: np.ndarray,
        pos: np.ndarray,
        mass: np.ndarray,
        field: tuple[np.ndarray, np.ndarray, np.ndarray],
        stage: Stage,
        t: float = 0.0,
        dt: float | None = None,
    ) -> np.ndarray:
        """The command at ``x (d,)`` with neighbours ``ids (k,)``, ``pos (k, d)``, ``mass (k,)``
        and the field ``(coef, origin, spacing)`` sensed for ``stage``, at world time ``t``; on a
        planned path (:meth:`follow`) the tracking velocity for the control period ``dt``
        replaces the law's and the separation barrier (the drift estimate and the speed limit
        still apply)."""
        coef, origin, spacing = field
        if self.on_path(t):
            # the plan keeps its robots apart at its nodes (from starts that may be closer than
            # r_min, a depot): the barrier would only fight it
            if not dt:
                raise ValueError("on a planned path the control period dt is needed")
            return compose(self.path.velocity(t, x, dt), 1.0, self.vmax, None, self.drift.estimate)
        push = None if self.sep is None else self.sep.velocity(x, pos, self.agent_id, ids)
        v = local_velocity(
            x, pos, self.mass, mass, eps=stage.eps, cutoff=self.cutoff, coef=coef, origin=origin,
            spacing=spacing, box=self.walls, kernel=self.kernel,
        )  # fmt: skip
        return compose(v, self.gain(stage), self.vmax, push, self.drift.estimate)

    def table_command(self, x: np.ndarray, heard: np.ndarray, pos: np.ndarray, mass: np.ndarray, since: float,
                      cap: float, field: tuple[np.ndarray, np.ndarray, np.ndarray], stage: Stage,
                      t: float = 0.0) -> tuple[int, int, np.ndarray] | None:  # fmt: skip
        """:meth:`velocity` with the neighbours of a table, in one call of the C hot path.

        The rows of ``heard (n,)``, ``pos (n, d)``, ``mass (n,)`` heard at or after ``since`` are
        the neighbours; when any mass is above ``cap`` (by more than 1e-9 of it), every mass is
        capped at ``cap`` (an agent's :class:`~swarmcover.agents.hearing.Hearing` does the same).
        Returns ``(neighbours, capped, command)``, or ``None`` where the one call does not apply:
        the C extension not built, another kernel, a planned path being tracked, or a neighbour
        coinciding with the agent (the barrier's tie-break by ids); then select the rows and call
        :meth:`velocity` (tests check the two agree).
        """
        if _c_command is None or self.kernel != "c" or self.on_path(t):
            return None
        coef, origin, spacing = field
        lo, hi = (None, None) if self.walls is None else (self.walls.lo, self.walls.hi)
        b = self.sep
        sep = None if b is None else (b.r_min, b.radius, b.speed, b.cap)
        got = _c_command(
            x, heard, pos, mass, since, cap, coef, origin, spacing, self.mass, stage.eps, lo, hi, self.cutoff,
            sep, self.gain(stage), self.vmax, self.drift.estimate,
        )  # fmt: skip
        if got is None:
            return None
        count, capped, u = got
        return count, capped, np.array(u)
