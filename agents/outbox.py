"""What an agent sends: its envelope (epoch and sequence), counted sends, one method a message.

A send that would block (the link's queue at its high-water mark) is dropped and counted in
``dropped``; every other in ``messages_out``. The messages of every tick (command, beacon) are
built as their msgspec twins (:mod:`swarmcover.wiretwins`: the same bytes, checked, cheaper).
"""

from __future__ import annotations

import time

from swarmcover import wiretwins as twins
from swarmcover.agentspec import AgentConfig
from swarmcover.protocol import Bye, Counters, Hello, Stats, encode
from swarmcover.schedule import Stage

__all__ = ["Outbox"]


class Outbox:
    """An agent's sending side over its body link and its peers' link (the same one when the
    simulator's radio carries beacons)."""

    def __init__(self, cfg: AgentConfig, body, peers, counts: dict[str, int]) -> None:
        self.cfg, self.body, self.peers, self.counts = cfg, body, peers, counts
        self.epoch = time.time_ns()  # increases across restarts of the same id on one host
        self.seq = 0

    @property
    def relayed(self) -> bool:
        """Whether beacons go through the body (its radio relays them) rather than to peers."""
        return self.peers is self.body

    def envelope(self) -> dict:
        self.seq += 1
        return {"agent_id": self.cfg.agent_id, "epoch": self.epoch, "seq": self.seq, "t": time.time()}

    def send(self, link, msg) -> None:
        """Send ``msg``, a message model or its twin (:mod:`swarmcover.wiretwins`)."""
        if link.send(encode(msg)):
            self.counts["messages_out"] += 1
        else:
            self.counts["dropped"] += 1

    def _both(self, msg) -> None:
        self.send(self.body, msg)
        if not self.relayed:
            self.send(self.peers, msg)

    def hello(self, first: Stage, with_smoothing: bool) -> None:
        """To the body and the peers; ``first``: the stage the first patch should be sensed for."""
        self._both(Hello(**self.envelope(), name=self.cfg.name, rate_hz=self.cfg.rate_hz, eps=first.eps,
                         smoothing=first.smoothing if with_smoothing else None))  # fmt: skip

    def beacon(self, position: list[float], phase: twins.PhaseInfo | None) -> None:
        self.send(self.peers, twins.Beacon(**self.envelope(), kind="beacon", position=position,
                                           mass=self.cfg.mass, phase=phase))  # fmt: skip

    def command(self, velocity: list[float], tick: int, want: Stage, beacon: twins.BeaconPart | None = None,
                report: twins.ScheduleReport | None = None) -> None:  # fmt: skip
        """``want``: the stage the next patch should be sensed for."""
        self.send(self.body, twins.Command(**self.envelope(), kind="command", velocity=velocity, tick=tick,
                                           eps=want.eps, smoothing=want.smoothing, beacon=beacon,
                                           schedule=report))  # fmt: skip

    def stats(self, counters: Counters, neighbors: int) -> None:
        self.send(self.body, Stats(**self.envelope(), counters=counters, neighbors=neighbors))

    def bye(self, counters: Counters) -> None:
        self._both(Bye(**self.envelope(), reason="stopped", counters=counters))
