"""The radio model: who hears a beacon, when, and what is lost.

A beacon sent by robot ``s`` at time ``t`` reaches every other robot ``r`` of the given candidate
set within ``range`` of ``s`` (a k-d tree query), unless ``s`` or ``r`` is inside a blackout region,
or the copy is lost (independently, probability ``loss``). A delivered copy arrives at
``t + latency + U(0, jitter)``. The clock is the caller's (world time in lockstep, wall time in
real time). Counters: sent (beacons handed to the radio), delivered and dropped (copies, with the
reason), and the last time each (sender, receiver) pair had a copy delivered, so a run can tell
when each survivor last heard a robot that died.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from swarmcover.domain import Zone

__all__ = ["Delivery", "Radio", "RadioCounters"]


@dataclass
class RadioCounters:
    sent: int = 0
    delivered: int = 0
    dropped_loss: int = 0
    dropped_blackout: int = 0
    dropped_sender_down: int = 0

    @property
    def dropped(self) -> int:
        return self.dropped_loss + self.dropped_blackout + self.dropped_sender_down

    def as_dict(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "delivered": self.delivered,
            "dropped": self.dropped,
            "dropped_loss": self.dropped_loss,
            "dropped_blackout": self.dropped_blackout,
            "dropped_sender_down": self.dropped_sender_down,
        }


@dataclass(order=True)
class Delivery:
    at: float
    order: int
    sender: int = field(compare=False)
    receiver: int = field(compare=False)
    frames: list[bytes] = field(compare=False)


class Radio:
    """Beacon delivery with range, loss, latency, jitter and blackouts (seeded ``rng``)."""

    def __init__(
        self,
        range_: float,
        loss: float = 0.0,
        latency: float = 0.0,
        jitter: float = 0.0,
        blackouts: Sequence[Zone] = (),
        rng: np.random.Generator | None = None,
    ) -> None:
        if not range_ > 0:
            raise ValueError(f"radio range must be > 0, got {range_!r}")
        if not 0.0 <= loss <= 1.0:
            raise ValueError(f"radio loss must be in [0, 1], got {loss!r}")
        if latency < 0 or jitter < 0:
            raise ValueError("radio latency and jitter must be >= 0")
        self.range, self.loss, self.latency, self.jitter = (
            float(range_),
            float(loss),
            float(latency),
            float(jitter),
        )
        self.blackouts = list(blackouts)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.counters = RadioCounters()
        self.last_delivery: dict[tuple[int, int], float] = {}
        self._queue: list[Delivery] = []
        self._order = 0
        self._tree: cKDTree | None = None
        self._tree_ids = np.empty(0, dtype=np.int64)
        self._tree_pos = np.empty((0, 1))

    def in_blackout(self, points: np.ndarray) -> np.ndarray:
        m = np.zeros(len(points), dtype=bool)
        for z in self.blackouts:
            m |= z.contains(points)
        return m

    def update(self, ids: np.ndarray, positions: np.ndarray) -> None:
        """Set who can receive (robots with a working radio) and where they are; call once per tick."""
        self._tree_ids = np.asarray(ids, dtype=np.int64)
        self._tree_pos = np.asarray(positions, dtype=np.float64)
        self._dark = self.in_blackout(self._tree_pos) if self.blackouts else np.zeros(len(ids), dtype=bool)
        self._tree = cKDTree(self._tree_pos) if len(ids) else None

    def send(
        self, sender: int, position: np.ndarray, frames: list[bytes], now: float, can_send: bool = True
    ) -> None:
        """Hand a beacon to the radio at ``now`` from ``sender`` at ``position``."""
        self.counters.sent += 1
        if not can_send:
            self.counters.dropped_sender_down += 1
            return
        if self._tree is None:
            return
        if self.blackouts and self.in_blackout(np.asarray(position, dtype=np.float64)[None])[0]:
            self.counters.dropped_blackout += 1
            return
        near = self._tree.query_ball_point(np.asarray(position, dtype=np.float64), self.range)
        for k in near:
            receiver = int(self._tree_ids[k])
            if receiver == sender:
                continue
            if self._dark[k]:
                self.counters.dropped_blackout += 1
                continue
            if self.loss > 0 and self.rng.random() < self.loss:
                self.counters.dropped_loss += 1
                continue
            delay = self.latency + (self.rng.random() * self.jitter if self.jitter > 0 else 0.0)
            self._order += 1
            heapq.heappush(self._queue, Delivery(now + delay, self._order, sender, receiver, frames))

    def due(self, now: float) -> list[Delivery]:
        """Pop every delivery due by ``now``, in order."""
        out = []
        while self._queue and self._queue[0].at <= now:
            d = heapq.heappop(self._queue)
            self.counters.delivered += 1
            self.last_delivery[(d.sender, d.receiver)] = d.at
            out.append(d)
        return out

    def next_due(self) -> float | None:
        return self._queue[0].at if self._queue else None

    def forget(self, receiver: int) -> None:
        """Drop queued copies for ``receiver`` (it failed or left)."""
        kept = [d for d in self._queue if d.receiver != receiver]
        if len(kept) != len(self._queue):
            self._queue = kept
            heapq.heapify(self._queue)
