"""The agent process: the coverage law run on what the agent hears, at a fixed rate.

Loop: wait (``zmq.Poller``) for messages until the next control slot; take every message (states
from the body, beacons from peers, stats requests), validating each; at the slot, if a new state
has come, compute the command from the state, the live neighbour table and the sensed field, send
it to the body and a beacon to the peers. With no state for ``state_timeout`` it commands zero
velocity every period (fail-safe) and re-sends its hello so a restarted body re-admits it.
Between states the process sleeps in the poll: it wakes for a message, for the next fail-safe
check, or for a signal (:meth:`Agent.install_signal_handlers` routes signals to a socket the poll
watches; without it, e.g. in a thread, the poll wakes every 50 ms to look). SIGTERM/SIGINT end the
loop at once: a bye with the counters goes out and every socket closes with LINGER 0.
"""

from __future__ import annotations

import logging
import math
import signal
import socket
import time
from collections.abc import Callable

import numpy as np
import zmq

from swarmcover.domain import Box
from swarmcover.local import patch_covers, resolve_kernel
from swarmcover.logbudget import LogBudget
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import (
    Beacon,
    BeaconPart,
    Bye,
    Command,
    Counters,
    Hello,
    Path,
    PhaseInfo,
    ProtocolError,
    ScheduleReport,
    State,
    Stats,
    StatsRequest,
    decode,
    encode,
)
from swarmcover.schedule import CoverageSchedule, Stage
from swarmcover.tracking import PathTracker

from .bodies import VehicleLink, open_vehicle
from .config import AgentConfig
from .links import DirectPeers, SimLink, UdpBody, load_curve_keys
from .neighbors import NeighborTable, Verdict
from .ratelimit import TokenBucket
from .screen import PeerScreen
from .telemetry import TelemetryLog

__all__ = ["Agent"]

_POLL_MAX = 0.05  # seconds: the longest the loop sleeps when signals cannot wake it
_IDLE_MAX = 1.0  # seconds: the longest it sleeps when they can
_RATE_BURST = 2.0  # commands an agent may send at once after a late one (at most rate_hz on average)


