"""The neighbour table: the latest beacon of every peer heard, with epochs, sequence checks and TTLs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmcover.protocol import Beacon

__all__ = ["NeighborTable", "Verdict"]


@dataclass
class _Entry:
    epoch: int
    seq: int
    position: np.ndarray
    mass: float
    heard: float  # local monotonic time of receipt


class Verdict:
    """Why a beacon was or was not taken."""

    ACCEPTED = "accepted"
    OLD_EPOCH = "old epoch"
    REPLAY = "replayed or out of order"
    WRONG_DIM = "wrong dimension"
    FULL = "table full"


class NeighborTable:
    """Latest beacon per peer id.

    A beacon from a newer epoch replaces the peer's entry (the peer restarted); one from an older
    epoch, or with a sequence number not above the last one taken for that epoch, is rejected.
    Peers unheard for ``forget_after`` seconds are dropped; :meth:`live` returns only those heard
    within ``ttl``. At most ``capacity`` peers are held: a new id when full evicts the stalest entry
    only if that one is already stale, so a flood of fake ids cannot push out live neighbours.
    """

    def __init__(self, own_id: int, dim: int, ttl: float, forget_after: float, capacity: int) -> None:
        self.own_id, self.dim = own_id, dim
        self.ttl, self.forget_after, self.capacity = ttl, forget_after, capacity
        self._peers: dict[int, _Entry] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def offer(self, b: Beacon, now: float) -> str:
        if len(b.position) != self.dim:
            return Verdict.WRONG_DIM
        e = self._peers.get(b.agent_id)
        if e is not None:
            if b.epoch < e.epoch:
                return Verdict.OLD_EPOCH
            if b.epoch == e.epoch and b.seq <= e.seq:
                return Verdict.REPLAY
        elif len(self._peers) >= self.capacity:
            self.expire(now)
            if len(self._peers) >= self.capacity:
                oldest = min(self._peers, key=lambda k: self._peers[k].heard)
                if now - self._peers[oldest].heard <= self.ttl:
                    return Verdict.FULL
                del self._peers[oldest]
        pos = np.asarray(b.position, dtype=np.float64)
        self._peers[b.agent_id] = _Entry(b.epoch, b.seq, pos, b.mass, now)
        return Verdict.ACCEPTED

    def expire(self, now: float) -> list[int]:
        """Forget peers silent for longer than ``forget_after``; returns their ids."""
        gone = [k for k, e in self._peers.items() if now - e.heard > self.forget_after]
        for k in gone:
            del self._peers[k]
        return gone

    def live(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids ``(k,)``, positions ``(k, d)`` and masses ``(k,)`` of peers heard within ``ttl``."""
        items = [(k, e) for k, e in self._peers.items() if now - e.heard <= self.ttl and k != self.own_id]
        if not items:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim)), np.empty(0)
        ids = np.array([k for k, _ in items], dtype=np.int64)
        pos = np.array([e.position for _, e in items])
        mass = np.array([e.mass for _, e in items])
        return ids, pos, mass
