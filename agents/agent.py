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
import time
from collections.abc import Callable

import numpy as np
import zmq

from swarmcover import wiretwins as twins
from swarmcover.agentspec import AgentConfig
from swarmcover.domain import Box
from swarmcover.kernels import resolve_kernel
from swarmcover.logbudget import LogBudget
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import Counters, State
from swarmcover.schedule import CoverageSchedule, Stage

from .bodies import VehicleLink, open_vehicle
from .fieldsource import Field, FieldSource
from .hearing import Hearing, StartHold
from .intake import take
from .links import PeerLinks, SimLink, UdpLink, load_curve_keys
from .loop import BodyOrder, Inbox, Wake, route_signals
from .outbox import Outbox
from .ratelimit import TokenBucket
from .telemetry import TelemetryLog

__all__ = ["Agent"]

_POLL_MAX = 0.05  # seconds: the longest the loop sleeps when signals cannot wake it
_IDLE_MAX = 1.0  # seconds: the longest it sleeps when they can
_RATE_BURST = 2.0  # commands an agent may send at once after a late one (at most rate_hz on average)

Link = SimLink | UdpLink | PeerLinks | VehicleLink


def policy_for(cfg: AgentConfig, kernel: str) -> AgentPolicy:
    """The decisions an agent config asks for: its schedules (or one eps for ever) and its law."""
    if cfg.schedule is None:
        sched, after, losses = CoverageSchedule.fixed(cfg.eps), None, 0
    else:

        def build(specs):
            return CoverageSchedule(tuple(Stage(s.eps, s.smoothing, s.duration) for s in specs))

        sched, losses = build(cfg.schedule.stages), cfg.schedule.restart_losses
        after = build(cfg.schedule.after_losses) if cfg.schedule.after_losses else None
    return AgentPolicy(
        agent_id=cfg.agent_id, box=Box(cfg.bounds), mass=cfg.mass, speed_limit=cfg.speed_limit,
        schedule=sched, after_losses=after, boundary=cfg.boundary, cutoff=cfg.cutoff,
        mismatch=cfg.mismatch, gain=cfg.gain, r_min=cfg.r_min, restart_losses=losses,
        wind_tau=cfg.drift_tau, kernel=kernel,
    )  # fmt: skip


def open_links(cfg: AgentConfig, ctx: zmq.Context) -> tuple[Link, Link, VehicleLink | None]:
    """The agent's body link, its peers' link (the body's own when peers are heard through the
    simulator) and the vehicle, if the body is one (nothing connected yet)."""
    vehicle = None
    if cfg.body.kind == "sim":
        curve = None if cfg.curve is None else load_curve_keys(cfg.curve.secret_key, cfg.curve.server_key)
        body: Link = SimLink(ctx, cfg.body.endpoint, curve)  # type: ignore[arg-type]
    elif cfg.body.kind == "udp":
        body = UdpLink(cfg.body.listen)
    else:
        body = vehicle = open_vehicle(cfg)
    if cfg.peers.kind == "sim":
        return body, body, vehicle
    roster = [(None, p) if isinstance(p, str) else (p.agent_id, p.endpoint) for p in cfg.peers.roster]
    own, peer_keys = None, None
    if cfg.curve is not None:
        with_keys = [p for p in cfg.peers.roster if not isinstance(p, str)]
        keys = load_curve_keys(cfg.curve.secret_key, *(p.public_key for p in with_keys))
        own, peer_keys = keys[:2], {p.agent_id: k for p, k in zip(with_keys, keys[2:], strict=True)}
    return body, PeerLinks(ctx, cfg.peers.bind, roster, own, peer_keys), vehicle


