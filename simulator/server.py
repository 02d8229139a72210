"""The simulator process: the world, its radio and its failures, serving agents over ZeroMQ.

One ROUTER socket (bound at ``endpoint``) talks to every agent (see ``docs/protocol.md``). Each tick
the world sends every live agent its state and sensing (true position, world time, a patch of the
field ``W``, ``grad W`` covering the midpoints with every neighbour in range), applies the latest
command each agent sent, and carries beacons through the radio model.

Clock modes:

- ``realtime``: one tick every ``tick / time_scale`` wall seconds; the states of a tick are
  staggered across it (agent ``i`` of ``n`` at phase ``i / n``; those less than a millisecond
  apart go out together) so that the agents do not all wake at once; a command older than
  ``command_ttl_wall`` is not applied (the robot stops).
- ``lockstep``: deterministic, for tests and benchmarks. Each tick has a sensing round (states with
  ``reply="beacon"``: every agent beacons its position of this tick, and the radio delivers) and a
  command round (states with the patch; every live agent's command is awaited, up to
  ``lockstep_timeout_wall``). Agents thus compute with their neighbours' positions of the same
  tick, as the central :func:`swarmcover.flow` does with ``fixed_step=tick``.

Failures: an agent that has sent no command for ``failure_timeout_wall`` is marked failed (its
body stops, or drifts with the wind); nobody tells the other agents. A hello with a newer epoch
re-admits it (``rejoined``: a restarted process), and so does a repeated hello of the same epoch
from the same connection (``recovered``: it was only slow, not dead). Injected failures
(``events``, ``random_dropouts``, or :meth:`inject` from the renderer) cut a robot off, silence
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
from swarmcover.protocol import (
    Beacon,
    BeaconPart,
    Bye,
    Command,
    Hello,
    Neighbors,
    Path,
    ProtocolError,
    State,
    Stats,
    StatsRequest,
    decode,
    encode,
)

from .budgets import MemberBudgets, ensure_descriptors
from .config import SimConfig
from .faults import Faults
from .fleetmetrics import FleetMetrics
from .link import AgentLink
from .radio import Radio
from .recording import Recorder
from .sensing import PATCH_MARGIN, PATCH_RESEND_TICKS, Sensing
from .sessions import Admission, Sessions
from .world import STATUS_NAMES, Snapshot, World

__all__ = ["PATCH_MARGIN", "PATCH_RESEND_TICKS", "Simulator"]

log = logging.getLogger("swarmcover.sim")


def _wind_field(cfg: SimConfig) -> Callable[[np.ndarray], np.ndarray] | None:
    if cfg.wind is None:
        return None
    v = np.asarray(cfg.wind.velocity, dtype=np.float64)
    if cfg.wind.shear is None:
        return lambda x: np.broadcast_to(v, x.shape)
    a = np.asarray(cfg.wind.shear, dtype=np.float64)
    c = np.asarray(cfg.wind.center if cfg.wind.center is not None else np.zeros_like(v), dtype=np.float64)
    return lambda x: v + (x - c) @ a.T


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
        pairs = [(cfg.eps, cfg.target_smoothing), *((p.eps, p.smoothing) for p in cfg.sensing)]
        self.sensing = Sensing(law_target, pairs, n, cfg.boundary, cfg.cutoff)
        # the default pair's law, for the blob-energy metric (its field is the cached one)
        self.law = BlobLaw(
            law_target, cfg.eps, 1.0 / n, boundary=cfg.boundary, cutoff=cfg.cutoff,
            target_smoothing=cfg.target_smoothing,
        )  # fmt: skip
        self.box = Box(cfg.bounds)
        self.world = World(
            cfg.roster,
            cfg.initial_positions(),
            self.box,
            cfg.speed_limit,
            zones=self.target.zones,
            wind=_wind_field(cfg),
            drift_when_failed=cfg.drift_when_failed,
        )
        rc = cfg.radio
        self.radio = Radio(
            cfg.roster,
            cfg.dim,
            rc.range if rc.range is not None else self.sensing.radius,
            rc.loss,
            rc.latency,
            rc.jitter,
            [z.zone() for z in rc.blackouts],
            rng=np.random.default_rng(cfg.seed + 1),
        )
        self.faults = Faults(self.world, self.radio, cfg.events, cfg.random_dropouts, self.rng, self.event)
        self.sessions = Sessions(n)  # who speaks for each robot, and what it has said
        self.counts = {
            "messages_in": 0,
            "messages_out": 0,
            "rejected": 0,
            "commands": 0,
            "send_failed": 0,
            "lockstep_timeouts": 0,
            "impersonation": 0,
            "beacons_over_rate": 0,
            "states_sent": 0,
            "commands_answering": 0,
            "commands_on_time": 0,
            "patches_sent": 0,
            "over_budget": 0,
            "stats_unasked": 0,
            "mass_capped": 0,
        }
        self.budgets = MemberBudgets(n)  # what one member can make this process do is bounded
        self.stats_asked = np.zeros(n, dtype=bool)
        self.quiet = LogBudget(log)
        self.epoch = time.time_ns()
        self.seq = 0
        self.tick = 0
        self.running = False
        self.paused = False
        self.speed = 1.0  # real time: multiplies time_scale (renderer keys)
        self.events: list[dict] = []
        # coverage quality every metrics_every world seconds, sense-to-command timing per robot
        self.fleet_metrics = FleetMetrics(n, cfg.metrics_every, self.target, self.law, self.counts)
        self.metrics = self.fleet_metrics.series
        self._eps_warned: set[int] = set()
        self.observers: list[Callable[[Snapshot], None]] = []
        #: called while the world is paused (a live view keeps taking keys, to resume it)
        self.idle_observers: list[Callable[[], None]] = []
        self._paths = {p.agent_id: p for p in cfg.paths}
        self.recorder: Recorder | None = None
        if cfg.record is not None:
            meta = {
                "roster": cfg.roster,
                "bounds": [list(b) for b in cfg.bounds],
                "tick": cfg.tick,
                "status_names": STATUS_NAMES,
                "config": cfg.model_dump(mode="json"),
            }
            self.recorder = Recorder(cfg.record, meta, cfg.flush_every_wall)
        self.link = AgentLink(cfg, nofile, ctx)  # the socket, CURVE and the connection bounds
        self.endpoint = self.link.endpoint
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

    def _member_event(self, k: int, kind: str, agent_id: int, **details) -> None:
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

    def _idle(self) -> None:
        for obs in self.idle_observers:
            obs()

    def inject(self, kind: str, ids: list[int]) -> None:
        """Inject ``kind`` (``fail``, ``radio_fail``, ``body_fail``, ``revive``) for robots ``ids``
        (:class:`swarmcover.simulator.faults.Faults`); a revived robot's silence counts from now."""
        for k in self.faults.inject(kind, ids):
            if kind == "revive":
                self.sessions.last_command_wall[k] = time.monotonic()

    def _detect(self, wall: float, answered: np.ndarray | None = None) -> None:
        self.faults.detect(wall, self.sessions.last_command_wall, self.cfg.failure_timeout_wall, answered)

    def _due_events(self) -> None:
        self.faults.due(self.world.t, self.cfg.tick, self.inject)

    # ------------------------------------------------------------------ messages
    def _send(self, agent_id: int, frames: list[bytes]) -> None:
        route = self.sessions.routes.get(agent_id)
        if route is None:
            return
        if self.link.send(route, frames):
            self.counts["messages_out"] += 1
        else:
            self.counts["send_failed"] += 1

    def _send_path(self, a: int) -> None:
        """An agent's planned path (after every hello: a restarted agent needs it again)."""
        path = self._paths.get(a)
        if path is not None:
            self.seq += 1
            env = {"agent_id": a, "epoch": self.epoch, "seq": self.seq, "t": time.time()}
            self._send(a, encode(Path(**env, plan=1, times=path.times, points=path.points)))

    def _reject(self, why: str) -> None:
        self.counts["rejected"] += 1
        log.info("rejected: %s", why)

    def _take(self, route: bytes, frames: list[bytes], wall: float, user: str | None = None) -> None:
        self.counts["messages_in"] += 1
        try:
            msg = decode(frames).message
        except ProtocolError as exc:
            self._reject(str(exc))
            return
        a = msg.agent_id
        k = self.world.index.get(a)
        if k is None:
            self._reject(f"agent {a} is not on the roster")
            return
        owner = self.link.agent_for(user)
        if self.link.guard is not None and owner != a:
            self.counts["impersonation"] += 1
            self._reject(f"{msg.kind} claiming agent {a} from the key of agent {owner}")
            self.quiet.warning("impersonation", "agent %s's key used to claim agent %d", owner, a)
            if owner is not None and owner in self.world.index:  # charged to the key's owner
                ko = self.world.index[owner]
                self._member_event(ko, "impersonation", a, key_of=owner, kind_claimed=msg.kind)
            return
        if isinstance(msg, Hello):
            self._hello(k, a, route, msg, wall)
            return
        if not self.sessions.in_order(a, route, msg.epoch, msg.seq):
            self._reject(f"{msg.kind} claiming agent {a} from another connection, epoch or out of order")
            return
        if isinstance(msg, Command):
            if len(msg.velocity) != self.cfg.dim:
                self._reject(f"command of dimension {len(msg.velocity)}")
                return
            if self.world.failed[k]:
                return
            self._ask(k, a, msg.eps, msg.smoothing)
            rep = msg.schedule
            if rep is not None and self.sessions.report_schedule(k, rep):
                # a restart, begun by this agent or taken up from its neighbours
                self._member_event(
                    k, "schedule_restart", a, epoch=rep.epoch, stage=rep.stage, cause=rep.cause
                )
            if msg.tick == self.fleet_metrics.sent_tick[k] and self.sessions.cmd_tick[k] != msg.tick:
                # the first answer to the latest state: its sense-to-command latency (on time: back
                # before the world's next step, one tick period after the state went out)
                period = self.cfg.tick / (self.cfg.time_scale * self.speed)
                self.fleet_metrics.answered(k, time.monotonic(), period)
            self.world.set_command(a, np.array(msg.velocity), wall)
            self.sessions.commanded(k, msg.tick, wall)
            self.counts["commands"] += 1
            if msg.beacon is not None:  # this tick's beacon, riding on the command
                self._beacon(k, a, msg.beacon, msg.t, wall)
        elif isinstance(msg, Beacon):
            self._beacon(k, a, msg, msg.t, wall)
        elif isinstance(msg, Bye):
            self.world.connected[k] = False
            self.sessions.bye(a)
            self.radio.forget(a)
            self._member_event(k, "bye", a, reason=msg.reason, counters=msg.counters.model_dump())
        elif isinstance(msg, Stats):
            if not self.stats_asked[k]:  # one answer per request; unasked stats are not recorded
                self.counts["stats_unasked"] += 1
                self._reject(f"stats from agent {a} that nobody asked for")
                return
            self.stats_asked[k] = False
            self._member_event(k, "stats", a, counters=msg.counters.model_dump(), neighbors=msg.neighbors)
        else:
            self._reject(f"{msg.kind} is not for the simulator")

    def _hello(self, k: int, a: int, route: bytes, msg: Hello, wall: float) -> None:
        """Admit a hello (:meth:`swarmcover.simulator.sessions.Sessions.hello`) and act on it."""
        silent = bool(self.faults.detected[k] and not self.faults.injected[k])
        got = self.sessions.hello(k, a, route, msg.epoch, msg.seq, wall, silent)
        if got is Admission.REFUSED:
            self._reject(f"hello from agent {a} with an old epoch or another connection")
        if got in (Admission.REFUSED, Admission.REPEATED):
            return
        # joined, rejoined (a restarted process) or recovered (detected silent, but it was only a
        # slow start or a stall, not a death): a new process holds no patch
        self.world.connected[k] = True
        self.sensing.reset(k)
        self._ask(k, a, msg.eps, msg.smoothing)
        self.faults.clear_detected(k)
        self._member_event(k, got.value, a, epoch=msg.epoch)
        if got is not Admission.RECOVERED:
            self._send_path(a)

    def _ask(self, k: int, a: int, eps: float | None, smoothing: float | None) -> None:
        """Agent ``a`` asks for patches sensed for ``eps`` (and ``smoothing``)."""
        if eps is not None and not self.sensing.ask(k, eps, smoothing) and a not in self._eps_warned:
            self._eps_warned.add(a)
            log.warning("agent %d asks for eps %g, smoothing %s: the world does not sense for it (it senses "
                        "for %s)", a, eps, smoothing, self.sensing.pairs[:4])  # fmt: skip

    def _beacon(self, k: int, a: int, b: Beacon | BeaconPart, t: float, wall: float) -> None:
        """Hand agent ``a``'s beacon (a message, or riding on its command) to the radio."""
        period = self.cfg.tick / (self.cfg.time_scale * self.speed) if self.cfg.clock == "realtime" else None
        if not self.sessions.admit_beacon(k, self.tick, wall, period):
            self.counts["beacons_over_rate"] += 1
            self._reject(f"agent {a} beacons faster than one a tick")
            return
        if len(b.position) != self.cfg.dim:
            self._reject("beacon of the wrong dimension")
            return
        ok = not self.world.failed[k] and not self.world.radio_failed[k]
        phase = None if b.phase is None else (b.phase.epoch, b.phase.age)
        # the position relayed is the world's, never the claimed one; the mass at most the fleet's
        mass = b.mass
        if mass > self.law.mass * (1.0 + 1e-9):
            self.counts["mass_capped"] += 1
            mass = self.law.mass
        self.radio.send(a, self.world.x[k], t, mass, self._radio_now(wall), can_send=ok, phase=phase)

    def _radio_now(self, wall: float) -> float:
        return self.world.t if self.cfg.clock == "lockstep" else wall

    def _pump(self, until: float, once: bool = False) -> None:
        """Take messages until wall time ``until`` (monotonic), or (``once``) until the first
        batch of messages has been taken."""
        # ZeroMQ polls in whole milliseconds. Rounded down, so as never to sleep past ``until``;
        # and less than a millisecond before it the pump returns (early by less than that) rather
        # than sleep a whole one: with hundreds of agents the states' slots are a fraction of a
        # millisecond apart, and a 1 ms sleep per slot stretched each tick to one ms per agent
        # (400 agents at 10 Hz: 2.5 ticks a second)
        while True:
            left = until - time.monotonic()
            self.link.wait(left)
            took = self._drain()
            if until - time.monotonic() < 1e-3 or (once and took):
                return

    def _drain(self) -> int:
        """Take at most ``DRAIN_MAX`` waiting messages, each stamped with its own arrival (a
        long batch must not make the ones at its end look old), each connection within its
        budget (the excess is dropped unparsed)."""
        for kind, details in self.link.conns.take_events():
            self.event(kind, None, **details)
        took, refused = 0, self.link.multipart
        for route, frames, wall, user in self.link.receive():
            took += 1
            if not self.budgets.admit_message(route, self.tick, wall):
                self.counts["over_budget"] += 1
                continue
            self._take(route, frames, wall, user)
        refused = self.link.multipart - refused
        self.counts["rejected"] += refused
        took += refused
        return took

    def _state(self, k: int, reply: str = "command") -> list[bytes]:
        a = int(self.world.ids[k])
        x = self.world.x[k]
        self.seq += 1
        env = {"agent_id": a, "epoch": self.epoch, "seq": self.seq, "t": time.time()}
        if reply == "beacon":
            st = State(**env, position=x.tolist(), world_time=self.world.t, dt=self.cfg.tick, tick=self.tick,
                       reply="beacon")  # fmt: skip
            return encode(st)
        got = self.sensing.patch_for(k, x, self.tick, int(self.sessions.cmd_tick[k]))
        patch, coef = (None, None) if got is None else got
        if got is not None:
            self.counts["patches_sent"] += 1
        self.fleet_metrics.state_sent(k, self.tick, time.monotonic())
        # the beacons its radio received since its last state ride along (one message, not one each)
        rows = self.radio.collect(a, self._radio_now(time.monotonic()))
        if self.world.radio_failed[k] or not len(rows):
            rows, nb = None, None
        else:
            nb = Neighbors(count=len(rows), buffer=0 if patch is None else 1, phase=True)
        t_world = self.world.t
        st = State(**env, position=x.tolist(), world_time=t_world, dt=self.cfg.tick, tick=self.tick,
                   patch=patch, neighbors=nb)  # fmt: skip
        return encode(st, coef, rows)

    # ------------------------------------------------------------------ per tick
    def _radio_update(self) -> None:
        ok = self.world.live_mask() & ~self.world.radio_failed
        self.radio.update(self.world.ids[ok], self.world.x[ok])

    def _after_step(self, wall_epoch: float) -> None:
        snap = self.world.snapshot()
        if self.recorder is not None:
            self.recorder.snapshot(snap, wall_epoch)
        self.fleet_metrics.sample(self.world)
        for obs in self.observers:
            obs(snap)

    def wait_for_agents(self, count: int | None = None, on_wait: Callable[[int], None] | None = None) -> int:
        """Take hellos until ``count`` (default: the whole roster) agents have joined, or
        ``wait_for_agents_wall`` passes, or :meth:`stop`; returns how many joined. ``on_wait``
        (called with the number joined so far, at least every 50 ms) lets a supervisor watch."""
        want = len(self.world.ids) if count is None else count
        deadline = time.monotonic() + self.cfg.wait_for_agents_wall
        while self.running and int(self.world.connected.sum()) < want and time.monotonic() < deadline:
            self._pump(min(deadline, time.monotonic() + 0.05), once=True)
            if on_wait is not None:
                on_wait(int(self.world.connected.sum()))
        return int(self.world.connected.sum())

    def _lockstep_tick(self) -> None:
        # silence is measured from the first state an agent left unanswered: one that answered the
        # last tick is not silent, however long the world paused in between
        answered_last = self.sessions.cmd_tick >= self.tick
        self.sessions.last_command_wall[answered_last] = time.monotonic()
        self.tick += 1
        self._due_events()
        self._radio_update()
        live = np.flatnonzero(self.world.live_mask())
        for k in live:  # sensing round: every agent beacons this tick's position
            self._send(int(self.world.ids[k]), self._state(k, "beacon"))
        self._await(live, lambda k: self.sessions.beacon_tick[k] >= self.tick)
        for k in live:  # command round: each computes with its neighbours' positions of this tick
            self._send(int(self.world.ids[k]), self._state(k))
        self._await(live, lambda k: self.sessions.cmd_tick[k] >= self.tick)
        wall = time.monotonic()
        answered = self.sessions.cmd_tick == self.tick
        self._detect(wall, answered)
        self.world.command[~answered] = 0.0  # a robot that did not answer this tick holds still
        self.world.step(self.cfg.tick, wall, None)
        self._after_step(time.time())

    def _await(self, live: np.ndarray, done: Callable[[int], bool]) -> None:
        deadline = time.monotonic() + self.cfg.lockstep_timeout_wall
        while True:
            waiting = [
                k for k in live if not self.world.failed[k] and self.world.connected[k] and not done(k)
            ]
            if not waiting:
                return
            if time.monotonic() >= deadline:
                self.counts["lockstep_timeouts"] += 1
                return
            self._pump(min(deadline, time.monotonic() + 0.05), once=True)
            if not self.running:
                return

    def _realtime_tick(self, tick_start: float) -> float:
        """One real-time tick starting at wall ``tick_start``; returns when the next one starts."""
        period = self.cfg.tick / (self.cfg.time_scale * self.speed)
        wall = time.monotonic()
        if self.paused:  # no states go out, so nobody is silent
            self.sessions.last_command_wall[self.world.connected] = wall
            self._idle()
        else:
            self.world.step(self.cfg.tick, wall, self.cfg.command_ttl_wall)
            self.tick += 1
            self._after_step(time.time())
            self._due_events()
        self._detect(wall)
        self._radio_update()
        live = np.flatnonzero(self.world.live_mask()) if not self.paused else np.empty(0, dtype=np.int64)
        for i, k in enumerate(live):
            self._pump(tick_start + period * i / len(live))
            if self.world.live_mask()[k]:
                self._send(int(self.world.ids[k]), self._state(k))
        nxt = tick_start + period
        self._pump(nxt)
        return nxt

    def timing(self) -> dict:
        """Sense-to-command timing so far (:meth:`swarmcover.simulator.fleetmetrics.FleetMetrics.timing`)."""
        return self.fleet_metrics.timing()

    def request_stats(self) -> None:
        """Ask every connected agent for its counters; the answers are recorded as ``stats``
        events as they arrive (while the simulator runs or :meth:`collect` pumps)."""
        for k in np.flatnonzero(self.world.connected):
            a = int(self.world.ids[k])
            self.seq += 1
            self.stats_asked[k] = True
            self._send(a, encode(StatsRequest(agent_id=a, epoch=self.epoch, seq=self.seq, t=time.time())))

    def collect(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        """Take messages (byes, stats) for up to ``seconds`` wall seconds without advancing the
        world, or until ``until()`` is true."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (until is not None and until()):
            self._pump(min(deadline, time.monotonic() + 0.02), once=True)

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
        self._after_step(time.time())
        self._next_wall = time.monotonic()
        # silence counts from the first state: an agent that joined early is not silent for
        # the time the world waited for the others
        self.sessions.last_command_wall[self.world.connected] = self._next_wall

    def advance(self, max_ticks: int | None = None) -> int:
        """Run ticks until the duration, :meth:`stop`, or ``max_ticks``; returns the ticks run."""
        self.running = True
        ticks = 0
        self._next_wall = max(getattr(self, "_next_wall", 0.0), time.monotonic() - 1.0)
        while self.running and not self.done() and (max_ticks is None or ticks < max_ticks):
            if self.cfg.clock == "lockstep":
                if self.paused:
                    self._pump(time.monotonic() + 0.05)
                    self._idle()
                    continue
                self._lockstep_tick()
            else:
                self._next_wall = self._realtime_tick(self._next_wall)
                if time.monotonic() - self._next_wall > 1.0:  # over a second behind: do not catch up
                    self._next_wall = time.monotonic()
            ticks += 1
        return ticks

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
        self.link.close()
