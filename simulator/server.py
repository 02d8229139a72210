"""The simulator process: the world, its radio and its failures, serving agents over ZeroMQ.

One ROUTER socket (bound at ``endpoint``) talks to every agent (see ``docs/protocol.md``). Each tick
the world sends every live agent its state and sensing (true position, world time, a patch of the
field ``W``, ``grad W`` covering the midpoints with every neighbour in range), applies the latest
command each agent sent, and carries beacons through the radio model.

Clock modes:

- ``realtime``: one tick every ``tick / time_scale`` wall seconds; the states of a tick are
  staggered across it (agent ``i`` of ``n`` at phase ``i / n``; those less than a millisecond
  apart go out together) so that the agents do not all wake at once; a command older than
  ``command_ttl_wall`` is not applied (the robot stops). Before the clock starts, a first
  round sends every agent the state of tick 0 (its first patch) and waits until each has
  answered, at most ``failure_timeout_wall`` (:meth:`Clock.first_round`).
- ``lockstep``: deterministic, for tests and benchmarks. Each tick has a sensing round (states with
  ``reply="beacon"``: every agent beacons its position of this tick, and the radio delivers) and a
  command round (states with the patch; every live agent's command is awaited, up to
  ``lockstep_timeout_wall``). Agents thus compute with their neighbours' positions of the same
  tick, as the central :func:`swarmcover.flow` does with ``fixed_step=tick``.

Failures: an agent that has sent no command for ``failure_timeout_wall``, counted from the first
state it left unanswered, is marked failed (its body stops, or drifts with the wind); nobody
tells the other agents. A hello with a newer epoch re-admits it (``rejoined``: a restarted
process), and so does a repeated hello of the same epoch from the same connection
(``recovered``: it was only slow, not dead). Injected failures
(``failures``, ``random_failures``, or :meth:`inject` from the live view) cut a robot off, silence
its radio, or make its body ignore commands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import zmq

from swarmcover.domain import Box
from swarmcover.law import BlobLaw
from swarmcover.logbudget import LogBudget

from .budgets import MemberBudgets, ensure_descriptors
from .clock import Clock
from .config import SimConfig
from .faults import Faults
from .fleetmetrics import FleetMetrics
from .intake import Intake
from .link import AgentLink
from .outbox import Outbox
from .radio import Radio
from .recording import Recorder
from .report import SimReport, report
from .sensing import PATCH_MARGIN, PATCH_RESEND_TICKS, Sensing
from .sessions import Sessions
from .world import STATUS_NAMES, Snapshot, World

__all__ = ["PATCH_MARGIN", "PATCH_RESEND_TICKS", "Simulator"]

log = logging.getLogger("swarmcover.sim")

#: the simulator's counters (``summary.json``'s ``messages``; docs/simulator.md)
COUNTERS = (
    "messages_in", "messages_out", "rejected", "commands", "send_failed", "lockstep_timeouts",
    "impersonation", "beacons_over_rate", "states_sent", "commands_answering", "commands_on_time",
    "patches_sent", "over_budget", "stats_unasked", "mass_capped",
)  # fmt: skip


def _wind_field(cfg: SimConfig) -> Callable[[np.ndarray], np.ndarray] | None:
    if cfg.wind is None:
        return None
    v = np.asarray(cfg.wind.velocity, dtype=np.float64)
    if cfg.wind.shear is None:
        return lambda x: np.broadcast_to(v, x.shape)
    a = np.asarray(cfg.wind.shear, dtype=np.float64)
    c = np.asarray(cfg.wind.center if cfg.wind.center is not None else np.zeros_like(v), dtype=np.float64)
    return lambda x: v + (x - c) @ a.T


def _recorder(cfg: SimConfig) -> Recorder | None:
    """The run's recording (``cfg.record``: its folder), with what a replay needs to know."""
    if cfg.record is None:
        return None
    meta = {"roster": cfg.roster, "bounds": [list(b) for b in cfg.bounds], "tick": cfg.tick,
            "status_names": STATUS_NAMES, "config": cfg.model_dump(mode="json")}  # fmt: skip
    return Recorder(cfg.record, meta, cfg.flush_every_wall)