class Agent:
    """One robot's controller. ``run()`` blocks until :meth:`stop` (or a signal)."""

    def __init__(self, cfg: AgentConfig, ctx: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self.log = logging.getLogger(f"swarmcover.agent.{cfg.agent_id}")
        self.quiet = LogBudget(self.log)  # what senders can make this agent log is bounded
        self.epoch = time.time_ns()  # increases across restarts of the same id on one host
        self.seq = 0
        self.counts = {k: 0 for k in Counters.model_fields}
        self.box = Box(cfg.bounds)
        self.kernel = resolve_kernel(cfg.kernel)  # "auto": the C kernel where it was built
        self.policy = self._policy()  # the decisions: schedule phase, losses, wind, the law
        # a config with one eps for ever takes patches for that eps at whatever smoothing the body
        # senses; with a schedule, a patch's eps and smoothing must be one of its stages
        self.strict_smoothing = cfg.schedule is not None
        self.table = NeighborTable(cfg.agent_id, cfg.dim, cfg.beacon_ttl, cfg.forget_after, cfg.max_neighbors)
        # direct beacons' positions are the senders' word: screened for what a robot can do
        zones = [] if cfg.target is None else [z.zone() for z in cfg.target.zones]
        self.screen = PeerScreen(self.box, cfg.speed_limit, cfg.beacon_ttl, zones=zones,
                                 capacity=cfg.max_neighbors)  # fmt: skip
        self.local_target = self._local_target()
        self._local_fields: dict[Stage, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._own_ctx = ctx is None
        self.ctx = zmq.Context() if ctx is None else ctx
        self.vehicle: VehicleLink | None = None  # a vehicle body (agents/bodies): connected in run()
        if cfg.body.kind == "sim":
            curve = None if cfg.curve is None else load_curve_keys(cfg.curve.secret_key, cfg.curve.server_key)
            self.body: SimLink | UdpBody | VehicleLink = SimLink(self.ctx, cfg.body.endpoint, curve)  # type: ignore[arg-type]
        elif cfg.body.kind == "udp":
            self.body = UdpBody(cfg.body.listen)
        else:
            self.body = self.vehicle = open_vehicle(cfg)
        if cfg.peers.kind == "sim":
            self.peers: SimLink | UdpBody | DirectPeers = self.body
        else:
            roster = [(None, p) if isinstance(p, str) else (p.agent_id, p.endpoint) for p in cfg.peers.roster]
            own, peer_keys = None, None
            if cfg.curve is not None:
                with_keys = [p for p in cfg.peers.roster if not isinstance(p, str)]
                keys = load_curve_keys(cfg.curve.secret_key, *(p.public_key for p in with_keys))
                own, peer_keys = keys[:2], {p.agent_id: k for p, k in zip(with_keys, keys[2:], strict=True)}
            self.peers = DirectPeers(self.ctx, cfg.peers.bind, roster, own, peer_keys)
        self.running = False
        self._stop_asked = False
        self.state: State | None = None
        # the field in use, (coef, origin, spacing) of the last accepted patch or of the local field,
        # and the stage it was sensed for
        self.field: tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Stage] | None = None
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], Stage] | None = (
            None  # last patch
        )
        self.answered_tick = -1
        self.beacon_tick = -1
        self.body_epoch, self.body_seq = -1, -1
        self.last_state_at = -math.inf
        self.last_hello_at = -math.inf
        self.clock: Callable[[], float] = time.monotonic
        self.telemetry = None if cfg.telemetry is None else TelemetryLog(cfg.telemetry, cfg.agent_id)
        self._wake: socket.socket | None = None  # signals write a byte here (set_wakeup_fd)

    # ------------------------------------------------------------------ setup
    def _policy(self) -> AgentPolicy:
        cfg = self.cfg
        if cfg.schedule is None:
            sched, after, losses = CoverageSchedule.fixed(cfg.eps), None, 0
        else:
            sc = cfg.schedule

            def build(specs):
                return CoverageSchedule(tuple(Stage(s.eps, s.smoothing, s.duration) for s in specs))

            sched, losses = build(sc.stages), sc.restart_losses
            after = build(sc.after_losses) if sc.after_losses else None
        return AgentPolicy(
            agent_id=cfg.agent_id, box=self.box, mass=cfg.mass, speed_limit=cfg.speed_limit,
            schedule=sched, after_losses=after, boundary=cfg.boundary, cutoff=cfg.cutoff,
            mismatch=cfg.mismatch, gain=cfg.gain, r_min=cfg.r_min, restart_losses=losses,
            wind_tau=cfg.drift_tau, kernel=self.kernel,
        )  # fmt: skip

    def _local_target(self):
        t = self.cfg.target
        if t is None:
            return None
        from swarmcover.targets import GaussianMixture, Uniform  # only an agent with a map of its own

        zones = [z.zone() for z in t.zones]
        if t.means:
            target = GaussianMixture(t.means, t.covs, t.weights, bounds=self.cfg.bounds, floor=t.floor,
                                     truncate=t.truncate, zones=zones)  # fmt: skip
        else:
            target = Uniform(self.cfg.bounds, floor=t.floor, zones=zones)
        return target.for_service() if t.objective == "service" else target

    def _local_field(self, stage: Stage) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The agent's own field for ``stage`` (from its on-board target), made once per stage."""
        got = self._local_fields.get(stage)
        if got is None:
            from swarmcover.law import BlobLaw

            # with one eps for ever, the target's own smoothing; with a schedule, the stage's
            smooth = stage.smoothing if self.strict_smoothing else self.cfg.target.target_smoothing
            f = BlobLaw(self.local_target, stage.eps, self.cfg.mass, boundary=self.cfg.boundary,
                        cutoff=self.cfg.cutoff, target_smoothing=smooth).field  # fmt: skip
            got = self._local_fields[stage] = (f.coef, f.origin, f.spacing)
        return got

    def _phase(self, world_time: float) -> PhaseInfo | None:
        p = self.policy.clock.phase
        return None if p is None else PhaseInfo(epoch=p.epoch, age=self.policy.clock.age(world_time))

    def _envelope(self) -> dict:
        self.seq += 1
        return {"agent_id": self.cfg.agent_id, "epoch": self.epoch, "seq": self.seq, "t": time.time()}

    def _send(self, link, msg, patch=None) -> None:
        if link.send(encode(msg, patch)):
            self.counts["messages_out"] += 1
        else:
            self.counts["dropped"] += 1

    def counters(self) -> Counters:
        body = {} if self.vehicle is None else self.vehicle.counts
        return Counters(**{**self.counts, **body})

    # ------------------------------------------------------------------ incoming
    def _fresh(self, t_sent: float) -> bool:
        skew = self.cfg.max_clock_skew
        return skew is None or abs(time.time() - t_sent) <= self.cfg.beacon_ttl + skew

    def _handle(
        self,
        frames: list[bytes],
        from_body: bool,
        now: float,
        peer: int | None = None,
        source_ok: bool = True,
    ) -> bool:
        """Take one message; ``peer``: the id its authenticated connection belongs to (CURVE direct
        mode), which the message must claim; ``source_ok``: whether it came from the body's
        confirmed address (UDP; always true for the simulator's connection). True when it was a
        state from the body, accepted."""
        self.counts["messages_in"] += 1
        try:
            dec = decode(frames)
        except ProtocolError as exc:
            self.counts["rejected"] += 1
            self.quiet.warning("rejected", "rejected a message: %s", exc)
            return False
        msg = dec.message
        if peer is not None and msg.agent_id != peer:
            self.counts["rejected"] += 1
            what = "a message claiming agent %d came from agent %d's connection"
            self.quiet.warning("impersonation", what, msg.agent_id, peer)
            return False
        if isinstance(msg, Beacon):
            if (self.cfg.peers.kind == "sim") != from_body or msg.agent_id == self.cfg.agent_id:
                self.counts["rejected"] += 1
                return False
            if not self._fresh(msg.t):
                self.counts["stale"] += 1
                return False
            if self.cfg.peers.kind != "sim" and not self._possible(msg, now):
                return False
            verdict = self.table.offer(msg, now)
            if verdict != Verdict.ACCEPTED:
                self.counts["rejected"] += 1
                self.quiet.info("beacon", "beacon from %d rejected: %s", msg.agent_id, verdict)
            elif self.state is not None:
                here = np.asarray(self.state.position, dtype=np.float64)
                self.policy.heard(here, np.asarray([msg.position], dtype=np.float64))
                if msg.phase is not None:  # its schedule phase, on our clock
                    # a vehicle's world clock runs on while its telemetry is away; a simulator's is
                    # the latest state's (in lockstep it stands still between ticks)
                    t = self.state.world_time if self.vehicle is None else self.vehicle.world_time()
                    self._hear([msg.phase.epoch], [msg.phase.age], t, now)
        elif isinstance(msg, State) and from_body:
            if msg.agent_id != self.cfg.agent_id or len(msg.position) != self.cfg.dim:
                self.counts["rejected"] += 1
                what = "state for agent %d / dim %d rejected"
                self.quiet.warning("state", what, msg.agent_id, len(msg.position))
                return False
            if not self._body_may_send(msg, source_ok, now):
                self.counts["rejected"] += 1
                self.quiet.info("order", "state from another address, an old epoch or out of order refused")
                return False
            if msg.epoch != self.body_epoch:  # a new body (a restarted simulator): ticks start over
                self.answered_tick = self.beacon_tick = -1
                self.held = None  # and its world may differ: wait for its own patch
            self.policy.begin(msg.world_time, now)
            self.table.at_tick(now, msg.tick)
            if dec.neighbors is not None:
                self._relayed(dec.neighbors, msg, now)
            if msg.reply == "beacon":  # sensing round: say where this tick's position is, nothing else
                self.body_epoch, self.body_seq = msg.epoch, msg.seq
                self.last_state_at = now
                self._beacon(list(msg.position), msg.tick, msg.world_time)
                return True
            field = self._field_for(msg, dec.patch)
            if field is None:
                self.counts["rejected"] += 1
                return False
            if msg.epoch != self.body_epoch:
                self.log.info("body epoch %d", msg.epoch)
            self.body_epoch, self.body_seq = msg.epoch, msg.seq
            self.policy.drift.observe(msg.tick, msg.world_time, np.asarray(msg.position, dtype=np.float64))
            self.state, self.field = msg, field
            self.last_state_at = now
            if self.telemetry is not None:
                self.telemetry.write(now, msg.world_time, msg.position)
            return True
        elif isinstance(msg, Path) and from_body:
            return self._path(msg, source_ok)
        elif isinstance(msg, StatsRequest) and from_body:
            self._send(self.body, Stats(**self._envelope(), counters=self.counters(),
                                        neighbors=len(self.table.live(now)[0])))  # fmt: skip
        else:
            self.counts["rejected"] += 1
        return False

    def _path(self, msg: Path, source_ok: bool) -> bool:
        """A planned path from the body: for this agent, in this domain, from its confirmed address."""
        bad = None
        if msg.agent_id != self.cfg.agent_id or not source_ok:
            bad = "path for another agent or from another address"
        elif msg.points and (len(msg.points[0]) != self.cfg.dim or not self.box.contains(msg.points).all()):
            bad = "path outside the domain or of another dimension"
        if bad is not None:
            self.counts["rejected"] += 1
            self.quiet.warning("path", "%s refused", bad)
            return False
        tracker = PathTracker(msg.times, msg.points, msg.plan) if msg.points else None
        if self.policy.follow(tracker):
            if tracker is None:
                self.log.info("planned path ended by the body: joining coverage")
            else:
                self.log.info("planned path %d: %d nodes, t = %.2f .. %.2f", msg.plan, len(msg.times),
                              tracker.times[0], tracker.end)  # fmt: skip
        return False

    def _possible(self, msg: Beacon, now: float) -> bool:
        """Whether a peer's direct beacon may be true (:mod:`swarmcover.agents.screen`); a peer that keeps
        sending impossible ones is quarantined."""
        a = msg.agent_id
        if self.screen.quarantined(a, now):
            self.counts["rejected"] += 1
            return False
        why = self.screen.why_impossible(np.asarray(msg.position, dtype=np.float64), now, self.table.last(a))
        if why is None:
            return True
        self.counts["impossible"] += 1
        self.quiet.warning("impossible", "beacon from %d rejected: %s", a, why)
        if self.screen.strike(a, now):
            self.counts["quarantined"] += 1
            self.table.forget(a)
            q = self.screen.quarantine
            self.quiet.warning("quarantine", "peer %d quarantined for %.0f s: %s", a, q, why)
        return False

    def _body_may_send(self, msg: State, source_ok: bool, now: float) -> bool:
        """Whether a state may come from the body: in order in the body's epoch, from its
        address; a new epoch (a restarted body) from the same address, or from anywhere once the
        body has been silent for ``state_timeout``. So one forged datagram with a huge epoch
        cannot lock the body out, nor another sender take over a body that is speaking."""
        if msg.epoch == self.body_epoch:
            return source_ok and msg.seq > self.body_seq
        if now - self.last_state_at > self.cfg.state_timeout:
            return True
        return source_ok and msg.epoch > self.body_epoch

    def _hear(self, epochs, ages, world_time: float, now: float) -> None:
        clock = self.policy.clock
        held = clock.deferred
        if self.policy.hear(epochs, ages, world_time, now):
            p = clock.phase
            self.log.info("took up schedule epoch %d (started %.2f s ago)", p.epoch, world_time - p.start)
        elif clock.deferred > held:
            self.counts["epochs_deferred"] += 1
            self.quiet.warning("epoch", "a restart heard while epoch %d is still annealing: held off "
                               "for up to %.3g s", clock.phase.epoch, clock.holdoff)  # fmt: skip

    def _relayed(self, rows: np.ndarray, msg: State, now: float) -> None:
        """Beacons the body's radio relayed with a state: rows ``[id, t, position, mass]`` (and,
        with phases, ``[epoch, age]``)."""
        if self.cfg.peers.kind != "sim":  # peers are heard directly: a body has none to relay
            self.counts["rejected"] += len(rows)
            return
        d, world_time = self.cfg.dim, msg.world_time
        if rows.shape[1] == d + 5 and len(rows):
            self._hear(rows[:, d + 3], rows[:, d + 4], world_time, now)
        skew = self.cfg.max_clock_skew
        if skew is not None:
            fresh = np.abs(time.time() - rows[:, 1]) <= self.cfg.beacon_ttl + skew
            self.counts["stale"] += int(len(fresh) - fresh.sum())
            rows = rows[fresh]
        # the table refuses this agent's own id (counted as "own")
        got = self.table.offer_relayed(rows, now)
        self.policy.heard(np.asarray(msg.position, dtype=np.float64), rows[:, 2 : 2 + d])
        self.counts["rejected"] += got["older"] + got["full"] + got["own"]
        if got["full"]:
            self.log.info("%d relayed beacons refused: neighbour table full", got["full"])

    def _field_for(
        self, msg: State, coef: np.ndarray | None
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], Stage] | None:
        """The field to compute this state with, and the stage it was sensed for: its patch; else
        the last patch this body sent, if it still covers the new position; else the agent's own
        target, for the stage in force; else None (rejected)."""
        x = np.asarray(msg.position, dtype=np.float64)
        if msg.patch is not None:
            p = msg.patch
            stage = self.policy.knows(p.eps, p.smoothing if self.strict_smoothing else None)
            if coef is None or stage is None:
                self.log.warning("patch for eps %g, smoothing %s: not a stage of this agent's schedule",
                                 p.eps, p.smoothing)  # fmt: skip
                return None
            origin, spacing = np.array(p.origin), np.array(p.spacing)
            if not patch_covers(origin, spacing, tuple(p.shape), x, 0.5 * self.policy.radius(stage)):
                self.log.warning("patch does not cover the midpoints with every neighbour in range")
                return None
            self.held = (coef, origin, spacing, tuple(p.shape), stage)
            return (coef, origin, spacing), stage
        if self.held is not None:
            c, o, h, shape, stage = self.held
            if patch_covers(o, h, shape, x, 0.5 * self.policy.radius(stage)):
                return (c, o, h), stage
        if self.local_target is not None:
            stage = self.policy.clock.stage(msg.world_time)
            return self._local_field(stage), stage
        self.log.warning("state without a field patch, and none held covers its position")
        return None

    # ------------------------------------------------------------------ control
    def command(self, now: float) -> np.ndarray:
        """The velocity for the latest state (the policy's chain: law, gain, separation, drift,
        speed limit)."""
        st = self.state
        x = np.asarray(st.position, dtype=np.float64)
        ids, pos, mass = self.table.live(now)
        # a peer's mass is what the fleet agreed (every robot carries this agent's own), never
        # more: a member claiming more would push its neighbours away (docs/security.md)
        over = mass > self.cfg.mass * (1.0 + 1e-9)
        if over.any():
            self.counts["mass_capped"] += int(over.sum())
            mass = np.minimum(mass, self.cfg.mass)
        field, stage = self.field
        self.policy.moved(x, now)
        dt = st.dt if st.dt is not None else 1.0 / self.cfg.rate_hz
        return self.policy.velocity(x, ids, pos, mass, field, stage, st.world_time, dt)

    def _control(self, now: float) -> None:
        st = self.state
        if st is not None and st.tick != self.answered_tick:
            v = self.command(now)
            self.policy.drift.commanded(st.tick, st.world_time, st.position, v)
            phase = self._phase(st.world_time)
            beacon = None
            if self.beacon_tick != st.tick and self.peers is self.body:  # the body's radio relays it
                beacon = BeaconPart(position=list(st.position), mass=self.cfg.mass, phase=phase)
                self.beacon_tick = st.tick
            want = self.policy.request(st.world_time, st.dt)  # what the next state is for
            clock = self.policy.clock
            stage = min(clock.stage_index(st.world_time), 1023)
            report = None
            if phase is not None:
                report = ScheduleReport(epoch=phase.epoch, age=phase.age, stage=stage, cause=clock.cause)
            env = self._envelope()
            cmd = Command(**env, velocity=v.tolist(), tick=st.tick, eps=want.eps, smoothing=want.smoothing,
                          beacon=beacon, schedule=report)  # fmt: skip
            self._send(self.body, cmd)
            if self.beacon_tick != st.tick:
                self._beacon(list(st.position), st.tick, st.world_time)
            self.answered_tick = st.tick
            self.counts["commands"] += 1
        if now - self.last_state_at > self.cfg.state_timeout:
            hello_due = now - self.last_hello_at > min(1.0, self.cfg.state_timeout)
            # before its first state an agent has set no velocity: one zero command with each hello
            # is enough (at rate_hz, hundreds of agents waiting for a world to start flood it)
            if st is not None or hello_due:
                self.counts["failsafe"] += 1
                tick = st.tick if st is not None else 0
                zero = [0.0] * self.cfg.dim
                want = self.policy.request(st.world_time if st is not None else 0.0, None)
                self._send(self.body, Command(**self._envelope(), velocity=zero, tick=tick, eps=want.eps,
                                              smoothing=want.smoothing))  # fmt: skip
            if hello_due:
                self._hello(now)

    def _beacon(self, position: list[float], tick: int, world_time: float) -> None:
        """One beacon per body tick: the sensing round's, or else the one after the command."""
        phase = self._phase(world_time)
        self._send(self.peers, Beacon(**self._envelope(), position=position, mass=self.cfg.mass, phase=phase))
        self.beacon_tick = tick

    def _losses(self, now: float) -> None:
        """Peers forgotten: the policy decides whether they are losses that call for a restart."""
        pos, heard = self.table.take_forgotten()
        st = self.state
        if st is None or not len(heard):
            return
        if self.policy.forgotten(pos, heard, np.asarray(st.position, dtype=np.float64), st.world_time, now):
            self.log.info(
                "lost neighbours: restarting the schedule (epoch %d)", self.policy.clock.phase.epoch
            )

    def _warm_up(self) -> None:
        """With ``kernel = "numba"``: load the compiled kernels (from numba's cache, or compile
        them) before saying hello, so that the first state is answered in milliseconds, not in the
        hundreds it takes to load."""
        if self.kernel == "numba":
            from swarmcover.law import warm_local_velocity

            warm_local_velocity(self.box, self.cfg.boundary)

    def _hello(self, now: float) -> None:
        first = self.policy.request(0.0, None)  # the first patch: the stage its schedule starts with
        hello = Hello(**self._envelope(), name=self.cfg.name, rate_hz=self.cfg.rate_hz, eps=first.eps,
                      smoothing=first.smoothing if self.strict_smoothing else None)  # fmt: skip
        self._send(self.body, hello)
        if self.peers is not self.body:
            self._send(self.peers, hello)
        self.last_hello_at = now

    # ------------------------------------------------------------------ loop
    def stop(self, *_args) -> None:
        """Stop the loop; also before :meth:`run` has begun (a SIGTERM during start-up, e.g. the
        launcher gone before this process was up: the lifeline signals at once), which run()
        then honours instead of starting."""
        self.running = False
        self._stop_asked = True

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop the loop; a signal also wakes the poll at once (main thread)."""
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        r, w = socket.socketpair()
        r.setblocking(False)
        w.setblocking(False)
        signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
        self._wake, self._wake_w = r, w

    def _sleep_for(self, now: float, next_slot: float) -> float:
        """How long the poll may sleep: until the rate limit allows a command, when a state is
        pending or the fail-safe is firing; else until the state timeout would fire; bounded by how
        soon a signal must be seen."""
        pending = self.state is not None and self.state.tick != self.answered_tick
        silent = now - self.last_state_at > self.cfg.state_timeout
        if pending or silent:
            wait = next_slot - now
        else:
            wait = self.last_state_at + self.cfg.state_timeout - now + 1e-3
        return min(max(0.0, wait), _IDLE_MAX if self._wake is not None else _POLL_MAX)

    def run(self) -> Counters:
        self.running = not self._stop_asked
        self._warm_up()
        if self.vehicle is not None:  # wait for the vehicle (bounded; a signal ends the wait)
            try:
                self.vehicle.start(lambda: self._stop_asked)
            except BaseException:
                self._shutdown()
                raise
            self.running = not self._stop_asked
        poller = zmq.Poller()
        sources = [(item, True) for item in self.body.poll_items()]
        if self.peers is not self.body:
            sources += [(item, False) for item in self.peers.poll_items()]
        for item, _ in sources:
            poller.register(item, zmq.POLLIN)
        if self._wake is not None:
            poller.register(self._wake, zmq.POLLIN)
        now = self.clock()
        self._hello(now)
        self.last_state_at = now
        bucket = TokenBucket(self.cfg.rate_hz, _RATE_BURST, now)  # the command rate limit
        next_expire = now
        self.log.info("agent %d up (epoch %d)", self.cfg.agent_id, self.epoch)
        try:
            while self.running:
                ready_at = bucket.ready_at()
                # zmq polls in whole milliseconds: round up, or the last fraction would spin
                events = dict(poller.poll(math.ceil(self._sleep_for(self.clock(), ready_at) * 1000.0)))
                now = self.clock()
                if self._wake is not None and self._wake in events:
                    try:
                        self._wake.recv(4096)
                    except BlockingIOError:
                        pass
                for item, from_body in sources:
                    if item in events:
                        link = self.body if from_body else self.peers
                        got = link.receive()
                        expected = getattr(link, "expected", None) or [None] * len(got)
                        if isinstance(link, UdpBody):  # a body by address: only it is answered
                            for frames, addr in zip(got, link.sources, strict=True):
                                if self._handle(frames, True, now, source_ok=link.trusts(addr)):
                                    link.confirm(addr)
                            continue
                        for frames, peer in zip(got, expected, strict=True):
                            self._handle(frames, from_body, now, peer)
                if isinstance(self.peers, DirectPeers):
                    self._watch_memory(poller, sources, now)
                if self.vehicle is not None:
                    self.vehicle.service(now)
                pending = self.state is not None and self.state.tick != self.answered_tick
                silent = now - self.last_state_at > self.cfg.state_timeout
                if (pending or silent) and bucket.take(now):
                    if now >= next_expire:  # frees the slots of peers gone quiet (live() filters anyway)
                        self.table.expire(now)
                        self._losses(now)
                        next_expire = now + 0.25 * self.cfg.forget_after
                    self._control(now)
        finally:
            self._shutdown()
        return self.counters()

    def _watch_memory(self, poller: zmq.Poller, sources: list, now: float) -> None:
        """Direct peers' links made again when a peer's endless message grew this process
        (:meth:`DirectPeers.watch_memory`); the poller and ``sources`` follow."""
        old = self.peers.watch_memory(now)
        if not old:
            return
        self.counts["links_reset"] += len(old)
        for sock in old:
            poller.unregister(sock)
        sources[:] = [(item, b) for item, b in sources if b or item not in old]
        for item in self.peers.poll_items():
            if all(item is not known for known, _ in sources):
                poller.register(item, zmq.POLLIN)
                sources.append((item, False))

    def _shutdown(self) -> None:
        bye = Bye(**self._envelope(), reason="stopped", counters=self.counters())
        self._send(self.body, bye)
        if self.peers is not self.body:
            self._send(self.peers, bye)
        self.log.info("agent %d down: %s", self.cfg.agent_id, self.counters().model_dump())
        self.body.close()
        if self.peers is not self.body:
            self.peers.close()
        if self.telemetry is not None:
            self.telemetry.close(self.counters().model_dump())
        if self._own_ctx:
            self.ctx.term()
        if self._wake is not None:
            signal.set_wakeup_fd(-1)
            self._wake.close()
            self._wake_w.close()
            self._wake = None
