"""The radio model: who hears a beacon, when, and what is lost.

A beacon sent by robot ``s`` at time ``t`` reaches every other robot ``r`` of the given candidate
set within ``range`` of ``s`` (the beacons handed over between two reads of the radio share one k-d
tree query: one drain of the simulator's socket, not one query a beacon), unless ``s`` or ``r`` is inside a
blackout region, or the copy is lost (independently, probability ``loss``). A copy arrives at
``t + latency + U(0, jitter)``. The clock is the caller's (world time in lockstep, wall time in
real time). Whether a copy is lost, and its jitter, are drawn for that copy alone (sender,
receiver, the sender's count of beacons, the seed: :mod:`.draws`), not in the order beacons
happen to reach the simulator: a lockstep run with a lossy radio is the same run every time.

Delivery is batched: each receiver's radio keeps, per sender, the newest beacon that has arrived
(an older one arriving after a newer one, by jitter, is discarded; so is an arrived copy that a
newer one replaces before the receiver collects it: ``superseded``), and :meth:`Radio.collect`
hands a receiver every beacon that arrived since its last collection, as the rows a
:class:`swarmcover.protocol.Neighbors` buffer carries. The simulator collects just before it sends
the receiver its state, so one message per tick carries what used to take one message per beacon
(about a hundred at the fleet benchmark's density). Copies in flight wait in a heap of per-beacon
chunks ordered by their earliest arrival; with no latency and no jitter (the default) they arrive
as they are sent and go straight into the receivers' stores.

Memory: the per-(receiver, sender) store is dense, ``(d + 5) * 8`` bytes a pair (7 MB for 400
robots in 2-D, 180 MB for 2 000).

Counters: sent (beacons handed to the radio), delivered (copies collected by receivers), dropped
(copies, with the reason) and superseded; :meth:`Radio.last_heard` tells when each survivor last
collected a copy from a robot, so a run can say when each one last heard a robot that died.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from swarmcover.domain import Zone

from .draws import copy_uniforms

__all__ = ["Radio", "RadioCounters", "available_memory", "check_memory", "radio_bytes"]

log = logging.getLogger("swarmcover.sim.radio")

_TAIL = 3  # columns after a relayed row's position: mass, phase epoch, phase age


def radio_bytes(n: int, dim: int) -> int:
    """Bytes of the radio's per (receiver, sender) tables for ``n`` robots in ``dim`` dimensions:
    newest beacon time, position, mass and phase, arrival, freshness, collection time."""
    return n * n * (8 + 8 * dim + 8 * _TAIL + 8 + 1 + 8)


def available_memory() -> int | None:
    """Bytes this machine can still give (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(n: int, dim: int, share: float = 0.5) -> None:
    """``ValueError`` naming the estimate when the radio for ``n`` robots would take more than
    ``share`` of the memory available (so a huge fleet is refused before anything starts, not
    killed by the kernel later)."""
    need, have = radio_bytes(n, dim), available_memory()
    if have is not None and need > share * have:
        raise ValueError(
            f"fleet.size {n} needs about {need / 1e9:.1f} GB for the radio's tables (n x n); this machine "
            f"has {have / 1e9:.1f} GB available: use fewer robots, or split the fleet across simulators"
        )


@dataclass
class RadioCounters:
    sent: int = 0
    delivered: int = 0
    superseded: int = 0
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
            "superseded": self.superseded,
            "dropped": self.dropped,
            "dropped_loss": self.dropped_loss,
            "dropped_blackout": self.dropped_blackout,
            "dropped_sender_down": self.dropped_sender_down,
        }


@dataclass
class _Chunk:
    """The copies of one beacon still in flight: receivers (roster indices) and arrival times."""

    sender: int  # roster index
    receivers: np.ndarray
    arrivals: np.ndarray
    t: float
    position: np.ndarray
    tail: np.ndarray  # what the rows carry after the position: mass, phase epoch, phase age


