"""What an agent hears of its peers: the neighbour table, the screen of direct beacons, the
schedule phases they carry and the losses their silence means.

:class:`Hearing` holds no socket: the agent's session hands it each beacon (a ``beacon`` message, or
the rows a body relayed with a state) and asks it for the live neighbours when it computes a
command. Every refusal is counted in the agent's counters (the dict it is given).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

from swarmcover.agentspec import AgentConfig
from swarmcover.domain import Box
from swarmcover.logbudget import LogBudget
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import Beacon

from .neighbors import NeighborTable, Verdict
from .screen import PeerScreen

__all__ = ["Hearing", "StartHold"]


class Hearing:
    """Peers as heard by one agent (see the module docstring)."""

    def __init__(self, cfg: AgentConfig, policy: AgentPolicy, counts: dict[str, int], log: logging.Logger,
                 quiet: LogBudget) -> None:  # fmt: skip
        self.cfg, self.policy, self.counts, self.log, self.quiet = cfg, policy, counts, log, quiet
        self.table = NeighborTable(cfg.agent_id, cfg.dim, cfg.beacon_ttl, cfg.forget_after, cfg.max_neighbors)
        # direct beacons' positions are the senders' word: screened for what a robot can do
        zones = [] if cfg.target is None else [z.zone() for z in cfg.target.zones]
        self.screen = PeerScreen(Box(cfg.bounds), cfg.speed_limit, cfg.beacon_ttl, zones=zones,
                                 capacity=cfg.max_neighbors)  # fmt: skip

    def _fresh(self, t_sent: float) -> bool:
        skew = self.cfg.max_clock_skew
        return skew is None or abs(time.time() - t_sent) <= self.cfg.beacon_ttl + skew

    def beacon(self, msg: Beacon, from_body: bool, now: float, here: list[float] | None,
               world_time: float | None) -> None:  # fmt: skip
        """A beacon message (``from_body``: it came over the body's link); ``here`` and
        ``world_time``: the agent's latest position and world clock, ``None`` before its first state."""
        if (self.cfg.peers.kind == "sim") != from_body or msg.agent_id == self.cfg.agent_id:
            self.counts["rejected"] += 1
            return
        if not self._fresh(msg.t):
            self.counts["stale"] += 1
            return
        if self.cfg.peers.kind != "sim" and not self._possible(msg, now):
            return
        verdict = self.table.offer(msg, now)
        if verdict != Verdict.ACCEPTED:
            self.counts["rejected"] += 1
            self.quiet.info("beacon", "beacon from %d rejected: %s", msg.agent_id, verdict)
        elif here is not None:
            self.policy.heard(
                np.asarray(here, dtype=np.float64), np.asarray([msg.position], dtype=np.float64)
            )
            if msg.phase is not None:  # its schedule phase, on our clock
                self.hear([msg.phase.epoch], [msg.phase.age], world_time, now)

    def _possible(self, msg: Beacon, now: float) -> bool:
        """Whether a peer's direct beacon may be true (:mod:`swarmcover.agents.screen`); a peer that
        keeps sending impossible ones is quarantined."""
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

    def hear(self, epochs, ages, world_time: float, now: float) -> None:
        """Neighbours' schedule phases: taken up, or held off while a restart is annealing."""
        clock = self.policy.clock
        held = clock.deferred
        if self.policy.hear(epochs, ages, world_time, now):
            p = clock.phase
            self.log.info("took up schedule epoch %d (started %.2f s ago)", p.epoch, world_time - p.start)
        elif clock.deferred > held:
            self.counts["epochs_deferred"] += 1
            self.quiet.warning("epoch", "a restart heard while epoch %d is still annealing: held off "
                               "for up to %.3g s", clock.phase.epoch, clock.holdoff)  # fmt: skip

    def relayed(self, rows: np.ndarray, position: list[float], world_time: float, now: float) -> None:
        """Beacons the body's radio relayed with a state at ``position``: rows ``[id, t, position,
        mass]`` (and, with phases, ``[epoch, age]``)."""
        if self.cfg.peers.kind != "sim":  # peers are heard directly: a body has none to relay
            self.counts["rejected"] += len(rows)
            return
        d = self.cfg.dim
        if rows.shape[1] == d + 5 and len(rows):
            self.hear(rows[:, d + 3], rows[:, d + 4], world_time, now)
        skew = self.cfg.max_clock_skew
        if skew is not None:
            fresh = np.abs(time.time() - rows[:, 1]) <= self.cfg.beacon_ttl + skew
            self.counts["stale"] += int(len(fresh) - fresh.sum())
            rows = rows[fresh]
        # the table refuses this agent's own id (counted as "own")
        got = self.table.offer_relayed(rows, now)
        self.policy.heard(np.asarray(position, dtype=np.float64), rows[:, 2 : 2 + d])
        self.counts["rejected"] += got["older"] + got["full"] + got["own"]
        if got["full"]:
            self.log.info("%d relayed beacons refused: neighbour table full", got["full"])

    def live(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The live neighbours ``ids (k,), positions (k, d), masses (k,)``; a peer's mass is what
        the fleet agreed (every robot carries this agent's own), never more: a member claiming more
        would push its neighbours away (docs/security.md)."""
        ids, pos, mass = self.table.live(now)
        over = mass > self.cfg.mass * (1.0 + 1e-9)
        if over.any():
            self.counts["mass_capped"] += int(over.sum())
            mass = np.minimum(mass, self.cfg.mass)
        return ids, pos, mass

    def command(self, x: np.ndarray, now: float, field, stage, world_time: float):
        """The policy's command from the live neighbours in one call (the neighbours selected and
        capped as :meth:`live` does, :meth:`AgentPolicy.table_command`): ``(neighbours (int),
        command (d,))``, or None where that call does not apply (the caller takes :meth:`live`
        and the policy's ``velocity``)."""
        heard, pos, mass = self.table.slots()
        since = now - self.table.ttl
        got = self.policy.table_command(x, heard, pos, mass, since, self.cfg.mass, field, stage, world_time)
        if got is None:
            return None
        count, capped, u = got
        self.counts["mass_capped"] += capped
        return count, u

    def losses(self, now: float, position: list[float] | None, world_time: float) -> None:
        """Peers gone quiet are dropped; the policy decides whether they are losses that call for a
        restart of the schedule."""
        self.table.expire(now)
        pos, heard = self.table.take_forgotten()
        if position is None or not len(heard):
            return
        if self.policy.forgotten(pos, heard, np.asarray(position, dtype=np.float64), world_time, now):
            self.log.info(
                "lost neighbours: restarting the schedule (epoch %d)", self.policy.clock.phase.epoch
            )


class StartHold:
    """Direct peers hold still at the start: until every other peer of the roster is heard, or
    ``peers.start_wait`` seconds after the first state (moving before it knows where its neighbours
    are, an agent's separation could not act, and the arrangement would follow the start order).
    Peers heard through a simulator are never held."""

    def __init__(self, cfg: AgentConfig, log: logging.Logger) -> None:
        self.cfg, self.log = cfg, log
        self.released_at: float | None = None if cfg.peers.kind == "direct" else -math.inf
        self.first_state_at: float | None = None

    def released(self, now: float, heard: int) -> bool:
        """Whether the hold is over, ``heard`` peers being live at ``now``."""
        if self.released_at is None:
            if self.first_state_at is None:
                self.first_state_at = now
            peers = self.cfg.peers
            if heard >= peers.others(self.cfg.agent_id) or now - self.first_state_at >= peers.start_wait:
                self.released_at = now
                self.log.info("moving: %d peers heard after %.2f s", heard, now - self.first_state_at)
        return self.released_at is not None
