"""What the agents send the simulator, taken: hellos, commands (with their beacons), beacons, byes
and stats, each checked against the roster, the connection's key, the session's order and the
member's budgets before it touches the world.

:class:`Intake` is one room of :class:`~swarmcover.simulator.server.Simulator`: it reads and
changes the simulator's world, sessions, sensing, radio and counters, and owns none of them.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from swarmcover import wiretwins as twins
from swarmcover.protocol import (
    Beacon,
    BeaconPart,
    Bye,
    Command,
    Hello,
    ProtocolError,
    Stats,
    decode,
    decode_twin,
)

from .sessions import Admission

__all__ = ["Intake"]

log = logging.getLogger("swarmcover.sim")


class Intake:
    """Messages from agents into the simulator ``sim`` (see the module docstring)."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self._eps_warned: set[int] = set()

    def reject(self, why: str) -> None:
        self.sim.counts["rejected"] += 1
        log.info("rejected: %s", why)

    def pump(self, until: float, once: bool = False) -> None:
        """Take messages until wall time ``until`` (monotonic), or (``once``) until the first
        batch of messages has been taken."""
        # ZeroMQ polls in whole milliseconds. Rounded down, so as never to sleep past ``until``;
        # and less than a millisecond before it the pump returns (early by less than that) rather
        # than sleep a whole one: with hundreds of agents the states' slots are a fraction of a
        # millisecond apart, and a 1 ms sleep per slot stretched each tick to one ms per agent
        # (400 agents at 10 Hz: 2.5 ticks a second)
        while True:
            left = until - time.monotonic()
            self.sim.link.wait(left)
            took = self.drain()
            if until - time.monotonic() < 1e-3 or (once and took):
                return

    def drain(self) -> int:
        """Take at most ``DRAIN_MAX`` waiting messages, each stamped with its own arrival (a
        long batch must not make the ones at its end look old), each connection within its
        budget (the excess is dropped unparsed)."""
        sim = self.sim
        for kind, details in sim.link.conns.take_events():
            sim.event(kind, None, **details)
        took, refused = 0, sim.link.multipart
        for route, frames, wall, user in sim.link.receive():
            took += 1
            if not sim.budgets.admit_message(route, sim.tick, wall):
                sim.counts["over_budget"] += 1
                continue
            self.take(route, frames, wall, user)
        refused = sim.link.multipart - refused
        sim.counts["rejected"] += refused
        return took + refused

    def take(self, route: bytes, frames: list[bytes], wall: float, user: str | None = None) -> None:
        sim = self.sim
        sim.counts["messages_in"] += 1
        try:  # commands (every agent, every tick) through their twin; the rest, and what it refuses, strictly
            msg = (decode_twin(frames, twins.Command) or decode(frames)).message
        except ProtocolError as exc:
            self.reject(str(exc))
            return
        a = msg.agent_id
        k = sim.world.index.get(a)
        if k is None:
            self.reject(f"agent {a} is not on the roster")
            return
        owner = sim.link.agent_for(user)
        if sim.link.guard is not None and owner != a:
            sim.counts["impersonation"] += 1
            self.reject(f"{msg.kind} claiming agent {a} from the key of agent {owner}")
            sim.quiet.warning("impersonation", "agent %s's key used to claim agent %d", owner, a)
            if owner is not None and owner in sim.world.index:  # charged to the key's owner
                sim.member_event(
                    sim.world.index[owner], "impersonation", a, key_of=owner, kind_claimed=msg.kind
                )
            return
        if isinstance(msg, Hello):
            self.hello(k, a, route, msg, wall)
        elif not sim.sessions.in_order(a, route, msg.epoch, msg.seq):
            self.reject(f"{msg.kind} claiming agent {a} from another connection, epoch or out of order")
        elif msg.kind == "command":  # a Command or its twin
            self.command(k, a, msg, wall)
        elif isinstance(msg, Beacon):
            self.beacon(k, a, msg, msg.t, wall)
        elif isinstance(msg, Bye):
            sim.world.connected[k] = False
            sim.sessions.bye(a)
            sim.radio.forget(a)
            sim.member_event(k, "bye", a, reason=msg.reason, counters=msg.counters.model_dump())
        elif isinstance(msg, Stats):
            if not sim.stats_asked[k]:  # one answer per request; unasked stats are not recorded
                sim.counts["stats_unasked"] += 1
                self.reject(f"stats from agent {a} that nobody asked for")
                return
            sim.stats_asked[k] = False
            sim.member_event(k, "stats", a, counters=msg.counters.model_dump(), neighbors=msg.neighbors)
        else:
            self.reject(f"{msg.kind} is not for the simulator")

    def command(self, k: int, a: int, msg: Command, wall: float) -> None:
        sim = self.sim
        if len(msg.velocity) != sim.cfg.dim:
            self.reject(f"command of dimension {len(msg.velocity)}")
            return
        if sim.world.failed[k]:
            return
        self.ask(k, a, msg.eps, msg.smoothing)
        rep = msg.schedule
        if rep is not None and sim.sessions.report_schedule(k, rep):
            # a restart, begun by this agent or taken up from its neighbours
            sim.member_event(k, "schedule_restart", a, epoch=rep.epoch, stage=rep.stage, cause=rep.cause)
        if msg.tick == sim.fleet_metrics.sent_tick[k] and sim.sessions.cmd_tick[k] != msg.tick:
            # the first answer to the latest state: its sense-to-command latency (on time: back
            # before the world's next step, one tick period after the state went out)
            sim.fleet_metrics.answered(k, time.monotonic(), sim.period())
        sim.world.set_command(a, np.array(msg.velocity), wall)
        sim.sessions.commanded(k, msg.tick, wall)
        sim.counts["commands"] += 1
        if msg.beacon is not None:  # this tick's beacon, riding on the command
            self.beacon(k, a, msg.beacon, msg.t, wall)

    def hello(self, k: int, a: int, route: bytes, msg: Hello, wall: float) -> None:
        """Admit a hello (:meth:`swarmcover.simulator.sessions.Sessions.hello`) and act on it."""
        sim = self.sim
        silent = bool(sim.faults.detected[k] and not sim.faults.injected[k])
        got = sim.sessions.hello(k, a, route, msg.epoch, msg.seq, wall, silent)
        if got is Admission.REFUSED:
            self.reject(f"hello from agent {a} with an old epoch or another connection")
        if got in (Admission.REFUSED, Admission.REPEATED):
            return
        # joined, rejoined (a restarted process) or recovered (detected silent, but it was only a
        # slow start or a stall, not a death): a new process holds no patch
        sim.world.connected[k] = True
        sim.sensing.reset(k)
        self.ask(k, a, msg.eps, msg.smoothing)
        sim.faults.clear_detected(k)
        sim.member_event(k, got.value, a, epoch=msg.epoch)
        if got is not Admission.RECOVERED:
            sim.out.path(a)

    def ask(self, k: int, a: int, eps: float | None, smoothing: float | None) -> None:
        """Agent ``a`` asks for patches sensed for ``eps`` (and ``smoothing``)."""
        sensing = self.sim.sensing
        if eps is not None and not sensing.ask(k, eps, smoothing) and a not in self._eps_warned:
            self._eps_warned.add(a)
            log.warning("agent %d asks for eps %g, smoothing %s: the world does not sense for it (it senses "
                        "for %s)", a, eps, smoothing, sensing.pairs[:4])  # fmt: skip

    def beacon(self, k: int, a: int, b: Beacon | BeaconPart, t: float, wall: float) -> None:
        """Hand agent ``a``'s beacon (a message, or riding on its command) to the radio."""
        sim = self.sim
        period = sim.period() if sim.cfg.clock == "realtime" else None
        if not sim.sessions.admit_beacon(k, sim.tick, wall, period):
            sim.counts["beacons_over_rate"] += 1
            self.reject(f"agent {a} beacons faster than one a tick")
            return
        if len(b.position) != sim.cfg.dim:
            self.reject("beacon of the wrong dimension")
            return
        ok = not sim.world.failed[k] and not sim.world.radio_failed[k]
        phase = None if b.phase is None else (b.phase.epoch, b.phase.age)
        # the position relayed is the world's, never the claimed one; the mass at most the fleet's
        mass = b.mass
        if mass > sim.law.mass * (1.0 + 1e-9):
            sim.counts["mass_capped"] += 1
            mass = sim.law.mass
        sim.radio.send(a, sim.world.x[k], t, mass, sim.radio_now(wall), can_send=ok, phase=phase)
