"""The neighbour table: the latest beacon of every peer heard, with epochs, sequence checks and TTLs.

Held in arrays (one slot per peer, at most ``capacity``) so that taking a hundred relayed beacons
and listing the live ones each tick costs a few numpy operations, not a Python object per peer.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from swarmcover.kernels import hotpath
from swarmcover.protocol import Beacon

# optional C (swarmcover/_hotpath.c): the usual tick of offer_relayed in one call
_c_update = hotpath("table_update")

__all__ = ["SILENT_TICKS", "NeighborTable", "Verdict"]

#: A peer is forgotten when it has been silent for ``forget_after`` seconds *and* for this many of
#: the world's ticks (when the table is told them): in lockstep on a loaded machine two wall
#: seconds can pass in one tick, and a peer the world waited for is not gone.
SILENT_TICKS = 5
_TICK_TRAIL = 4096


class Verdict:
    """Why a beacon was or was not taken."""

    ACCEPTED = "accepted"
    OLD_EPOCH = "old epoch"
    REPLAY = "replayed or out of order"
    OLDER = "older than the one held"
    WRONG_DIM = "wrong dimension"
    FULL = "table full"
    OWN = "this agent's own id"


class NeighborTable:
    """Latest beacon per peer id.

    A beacon from a newer epoch replaces the peer's entry (the peer restarted); one from an older
    epoch, or with a sequence number not above the last one taken for that epoch, is rejected.
    Relayed beacons (:meth:`offer_rows`: a body's radio already checked epochs and sequences)
    replace an entry unless they were sent before the one held. Peers unheard for
    ``forget_after`` seconds (and :data:`SILENT_TICKS` of the world's ticks, given by
    :meth:`at_tick`) are dropped; :meth:`live` returns only those heard within ``ttl``.
    At most ``capacity`` peers are held: a new id when full evicts the stalest entry only if that
    one is already stale, so a flood of fake ids cannot push out live neighbours.
    """

    def __init__(self, own_id: int, dim: int, ttl: float, forget_after: float, capacity: int) -> None:
        self.own_id, self.dim = own_id, dim
        self.ttl, self.forget_after, self.capacity = ttl, forget_after, capacity
        self._slot: dict[int, int] = {}
        self._free = list(range(capacity - 1, -1, -1))
        self._ids = np.full(capacity, -1, dtype=np.int64)
        self._epoch = np.zeros(capacity, dtype=np.int64)
        self._seq = np.zeros(capacity, dtype=np.int64)
        self._t = np.zeros(capacity)  # the beacon's own send time
        self._pos = np.zeros((capacity, dim))
        self._mass = np.zeros(capacity)
        self._heard = np.full(capacity, -np.inf)  # local monotonic time of receipt
        self._dirty = True
        self._sorted_ids = self._sorted_slots = np.empty(0, dtype=np.int64)
        self._gone: list[tuple[np.ndarray, float]] = []  # (position, heard) of peers forgotten
        self.tick = -1  # the world's latest tick (at_tick); -1: wall time alone decides
        self._tick_trail: deque[tuple[float, int]] = deque(maxlen=_TICK_TRAIL)  # (wall, tick)

    def __len__(self) -> int:
        return len(self._slot)

    def _new_slot(self, now: float, protect: np.ndarray | None = None) -> int | None:
        if not self._free:
            self.expire(now)
        if not self._free:
            heard = np.where(self._ids >= 0, self._heard, np.inf)
            if protect is not None:
                heard[protect] = np.inf
            oldest = int(np.argmin(heard))
            if not now - heard[oldest] > self.ttl:
                return None
            self._drop(oldest)
        self._dirty = True
        return self._free.pop()

    def _drop(self, slot: int) -> None:
        del self._slot[int(self._ids[slot])]
        self._ids[slot] = -1
        self._heard[slot] = -np.inf
        self._free.append(slot)
        self._dirty = True

    def _lookup(self, ids: np.ndarray) -> np.ndarray:
        """Slots of ``ids``, -1 where not held (vectorised: a sorted index, rebuilt on change)."""
        if self._dirty:
            used = np.flatnonzero(self._ids >= 0)
            order = np.argsort(self._ids[used])
            self._sorted_ids, self._sorted_slots = self._ids[used][order], used[order]
            self._dirty = False
        if not len(self._sorted_ids):
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted_ids, ids), len(self._sorted_ids) - 1)
        return np.where(self._sorted_ids[at] == ids, self._sorted_slots[at], -1)

    def offer(self, b: Beacon, now: float) -> str:
        """Take one beacon heard directly from a peer."""
        if len(b.position) != self.dim:
            return Verdict.WRONG_DIM
        if b.agent_id == self.own_id:
            return Verdict.OWN
        k = self._slot.get(b.agent_id)
        if k is not None:
            if b.epoch < self._epoch[k]:
                return Verdict.OLD_EPOCH
            if b.epoch == self._epoch[k] and b.seq <= self._seq[k]:
                return Verdict.REPLAY
        else:
            k = self._new_slot(now)
            if k is None:
                return Verdict.FULL
            self._slot[b.agent_id] = k
            self._ids[k] = b.agent_id
        self._epoch[k], self._seq[k], self._t[k] = b.epoch, b.seq, b.t
        self._pos[k] = b.position
        self._mass[k] = b.mass
        self._heard[k] = now
        return Verdict.ACCEPTED

    def offer_rows(
        self, ids: np.ndarray, t: np.ndarray, pos: np.ndarray, mass: np.ndarray, now: float
    ) -> dict[str, int]:
        """Take beacons relayed by a body: ``ids (k,)``, their send times ``t (k,)``, positions
        ``(k, d)`` and masses ``(k,)`` (distinct ids). Returns how many were ``accepted``,
        ``older`` than the entry held, refused because the table was ``full``, or refused as this
        agent's ``own`` id."""
        slots = self._lookup(ids)
        new = np.flatnonzero(slots < 0)
        full = own = 0
        if len(new):
            held = slots[slots >= 0]
            for i in new.tolist():
                if int(ids[i]) == self.own_id:
                    own += 1
                    continue
                k = self._new_slot(now, held)
                if k is None:
                    full += 1
                    continue
                a = int(ids[i])
                self._slot[a] = k
                self._ids[k] = a
                self._t[k] = -np.inf
                self._epoch[k] = self._seq[k] = 0
                slots[i] = k
        take = slots >= 0
        take[take] = t[take] >= self._t[slots[take]]
        older = len(ids) - full - own - int(take.sum())
        k = slots[take]
        self._t[k], self._pos[k], self._mass[k], self._heard[k] = t[take], pos[take], mass[take], now
        return {"accepted": len(k), "older": older, "full": full, "own": own}

    def offer_relayed(self, rows: np.ndarray, now: float) -> dict[str, int]:
        """:meth:`offer_rows` for rows ``(k, d + 3)`` as a body relays them, ``[id, t, position,
        mass]`` (validated by the protocol decoder). The usual tick (every sender held, every
        beacon newer) is one call of the C hot path where it was built."""
        if _c_update is not None and not self._dirty:
            if _c_update(
                self._sorted_ids, self._sorted_slots, self._t, self._pos, self._mass, self._heard, rows, now
            ):
                return {"accepted": len(rows), "older": 0, "full": 0, "own": 0}
        d = self.dim
        return self.offer_rows(
            rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 2 : 2 + d], rows[:, 2 + d], now
        )

    def last(self, agent_id: int) -> tuple[np.ndarray, float] | None:
        """The held position ``(d,)`` of ``agent_id`` and when it was heard, or None."""
        k = self._slot.get(agent_id)
        return None if k is None else (self._pos[k].copy(), float(self._heard[k]))

    def forget(self, agent_id: int) -> None:
        """Drop ``agent_id``'s entry now (not a loss: nothing goes to :meth:`take_forgotten`)."""
        k = self._slot.get(agent_id)
        if k is not None:
            self._drop(k)

    def at_tick(self, now: float, tick: int) -> None:
        """The world is at tick ``tick`` at local time ``now`` (a state arrived)."""
        if tick != self.tick:
            self.tick = int(tick)
            self._tick_trail.append((float(now), self.tick))

    def _ticks_silent(self, heard: np.ndarray) -> np.ndarray:
        """How many of the world's ticks have passed since each of ``heard (k,)`` (a large number
        where the tick then is not known, or the ticks started over)."""
        out = np.full(len(heard), np.iinfo(np.int64).max)
        if self.tick < 0 or not self._tick_trail:
            return out
        walls = np.array([w for w, _ in self._tick_trail])
        k = np.searchsorted(walls, heard, side="right") - 1
        ok = k >= 0
        then = np.array([self._tick_trail[i][1] for i in k[ok].tolist()], dtype=np.int64)
        since = self.tick - then
        out[np.flatnonzero(ok)[since >= 0]] = since[since >= 0]
        return out

    def expire(self, now: float) -> list[int]:
        """Forget peers silent for longer than ``forget_after`` (and :data:`SILENT_TICKS` ticks);
        returns their ids (their last positions and when they were heard wait in
        :meth:`take_forgotten`)."""
        gone = np.flatnonzero((self._ids >= 0) & (now - self._heard > self.forget_after))
        if len(gone):
            gone = gone[self._ticks_silent(self._heard[gone]) >= SILENT_TICKS]
        ids = [int(self._ids[k]) for k in gone]
        for k in gone:
            if len(self._gone) < self.capacity:
                self._gone.append((self._pos[k].copy(), float(self._heard[k])))
            self._drop(int(k))
        return ids

    def take_forgotten(self) -> tuple[np.ndarray, np.ndarray]:
        """The peers forgotten since the last call: last positions ``(k, d)`` and the (local)
        times they were last heard ``(k,)``; what a loss detector needs."""
        gone, self._gone = self._gone, []
        if not gone:
            return np.empty((0, self.dim)), np.empty(0)
        return np.array([g[0] for g in gone]), np.array([g[1] for g in gone])

    def slots(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each slot's last heard ``(capacity,)`` (-inf: free), position and mass (:meth:`live`'s)."""
        return self._heard, self._pos, self._mass

    def live(self, now: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ids ``(k,)``, positions ``(k, d)`` and masses ``(k,)`` of peers heard within ``ttl``."""
        # a free slot's heard is -inf, and the own id is never taken: one comparison finds them
        k = np.flatnonzero(self._heard >= now - self.ttl)
        return np.take(self._ids, k), np.take(self._pos, k, axis=0), np.take(self._mass, k)
