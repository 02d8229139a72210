"""The agent's intake: each message decoded, checked against what the session knows (whose it is,
the body's order and epoch, the domain) and taken: a beacon into :class:`~.hearing.Hearing`, a
state with its field into the session (:class:`~.agent.Agent` keeps it), a planned path into the
policy, a stats request answered. Refused messages are counted and logged within a budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from swarmcover import wiretwins as twins
from swarmcover.agentspec import AgentConfig
from swarmcover.domain import Box
from swarmcover.protocol import (
    Beacon,
    Decoded,
    Path,
    ProtocolError,
    State,
    StatsRequest,
    decode,
    decode_twin,
)
from swarmcover.tracking import PathTracker

from .loop import Arrival

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["path_refused", "take"]


def _refuse(agent: Agent, key: str, what: str, *args) -> bool:
    agent.counts["rejected"] += 1
    agent.quiet.warning(key, what, *args)
    return False


def path_refused(cfg: AgentConfig, msg: Path, source_ok: bool) -> str | None:
    """Why a planned path may not be taken: not for this agent, not from the body's confirmed
    address, or leaving the domain; None when it may."""
    if msg.agent_id != cfg.agent_id or not source_ok:
        return "path for another agent or from another address"
    if msg.points and (len(msg.points[0]) != cfg.dim or not Box(cfg.bounds).contains(msg.points).all()):
        return "path outside the domain or of another dimension"
    return None


def take(agent: Agent, got: Arrival, now: float) -> bool:
    """Take one message: ``got.peer``, the id its authenticated connection belongs to (CURVE direct
    mode), which the message must claim; ``got.source_ok``, whether it came from the body's
    confirmed address (UDP; always true for the simulator's connection). True when it was a
    state from the body, accepted."""
    frames, from_body, peer, source_ok = got.frames, got.from_body, got.peer, got.source_ok
    agent.counts["messages_in"] += 1
    try:  # the body's states (every tick) through their cheaper twin; the rest, and what it refuses, strictly
        dec = (decode_twin(frames, twins.State) if from_body else None) or decode(frames)
    except ProtocolError as exc:
        return _refuse(agent, "rejected", "rejected a message: %s", exc)
    msg = dec.message
    if peer is not None and msg.agent_id != peer:
        what = "a message claiming agent %d came from agent %d's connection"
        return _refuse(agent, "impersonation", what, msg.agent_id, peer)
    if msg.kind == "state" and from_body:
        return _state(agent, msg, dec, now, source_ok)
    if isinstance(msg, Beacon):
        st = agent.state
        # a vehicle's world clock runs on while its telemetry is away; a simulator's is the
        # latest state's (in lockstep it stands still between ticks)
        t = None if st is None else st.world_time if agent.vehicle is None else agent.vehicle.world_time()
        agent.hearing.beacon(msg, from_body, now, None if st is None else st.position, t)
    elif isinstance(msg, Path) and from_body:
        bad = path_refused(agent.cfg, msg, source_ok)
        if bad is not None:
            return _refuse(agent, "path", "%s refused", bad)
        tracker = PathTracker(msg.times, msg.points, msg.plan) if msg.points else None
        if agent.policy.follow(tracker):
            what = "planned path %d taken up (%d nodes; none: joining coverage)"
            agent.log.info(what, msg.plan, len(msg.times))
    elif isinstance(msg, StatsRequest) and from_body:
        agent.out.stats(agent.counters(), len(agent.hearing.table.live(now)[0]))
    else:
        agent.counts["rejected"] += 1
    return False


def _state(agent: Agent, msg: State, dec: Decoded, now: float, source_ok: bool) -> bool:
    """A state from the body (a :class:`State` or its twin, :data:`swarmcover.wiretwins.State`):
    in order, for this agent, with a field that covers it."""
    if msg.agent_id != agent.cfg.agent_id or len(msg.position) != agent.cfg.dim:
        return _refuse(
            agent, "state", "state for agent %d / dim %d rejected", msg.agent_id, len(msg.position)
        )
    if not agent.order.may_send(msg, source_ok, now):
        agent.counts["rejected"] += 1
        agent.quiet.info("order", "state from another address, an old epoch or out of order refused")
        return False
    if agent.order.new_body(msg):  # a restarted simulator: ticks start over, its world may differ
        agent.answered_tick = agent.beacon_tick = -1
        agent.state = None  # the old body's last state is not answered again (a sensing round comes first)
        agent.fields.forget()
    agent.policy.begin(msg.world_time, now)
    agent.hearing.table.at_tick(now, msg.tick)
    if dec.neighbors is not None:
        agent.hearing.relayed(dec.neighbors, msg.position, msg.world_time, now)
    if msg.reply == "beacon":  # sensing round: say where this tick's position is, nothing else
        agent.order.took(msg, now)
        agent.send_beacon(list(msg.position), msg.tick, msg.world_time)
        return True
    field = agent.fields.for_state(msg, dec.patch)
    if field is None:
        agent.counts["rejected"] += 1
        return False
    if agent.order.new_body(msg):
        agent.log.info("body epoch %d", msg.epoch)
    agent.order.took(msg, now)
    agent.policy.drift.observe(msg.tick, msg.world_time, np.asarray(msg.position, dtype=np.float64))
    agent.state, agent.field = msg, field
    if agent.telemetry is not None:
        agent.telemetry.write(now, msg.world_time, msg.position)
    return True