class Agent:
    """One robot's controller: the session (hello, epochs, fail-safe, signals, rate) around the
    decisions of an :class:`~swarmcover.policy.AgentPolicy`, with what it hears of its peers
    (:class:`~swarmcover.agents.hearing.Hearing`) and its field
    (:class:`~swarmcover.agents.fieldsource.FieldSource`). ``run()`` blocks until :meth:`stop`
    (or a signal)."""

    def __init__(self, cfg: AgentConfig, ctx: zmq.Context | None = None) -> None:
        self.cfg = cfg
        self.log = logging.getLogger(f"swarmcover.agent.{cfg.agent_id}")
        self.quiet = LogBudget(self.log)  # what senders can make this agent log is bounded
        self.counts = {k: 0 for k in Counters.model_fields}
        self.kernel = resolve_kernel(cfg.kernel)  # "auto": the C kernel where it was built
        self.policy = policy_for(cfg, self.kernel)  # the decisions: schedule phase, losses, wind, the law
        self.hearing = Hearing(cfg, self.policy, self.counts, self.log, self.quiet)
        self.fields = FieldSource(cfg, self.policy, self.log)
        self._own_ctx = ctx is None
        self.ctx = zmq.Context() if ctx is None else ctx
        self.body, self.peers, self.vehicle = open_links(cfg, self.ctx)
        self.out = Outbox(cfg, self.body, self.peers, self.counts)
        self.order = BodyOrder(cfg.state_timeout)
        self.running = self._stop_asked = False
        self.state: State | None = None
        # the field in use (of the last accepted patch or the agent's own) and the stage it was for
        self.field: tuple[Field, Stage] | None = None
        self.answered_tick = self.beacon_tick = -1
        self.last_hello_at = -math.inf
        self.hold = StartHold(cfg, self.log)  # direct peers: held still until every other is heard
        self.clock: Callable[[], float] = time.monotonic
        self.telemetry = None if cfg.telemetry is None else TelemetryLog(cfg.telemetry, cfg.agent_id)
        self._wake: Wake | None = None  # signals write a byte here (set_wakeup_fd)

    def _phase(self, world_time: float) -> twins.PhaseInfo | None:
        p = self.policy.clock.phase
        return None if p is None else twins.PhaseInfo(epoch=p.epoch, age=self.policy.clock.age(world_time))

    def counters(self) -> Counters:
        body = {} if self.vehicle is None else self.vehicle.counts
        return Counters(**{**self.counts, **body})

    # ------------------------------------------------------------------ control
    def command(self, now: float) -> np.ndarray:
        """The velocity for the latest state (the policy's chain: law, gain, separation, drift,
        speed limit)."""
        st = self.state
        x = np.asarray(st.position, dtype=np.float64)
        field, stage = self.field
        fast = self.hearing.command(x, now, field, stage, st.world_time)  # the usual case, one C call
        if fast is None:
            ids, pos, mass = self.hearing.live(now)
        self.policy.moved(x, now)
        if not self.hold.released(now, fast[0] if fast is not None else len(ids)):
            return np.zeros_like(x)
        if fast is not None:
            return fast[1]
        dt = st.dt if st.dt is not None else 1.0 / self.cfg.rate_hz
        return self.policy.velocity(x, ids, pos, mass, field, stage, st.world_time, dt)

    def _control(self, now: float) -> None:
        st = self.state
        if st is not None and st.tick != self.answered_tick:
            v = self.command(now)
            self.policy.drift.commanded(st.tick, st.world_time, st.position, v)
            phase, beacon, report = self._phase(st.world_time), None, None
            if self.beacon_tick != st.tick and self.out.relayed:  # the body's radio relays it
                beacon = twins.BeaconPart(position=list(st.position), mass=self.cfg.mass, phase=phase)
                self.beacon_tick = st.tick
            clock = self.policy.clock
            if phase is not None:
                stage = min(clock.stage_index(st.world_time), 1023)
                report = twins.ScheduleReport(
                    epoch=phase.epoch, age=phase.age, stage=stage, cause=clock.cause
                )
            # the stage the next state is for
            self.out.command(v.tolist(), st.tick, self.policy.request(st.world_time, st.dt), beacon, report)
            if self.beacon_tick != st.tick:
                self.send_beacon(list(st.position), st.tick, st.world_time)
            self.answered_tick = st.tick
            self.counts["commands"] += 1
        if self.order.silent(now):
            hello_due = now - self.last_hello_at > min(1.0, self.cfg.state_timeout)
            # before its first state an agent has set no velocity: one zero command with each hello
            # is enough (at rate_hz, hundreds of agents waiting for a world to start flood it)
            if st is not None or hello_due:
                self.counts["failsafe"] += 1
                want = self.policy.request(st.world_time if st is not None else 0.0, None)
                self.out.command([0.0] * self.cfg.dim, st.tick if st is not None else 0, want)
            if hello_due:
                self._hello(now)

    def send_beacon(self, position: list[float], tick: int, world_time: float) -> None:
        """One beacon per body tick: the sensing round's, or else the one after the command."""
        self.out.beacon(position, self._phase(world_time))
        self.beacon_tick = tick

    def _hello(self, now: float) -> None:
        # the first patch: the stage its schedule starts with
        self.out.hello(self.policy.request(0.0, None), self.fields.strict_smoothing)
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
        self._wake = route_signals(self.stop)

    def _sleep_for(self, now: float, next_slot: float) -> float:
        """How long the poll may sleep: until the rate limit allows a command, when a state is
        pending or the fail-safe is firing; else until the state timeout would fire; bounded by how
        soon a signal must be seen."""
        pending = self.state is not None and self.state.tick != self.answered_tick
        if pending or self.order.silent(now):
            wait = next_slot - now
        else:
            wait = self.order.last_state_at + self.cfg.state_timeout - now + 1e-3
        return min(max(0.0, wait), _IDLE_MAX if self._wake is not None else _POLL_MAX)

    def run(self) -> Counters:
        self.running = not self._stop_asked
        if self.kernel == "numba":  # load the compiled kernels before hello: the first state is quick
            from swarmcover.local import warm_local_velocity

            warm_local_velocity(self.policy.box, self.cfg.boundary)
        if self.vehicle is not None:  # wait for the vehicle (bounded; a signal ends the wait)
            try:
                self.vehicle.start(lambda: self._stop_asked)
            except BaseException:
                self._shutdown()
                raise
            self.running = not self._stop_asked
        inbox = Inbox(self.body, self.peers, self._wake)
        now = self.clock()
        self._hello(now)
        self.order.last_state_at = now
        bucket = TokenBucket(self.cfg.rate_hz, _RATE_BURST, now)  # the command rate limit
        next_expire = now
        self.log.info("agent %d up (epoch %d)", self.cfg.agent_id, self.out.epoch)
        try:
            while self.running:
                events = inbox.wait(self._sleep_for(self.clock(), bucket.ready_at()))
                now = self.clock()  # one time for everything that woke the loop
                for got in inbox.arrivals(events):
                    if take(self, got, now):
                        if got.address is not None:
                            self.body.confirm(got.address)
                self.counts["links_reset"] += inbox.watch_memory(now)
                if self.vehicle is not None:
                    self.vehicle.service(now)
                pending = self.state is not None and self.state.tick != self.answered_tick
                if (pending or self.order.silent(now)) and bucket.take(now):
                    if now >= next_expire:  # frees the slots of peers gone quiet (live() filters anyway)
                        st = self.state
                        self.hearing.losses(now, None if st is None else st.position,
                                            0.0 if st is None else st.world_time)  # fmt: skip
                        next_expire = now + 0.25 * self.cfg.forget_after
                    self._control(now)
        finally:
            self._shutdown()
        return self.counters()

    def _shutdown(self) -> None:
        self.out.bye(self.counters())
        self.log.info("agent %d down: %s", self.cfg.agent_id, self.counters().model_dump())
        self.body.close()
        if self.peers is not self.body:
            self.peers.close()
        if self.telemetry is not None:
            self.telemetry.close(self.counters().model_dump())
        if self._own_ctx:
            self.ctx.term()
        if self._wake is not None:
            self._wake.close()
            self._wake = None