class Radio:
    """Beacon delivery with range, loss, latency, jitter and blackouts (seeded ``rng``) among the
    robots of ``roster`` (ids) in ``dim`` dimensions."""

    def __init__(
        self,
        roster: Sequence[int],
        dim: int,
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
        self.range, self.loss = float(range_), float(loss)
        self.latency, self.jitter = float(latency), float(jitter)
        self.blackouts = list(blackouts)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._key = int(self.rng.integers(0, 2**63))  # the seed of each copy's own draws
        self._counters = RadioCounters()
        self._pending: list[tuple] = []  # beacons handed over, not yet delivered (see send)
        self.ids = np.asarray(roster, dtype=np.int64)
        self.index = {int(a): k for k, a in enumerate(self.ids)}
        n, self.dim = len(self.ids), int(dim)
        self._beacons_of = np.zeros(n, dtype=np.int64)  # beacons each robot has handed over
        check_memory(n, self.dim)
        if n > 2000:
            log.warning("radio store for %d robots takes %.0f MB", n, radio_bytes(n, self.dim) / 1e6)
        # per (receiver, sender): the newest arrived beacon, and whether the receiver has it yet
        # [arrival, t, position, mass, phase epoch (-1: none), phase age]: one row a pair, so that a
        # copy is stored, and a receiver's copies read, by one indexing each
        self._store_rows = np.zeros((n, n, 2 + self.dim + _TAIL))
        self._store_rows[:, :, :2] = -np.inf
        self._fresh = np.zeros((n, n), dtype=bool)
        self._heard = np.full((n, n), -np.inf)  # arrival of the newest copy each receiver collected
        self._flight: list[tuple[float, int, _Chunk]] = []  # (earliest arrival, order, chunk)
        self._order = 0
        self._tree: cKDTree | None = None
        self._tree_idx = np.empty(0, dtype=np.int64)
        self._dark_roster = np.zeros(n, dtype=bool)
        self._any_dark = False

    def in_blackout(self, points: np.ndarray) -> np.ndarray:
        m = np.zeros(len(points), dtype=bool)
        for z in self.blackouts:
            m |= z.contains(points)
        return m

    def update(self, ids: np.ndarray, positions: np.ndarray) -> None:
        """Set who can receive (robots with a working radio) and where they are; call once per tick."""
        self._deliver()  # what was sent went out among the robots where they were
        self._tree_idx = np.array([self.index[int(a)] for a in ids], dtype=np.int64)
        pos = np.asarray(positions, dtype=np.float64)
        dark = self.in_blackout(pos) if self.blackouts else np.zeros(len(pos), dtype=bool)
        self._dark_roster = np.zeros(len(self.ids), dtype=bool)  # by roster index
        self._dark_roster[self._tree_idx[dark]] = True
        self._any_dark = bool(dark.any())
        self._tree = cKDTree(pos) if len(pos) else None
        self._tree_pos, self._near = pos.copy(), None  # who is in range of whom: worked out when asked
        self._slot = np.full(len(self.ids), -1, dtype=np.int64)  # roster index -> row of the tree
        self._slot[self._tree_idx] = np.arange(len(self._tree_idx))

    def send(self, sender: int, position: np.ndarray, t: float, mass: float, now: float,
             can_send: bool = True, phase: tuple[int, float] | None = None) -> None:  # fmt: skip
        """Hand the radio, at ``now``, a beacon from ``sender`` at ``position`` (the beacon's own
        ``t``, ``mass`` and schedule ``phase`` (epoch, age) travel with it). Beacons are delivered
        in batches: every read of the radio (:meth:`collect`, :meth:`update`, :meth:`forget`,
        :meth:`last_heard`, :attr:`counters`) first delivers what was sent before it, so no reader
        can tell; one drain of the simulator's socket costs one neighbour query, not one a beacon."""
        self._counters.sent += 1
        s = self.index[int(sender)]
        seq = int(self._beacons_of[s])
        self._beacons_of[s] += 1
        if not can_send:
            self._counters.dropped_sender_down += 1
            return
        if self._tree is None:
            return
        position = np.array(position, dtype=np.float64)
        if self.blackouts and self.in_blackout(position[None])[0]:
            self._counters.dropped_blackout += 1
            return
        tail = (float(mass), -1.0, 0.0) if phase is None else (float(mass), float(phase[0]), float(phase[1]))
        self._pending.append((s, position, float(t), tail, float(now), seq))

    @property
    def counters(self) -> RadioCounters:
        self._deliver()
        return self._counters

    def _deliver(self) -> None:
        """Send the beacons handed over since the last read (see :meth:`send`)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if len(pending) == 1 and _deliver_one(self, *pending[0]):  # in real time, the usual case
            return
        near, owner = _copies(self, pending)
        if self.latency == 0.0 and self.jitter == 0.0:  # arrive at once: straight into the stores
            senders, pos, t, tail, now, _ = (np.array(col) for col in zip(*pending, strict=True))
            if len(np.unique(senders)) == len(senders):  # one beacon a sender: all copies at once
                self._store(senders[owner], near, np.column_stack((now, t, pos, tail))[owner])
                return
        for k, (s, position, t, tail, now, seq) in enumerate(pending):  # in order, each at its own time
            r = near[owner == k]
            if len(r):
                arrivals = np.full(len(r), now + self.latency)
                if self.jitter > 0:
                    arrivals += copy_uniforms(self._key + 1, s, r, seq) * self.jitter
                chunk = _Chunk(s, r, arrivals, t, position, np.array(tail))
                if self.latency == 0.0 and self.jitter == 0.0:
                    self._store_one(chunk, r, arrivals)
                    continue
                self._order += 1
                heapq.heappush(self._flight, (float(arrivals.min()), self._order, chunk))

    def _store(self, s, r: np.ndarray, block: np.ndarray) -> None:
        """Copies of beacons arrive at receivers ``r`` ``(k,)`` from sender ``s`` (one, or ``(k,)``),
        one row of ``block`` ``(k, 2 + d + 3)`` each: ``[arrival, t, position, mass, phase epoch,
        phase age]``; each receiver keeps a copy unless it holds a newer one from that sender."""
        newer = block[:, 1] > self._store_rows[r, s, 1]
        k = len(r)
        if not newer.all():
            s = s[newer] if isinstance(s, np.ndarray) else s
            r, block = r[newer], block[newer]
        self._counters.superseded += k - len(r) + int(self._fresh[r, s].sum())
        self._store_rows[r, s] = block
        self._fresh[r, s] = True

    def _store_one(self, c: _Chunk, r: np.ndarray, arrivals: np.ndarray) -> None:
        """Copies of the one beacon ``c`` arrive at receivers ``r`` at ``arrivals``."""
        self._store(c.sender, r, _block(len(r), arrivals, c.t, c.position, c.tail))

    def _land(self, now: float) -> None:
        """Move every copy that has arrived by ``now`` into its receiver's store."""
        while self._flight and self._flight[0][0] <= now:
            _, order, c = heapq.heappop(self._flight)
            due = c.arrivals <= now
            r, arr = c.receivers, c.arrivals
            if not due.all():
                rest = _Chunk(c.sender, r[~due], arr[~due], c.t, c.position, c.tail)
                heapq.heappush(self._flight, (float(rest.arrivals.min()), order, rest))
                r, arr = r[due], arr[due]
            self._store_one(c, r, arr)

    def collect(self, receiver: int, now: float) -> np.ndarray:
        """Every beacon that has arrived at ``receiver`` by ``now`` since its last collection,
        the newest per sender: rows ``(k, d + 5)`` of ``[sender id, t, position, mass, phase
        epoch, phase age]`` (epoch -1: the beacon gave no phase)."""
        self._deliver()
        self._land(now)
        r = self.index[int(receiver)]
        fresh = self._fresh[r]  # this receiver's row of each store (views)
        s = np.flatnonzero(fresh)
        if not len(s):
            return np.empty((0, self.dim + 2 + _TAIL))
        fresh[s] = False
        rows = np.take(self._store_rows[r], s, axis=0)  # a copy: [arrival, t, position, tail]
        self._heard[r][s] = rows[:, 0]
        self._counters.delivered += len(s)
        rows[:, 0] = np.take(self.ids, s)
        return rows

    def forget(self, receiver: int) -> None:
        """Drop copies in flight to, or arrived and not collected by, ``receiver`` (it failed or
        left)."""
        self._deliver()
        r = self.index[int(receiver)]
        self._fresh[r] = False
        kept = []
        for first, order, c in self._flight:
            keep = c.receivers != r
            if keep.all():
                kept.append((first, order, c))
            elif keep.any():
                c2 = _Chunk(c.sender, c.receivers[keep], c.arrivals[keep], c.t, c.position, c.tail)
                kept.append((float(c2.arrivals.min()), order, c2))
        self._flight = kept
        heapq.heapify(self._flight)

    def last_heard(self, sender: int) -> dict[int, float]:
        """Receiver id -> arrival time of the newest copy from ``sender`` it collected."""
        self._deliver()
        s = self.index[int(sender)]
        col = self._heard[:, s]
        got = np.flatnonzero(np.isfinite(col))
        return {int(self.ids[r]): float(col[r]) for r in got}


def _copies(radio: Radio, pending: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """The copies the ``pending`` beacons make: receivers (roster indices) and the index into
    ``pending`` of each one's beacon. A beacon's receivers are the robots in range but its sender,
    not in a blackout, each copy lost with ``radio.loss``. A sender where the tick's update put it
    (the simulator's case) has its receivers from the tick's table of who is in range of whom,
    worked out at the first beacon of the tick; any other position is queried."""
    m = len(pending)
    senders = np.array([b[0] for b in pending], dtype=np.int64)
    seqs = np.array([b[5] for b in pending], dtype=np.int64)
    where = np.array([b[1] for b in pending])
    slot = radio._slot[senders]
    known = slot >= 0
    known[known] = np.all(where[known] == radio._tree_pos[slot[known]], axis=1)
    asked = iter(
        radio._tree.query_ball_point(where[~known], radio.range, return_sorted=True)
        if not known.all()
        else ()
    )
    parts = []
    for k in range(m):
        if known[k]:
            ptr, idx = _in_range(radio)
            parts.append(idx[ptr[slot[k]] : ptr[slot[k] + 1]])
        else:
            parts.append(radio._tree_idx[np.asarray(next(asked), dtype=np.int64)])
    owner = np.repeat(np.arange(m), [len(x) for x in parts])
    near = np.concatenate(parts) if len(owner) else owner
    keep = near != senders[owner]
    if radio._any_dark:
        dark = radio._dark_roster[near] & keep
        radio._counters.dropped_blackout += int(dark.sum())
        keep &= ~dark
    near, owner = near[keep], owner[keep]
    if radio.loss > 0 and len(near):
        kept = copy_uniforms(radio._key, senders[owner], near, seqs[owner]) >= radio.loss
        radio._counters.dropped_loss += int(len(near) - kept.sum())
        near, owner = near[kept], owner[kept]
    return near, owner


def _in_range(radio: Radio) -> tuple[np.ndarray, np.ndarray]:
    """Who is in range of whom where the tick's update put the robots, worked out at its first
    use in the tick: ``(ptr, idx)``, the robots in range of the one in tree row ``j`` (roster
    indices, itself included) being ``idx[ptr[j]:ptr[j + 1]]``."""
    if radio._near is None:
        lists = radio._tree.query_ball_point(radio._tree_pos, radio.range, return_sorted=True)
        ptr = np.concatenate(([0], np.cumsum([len(x) for x in lists])))
        radio._near = (ptr, radio._tree_idx[np.concatenate(lists).astype(np.int64)])
    return radio._near


def _deliver_one(
    radio: Radio, s: int, position: np.ndarray, t: float, tail: tuple, now: float, _seq: int
) -> bool:
    """One beacon from where the tick put its sender, with no latency, jitter, loss or blackout:
    its copies stored with a few array operations. False (nothing done) in any other case."""
    if radio.latency or radio.jitter or radio.loss or radio._any_dark:
        return False
    j = radio._slot[s]
    if j < 0 or not np.array_equal(position, radio._tree_pos[j]):
        return False
    ptr, idx = _in_range(radio)
    r = idx[ptr[j] : ptr[j + 1]]
    r = r[r != s]
    if len(r):
        radio._store(s, r, _block(len(r), now, t, position, tail))
    return True


def _block(k: int, arrivals, t: float, position: np.ndarray, tail) -> np.ndarray:
    """``k`` store rows of one beacon: ``[arrival, t, position, mass, phase epoch, phase age]``."""
    d = len(position)
    block = np.empty((k, 2 + d + _TAIL))
    block[:, 0], block[:, 1], block[:, 2 : 2 + d], block[:, 2 + d :] = arrivals, t, position, tail
    return block
