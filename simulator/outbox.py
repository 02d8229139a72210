"""What the simulator sends its agents: states (with patches and relayed beacons), planned paths
and stats requests, under the simulator's own envelope (its epoch, one sequence). States, sent to
every agent every tick, are built as their msgspec twins (:mod:`swarmcover.wiretwins`: the same
bytes, checked, cheaper).

:class:`Outbox` is one room of :class:`~swarmcover.simulator.server.Simulator`.
"""

from __future__ import annotations

import time

import numpy as np

from swarmcover import wiretwins as twins
from swarmcover.protocol import Path, StatsRequest, encode

__all__ = ["Outbox"]


class Outbox:
    """Messages from the simulator ``sim`` to its agents (see the module docstring)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.epoch = time.time_ns()
        self.seq = 0
        self.paths = {p.agent_id: p for p in sim.cfg.paths}

    def send(self, agent_id: int, frames: list[bytes]) -> None:
        route = self.sim.sessions.routes.get(agent_id)
        if route is None:
            return
        if self.sim.link.send(route, frames):
            self.sim.counts["messages_out"] += 1
        else:
            self.sim.counts["send_failed"] += 1

    def path(self, a: int) -> None:
        """An agent's planned path (after every hello: a restarted agent needs it again)."""
        path = self.paths.get(a)
        if path is not None:
            self.send(a, encode(Path(**self.envelope(a), plan=1, times=path.times, points=path.points)))

    def envelope(self, agent_id: int) -> dict:
        self.seq += 1
        return {"agent_id": agent_id, "epoch": self.epoch, "seq": self.seq, "t": time.time()}

    def state(self, k: int, reply: str = "command", timed: bool = True) -> list[bytes]:
        """The state for robot ``k`` this tick: a sensing round's (``reply="beacon"``: its position
        only), or with its patch (when it needs one) and the beacons its radio received;
        ``timed=False``: its answer is not counted in the sense-to-command timing."""
        sim, w = self.sim, self.sim.world
        a, x = int(w.ids[k]), w.x[k]
        env = self.envelope(a)
        if reply == "beacon":
            return encode(twins.State(**env, kind="state", position=x.tolist(), world_time=w.t,
                                      dt=sim.cfg.tick, tick=sim.tick, reply="beacon"))  # fmt: skip
        got = sim.sensing.patch_for(k, x, sim.tick, int(sim.sessions.cmd_tick[k]))
        patch, coef = (None, None) if got is None else got
        if got is not None:
            sim.counts["patches_sent"] += 1
        if timed:
            sim.fleet_metrics.state_sent(k, sim.tick, time.monotonic())
        # the beacons its radio received since its last state ride along (one message, not one each)
        rows = sim.radio.collect(a, sim.radio_now(time.monotonic()))
        if w.radio_failed[k] or not len(rows):
            rows, nb = None, None
        else:
            nb = twins.Neighbors(count=len(rows), buffer=0 if patch is None else 1, phase=True)
        st = twins.State(**env, kind="state", position=x.tolist(), world_time=w.t, dt=sim.cfg.tick,
                         tick=sim.tick, patch=patch, neighbors=nb)  # fmt: skip
        return encode(st, coef, rows)

    def request_stats(self) -> None:
        """Ask every connected agent for its counters; the answers are recorded as ``stats``
        events as they arrive (while the simulator runs or :meth:`Simulator.collect` pumps)."""
        for k in np.flatnonzero(self.sim.world.connected):
            a = int(self.sim.world.ids[k])
            self.sim.stats_asked[k] = True
            self.send(a, encode(StatsRequest(**self.envelope(a))))
