"""The world's two clocks: lockstep (deterministic, two rounds awaited per tick) and real time
(one tick every ``tick / time_scale`` wall seconds, the states staggered across it).

:class:`Clock` is one room of :class:`~swarmcover.simulator.server.Simulator`; see that module's
docstring for what each mode guarantees.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

__all__ = ["Clock"]


class Clock:
    """Advances the simulator ``sim`` tick by tick (see the module docstring)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.next_wall = time.monotonic()  # real time: when the next tick starts

    def advance(self, max_ticks: int | None = None) -> int:
        """Run ticks until the duration, :meth:`~Simulator.stop`, or ``max_ticks``; returns the
        ticks run."""
        sim = self.sim
        ticks = 0
        self.next_wall = max(self.next_wall, time.monotonic() - 1.0)
        while sim.running and not sim.done() and (max_ticks is None or ticks < max_ticks):
            if sim.cfg.clock == "lockstep":
                if sim.paused:
                    sim.intake.pump(time.monotonic() + 0.05)
                    sim.idle()
                    continue
                self.lockstep_tick()
            else:
                self.next_wall = self.realtime_tick(self.next_wall)
                if time.monotonic() - self.next_wall > 1.0:  # over a second behind: do not catch up
                    self.next_wall = time.monotonic()
            ticks += 1
        return ticks

    def lockstep_tick(self) -> None:
        sim = self.sim
        # silence is measured from the first state an agent left unanswered: one that answered the
        # last tick is not silent, however long the world paused in between
        answered_last = sim.sessions.cmd_tick >= sim.tick
        sim.sessions.last_command_wall[answered_last] = time.monotonic()
        sim.tick += 1
        sim.due_events()
        sim.radio_update()
        live = np.flatnonzero(sim.world.live_mask())
        for k in live:  # sensing round: every agent beacons this tick's position
            sim.out.send(int(sim.world.ids[k]), sim.out.state(k, "beacon"))
        self._await(live, lambda k: sim.sessions.beacon_tick[k] >= sim.tick)
        for k in live:  # command round: each computes with its neighbours' positions of this tick
            sim.out.send(int(sim.world.ids[k]), sim.out.state(k))
        self._await(live, lambda k: sim.sessions.cmd_tick[k] >= sim.tick)
        wall = time.monotonic()
        answered = sim.sessions.cmd_tick == sim.tick
        sim.detect(wall, answered)
        sim.world.command[~answered] = 0.0  # a robot that did not answer this tick holds still
        sim.world.step(sim.cfg.tick, wall, None)
        sim.after_step(time.time())

    def _await(self, live: np.ndarray, done: Callable[[int], bool], timeout: float | None = None) -> None:
        """Take messages until ``done(k)`` for every robot of ``live`` still served, or ``timeout``
        wall seconds (default ``lockstep_timeout_wall``, counted in ``lockstep_timeouts``)."""
        sim = self.sim
        deadline = time.monotonic() + (sim.cfg.lockstep_timeout_wall if timeout is None else timeout)
        while True:
            w = sim.world
            waiting = [k for k in live if not w.failed[k] and w.connected[k] and not done(k)]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                if timeout is None:
                    sim.counts["lockstep_timeouts"] += 1
                return
            sim.intake.pump(min(deadline, time.monotonic() + 0.05), once=True)
            if not sim.running:
                return

    def first_round(self) -> None:
        """Real time, before the clock starts: every live agent is sent the state of tick 0 (its
        first patch, the only state that carries one for every agent at once) and the clock waits
        until each has answered, at most ``failure_timeout_wall``. Its answers move nobody (the
        commands are cleared); their beacons reach the radio, so the first clocked states carry
        the neighbours. Not counted in the timing (nothing here waits on the clock); recorded as
        a ``first_round`` event."""
        sim = self.sim
        t0 = time.monotonic()
        sim.radio_update()  # who is in range of whom, for the answers' beacons
        live = np.flatnonzero(sim.world.live_mask())
        for k in live:
            sim.out.send(int(sim.world.ids[k]), sim.out.state(k, timed=False))
        self._await(live, lambda k: sim.sessions.cmd_tick[k] >= 0, sim.cfg.failure_timeout_wall)
        sim.world.command[live] = 0.0
        answered = int((sim.sessions.cmd_tick[live] >= 0).sum())
        sim.event("first_round", answered=answered, agents=len(live), wall_s=round(time.monotonic() - t0, 4))

    def realtime_tick(self, tick_start: float) -> float:
        """One real-time tick starting at wall ``tick_start``; returns when the next one starts."""
        sim = self.sim
        period = sim.period()
        wall = time.monotonic()
        if sim.paused:  # no states go out, so nobody is silent
            sim.sessions.last_command_wall[sim.world.connected] = wall
            sim.idle()
        else:
            sim.world.step(sim.cfg.tick, wall, sim.cfg.command_ttl_wall)
            sim.tick += 1
            sim.after_step(time.time())
            sim.due_events()
        sim.detect(wall)
        sim.radio_update()
        live = np.flatnonzero(sim.world.live_mask()) if not sim.paused else np.empty(0, dtype=np.int64)
        for i, k in enumerate(live):
            sim.intake.pump(tick_start + period * i / len(live))
            if sim.world.live_mask()[k]:
                if sim.sessions.cmd_tick[k] >= sim.fleet_metrics.sent_tick[k]:
                    # it answered every state it was sent: silence counts from this one, as in
                    # lockstep (a simulator that falls behind does not make its agents silent)
                    sim.sessions.last_command_wall[k] = time.monotonic()
                sim.out.send(int(sim.world.ids[k]), sim.out.state(k))
        nxt = tick_start + period
        sim.intake.pump(nxt)
        return nxt