class Simulator:
    """The world and its link to the agents. ``run()`` blocks until the duration or :meth:`stop`."""

    def __init__(self, cfg: SimConfig, ctx: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self.rng = np.random.default_rng(cfg.seed)
        self.target = cfg.target.build(cfg.bounds)  # the demand: what coverage is measured against
        # what the law covers: the demand, or its service density rhobar^(d/(d+2))
        law_target = self.target.for_service() if cfg.objective == "service" else self.target
        n = len(cfg.positions)
        nofile = ensure_descriptors(n)
        pairs = [(cfg.eps, cfg.smoothing), *((p.eps, p.smoothing) for p in cfg.sensing)]
        self.sensing = Sensing(law_target, pairs, n, cfg.boundary, cfg.cutoff)
        # the default pair's law, for the blob-energy metric (its field is the cached one)
        self.law = BlobLaw(
            law_target, cfg.eps, 1.0 / n, boundary=cfg.boundary, cutoff=cfg.cutoff,
            target_smoothing=cfg.smoothing,
        )  # fmt: skip
        self.box = Box(cfg.bounds)
        self.world = World(cfg.roster, cfg.initial_positions(), self.box, cfg.speed_limit,
                           zones=self.target.zones, wind=_wind_field(cfg),
                           drift_when_failed=cfg.drift_when_failed)  # fmt: skip
        rc = cfg.radio
        self.radio = Radio(cfg.roster, cfg.dim, rc.range if rc.range is not None else self.sensing.radius,
                           rc.loss, rc.latency, rc.jitter, [z.zone() for z in rc.blackouts],
                           rng=np.random.default_rng(cfg.seed + 1))  # fmt: skip
        self.faults = Faults(self.world, self.radio, cfg.failures, cfg.random_failures, self.rng, self.event)
        self.sessions = Sessions(n)  # who speaks for each robot, and what it has said
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.budgets = MemberBudgets(n)  # what one member can make this process do is bounded
        self.stats_asked = np.zeros(n, dtype=bool)
        self.quiet = LogBudget(log)
        self.tick = 0
        self.running = False
        self.paused = False
        self.speed = 1.0  # real time: multiplies time_scale (renderer keys)
        self.events: list[dict] = []
        # coverage quality every metrics_every world seconds, sense-to-command timing per robot
        self.fleet_metrics = FleetMetrics(n, cfg.metrics_every, self.target, self.law, self.counts,
                                          background=cfg.clock == "realtime")  # fmt: skip
        self.metrics = self.fleet_metrics.series
        self.observers: list[Callable[[Snapshot], None]] = []
        #: called while the world is paused (a live view keeps taking keys, to resume it)
        self.idle_observers: list[Callable[[], None]] = []
        self.recorder = _recorder(cfg)
        self.link = AgentLink(cfg, nofile, ctx)  # the socket, CURVE and the connection bounds
        self.endpoint = self.link.endpoint
        self.intake = Intake(self)  # what agents send, taken
        self.out = Outbox(self)  # what the simulator sends them
        self.clock = Clock(self)  # lockstep or real time
        log.info("simulator bound at %s, roster of %d", self.endpoint, n)

    # ------------------------------------------------------------------ events
    def event(self, kind: str, agent_id: int | None = None, **details) -> None:
        row = {
            "t": self.world.t,
            "kind": kind,
            **({"agent_id": agent_id} if agent_id is not None else {}),
            **details,
        }
        self.events.append(row)
        if self.recorder is not None:
            self.recorder.event(self.world.t, kind, agent_id, **details)
        log.info("t=%.2f %s %s %s", self.world.t, kind, "" if agent_id is None else agent_id, details or "")

    def member_event(self, k: int, kind: str, agent_id: int, **details) -> None:
        """An event a member's message caused: within its budget (:mod:`swarmcover.simulator.budgets`)."""
        if self.budgets.admit_event(k, kind, self.world.t):
            self.event(kind, agent_id, **details)

    def set_paused(self, paused: bool, by: str = "view") -> None:
        """Pause or resume the world's clock (an event ``paused`` / ``resumed`` records who)."""
        if bool(paused) != self.paused:
            self.paused = bool(paused)
            self.event("paused" if self.paused else "resumed", None, by=by)

    def set_speed(self, speed: float, by: str = "view") -> None:
        """Run the real-time clock ``speed`` times faster (1/16 to 16; an event ``speed``)."""
        s = float(min(16.0, max(1 / 16, speed)))
        if s != self.speed:
            self.speed = s
            self.event("speed", None, speed=s, by=by)

    def idle(self) -> None:
        for obs in self.idle_observers:
            obs()

    def inject(self, kind: str, ids: list[int]) -> None:
        """Inject ``kind`` (``fail``, ``radio_fail``, ``body_fail``, ``revive``) for robots ``ids``
        (:class:`swarmcover.simulator.faults.Faults`); a revived robot's silence counts from now."""
        for k in self.faults.inject(kind, ids):
            if kind == "revive":
                self.sessions.last_command_wall[k] = time.monotonic()

    def detect(self, wall: float, answered: np.ndarray | None = None) -> None:
        self.faults.detect(wall, self.sessions.last_command_wall, self.cfg.failure_timeout_wall, answered)

    def due_events(self) -> None:
        self.faults.due(self.world.t, self.cfg.tick, self.inject)

    def period(self) -> float:
        """The wall seconds of one tick in real time (at the live view's speed)."""
        return self.cfg.tick / (self.cfg.time_scale * self.speed)

    def radio_now(self, wall: float) -> float:
        return self.world.t if self.cfg.clock == "lockstep" else wall

    # ------------------------------------------------------------------ per tick
    def radio_update(self) -> None:
        ok = self.world.live_mask() & ~self.world.radio_failed
        self.radio.update(self.world.ids[ok], self.world.x[ok])

    def after_step(self, wall_epoch: float) -> None:
        snap = self.world.snapshot()
        if self.recorder is not None:
            self.recorder.snapshot(snap, wall_epoch)
        self.fleet_metrics.sample(self.world)
        self.fleet_metrics.poll()
        for obs in self.observers:
            obs(snap)

    def wait_for_agents(self, count: int | None = None, on_wait: Callable[[int], None] | None = None) -> int:
        """Take hellos until ``count`` (default: the whole roster) agents have joined, or
        ``wait_for_agents_wall`` passes, or :meth:`stop`; returns how many joined. ``on_wait``
        (called with the number joined so far, at least every 50 ms) lets a supervisor watch."""
        want = len(self.world.ids) if count is None else count
        deadline = time.monotonic() + self.cfg.wait_for_agents_wall
        while self.running and int(self.world.connected.sum()) < want and time.monotonic() < deadline:
            self.intake.pump(min(deadline, time.monotonic() + 0.05), once=True)
            if on_wait is not None:
                on_wait(int(self.world.connected.sum()))
        return int(self.world.connected.sum())

    def report(self) -> SimReport:
        """The run as this simulator saw it, in plain values (:mod:`swarmcover.simulator.report`)."""
        self.fleet_metrics.flush()
        return report(self)

    def timing(self) -> dict:
        """Sense-to-command timing so far (:meth:`swarmcover.simulator.fleetmetrics.FleetMetrics.timing`)."""
        return self.fleet_metrics.timing()

    def collect(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Take messages (byes, stats) for up to ``seconds`` wall seconds without advancing the
        world, or until ``until()`` is true."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until is not None and until()):
            self.intake.pump(min(deadline, time.monotonic() + 0.02), once=True)

    # ------------------------------------------------------------------ loop
    def stop(self, *_args) -> None:
        self.running = False

    def done(self) -> bool:
        return self.cfg.duration is not None and self.world.t >= self.cfg.duration - 1e-9

    def start(self, on_wait: Callable[[int], None] | None = None) -> None:
        """Wait for the agents (up to ``wait_for_agents_wall``; see :meth:`wait_for_agents`) and
        record the initial state."""
        self.running = True
        self.event("start", clock=self.cfg.clock, endpoint=self.endpoint)
        joined = self.wait_for_agents(on_wait=on_wait)
        if joined < len(self.world.ids):
            log.warning("%d of %d agents joined within %.0f s; starting anyway", joined, len(self.world.ids),
                        self.cfg.wait_for_agents_wall)  # fmt: skip
        if self.cfg.clock == "realtime" and self.running:  # every first patch before tick 1
            self.clock.first_round()
        self.after_step(time.time())
        self.clock.next_wall = time.monotonic()
        # silence counts from the first clocked state (not the wait for the others, or the first round)
        self.sessions.last_command_wall[self.world.connected] = self.clock.next_wall

    def advance(self, max_ticks: int | None = None) -> int:
        """Run ticks until the duration, :meth:`stop`, or ``max_ticks``; returns the ticks run."""
        self.running = True
        return self.clock.advance(max_ticks)

    def finish(self) -> None:
        """Record the end and close the socket and the recording."""
        for kind, details in self.link.conns.take_events():  # refusals since the last look
            self.event(kind, None, **details)
        counts = {**self.counts, **self.link.conns.counts}
        self.event("end", ticks=self.tick, counters=counts, radio=self.radio.counters.as_dict())
        self.close()

    def run(self, max_ticks: int | None = None) -> None:
        """``start``, ``advance`` and ``finish`` (also when interrupted)."""
        try:
            self.start()
            self.advance(max_ticks)
        finally:
            self.finish()

    def close(self) -> None:
        if self.link.closed:
            return
        if self.recorder is not None:
            self.recorder.close()
        self.fleet_metrics.close()
        self.link.close()
