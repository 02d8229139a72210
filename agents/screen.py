"""Screening peers' beacons for what is physically possible (direct mode: positions are whatever
the sender says; with a simulator the radio relays the world's own positions).

A beacon is **impossible** when its position lies outside the domain or inside a no-go zone of
the agent's map (solid: no robot stands there), or is farther from the
peer's previous beacon than ``JUMP_FACTOR`` times the speed limit allows over the time between
their receipts plus the beacon TTL (slack for queueing). It is dropped and counted; a peer with
``strikes`` impossible beacons within ``window`` seconds is **quarantined** for ``quarantine``
seconds: its beacons are ignored and its entry forgotten.
"""

from __future__ import annotations

import numpy as np

from swarmcover.domain import Box, Zone

__all__ = ["JUMP_FACTOR", "PeerScreen"]

JUMP_FACTOR = 2.0  # a real robot moves at most this many times the speed limit allows (slack)


class PeerScreen:
    """Per-peer checks and quarantine (times in local monotonic seconds).

    Parameters
    ----------
    box : Box
        The domain; positions outside it (beyond a 1e-9 relative tolerance) are impossible.
    speed_limit : float
        Distance per second.
    slack : float
        Seconds added to the time between receipts (the beacon TTL).
    zones : sequence of Zone
        No-go zones; a position deeper inside one than the tolerance is impossible.
    strikes, window, quarantine
        ``strikes`` impossible beacons within ``window`` s quarantine a peer for ``quarantine`` s.
    capacity : int
        Peers tracked at once (a flood of fake ids cannot grow this).
    """

    def __init__(
        self,
        box: Box,
        speed_limit: float,
        slack: float,
        zones: tuple[Zone, ...] | list[Zone] = (),
        strikes: int = 3,
        window: float = 10.0,
        quarantine: float = 10.0,
        capacity: int = 1024,
    ) -> None:
        self.lo, self.hi = box.lo, box.hi
        self.tol = 1e-9 * float(np.max(box.size))
        self.zones = tuple(zones)
        self.speed, self.slack = float(speed_limit), float(slack)
        self.strikes, self.window, self.quarantine = int(strikes), float(window), float(quarantine)
        self.capacity = int(capacity)
        self._marks: dict[int, tuple[int, float]] = {}  # id -> (strikes, first strike)
        self._until: dict[int, float] = {}  # id -> end of quarantine

    def why_impossible(
        self, position: np.ndarray, now: float, last: tuple[np.ndarray, float] | None
    ) -> str | None:
        """Why a beacon at ``position (d,)`` received at ``now`` cannot be true, given the peer's
        previous ``(position, received)``; None when it can."""
        if np.any(position < self.lo - self.tol) or np.any(position > self.hi + self.tol):
            return "outside the domain"
        for z in self.zones:
            if float(z.signed_distance(position[None])[0]) < -self.tol:
                return "inside a no-go zone"
        if last is not None:
            prev, heard = last
            reach = JUMP_FACTOR * self.speed * (max(0.0, now - heard) + self.slack)
            if float(np.linalg.norm(position - prev)) > reach:
                return "moved faster than the speed limit"
        return None

    def quarantined(self, agent_id: int, now: float) -> bool:
        until = self._until.get(agent_id)
        if until is None:
            return False
        if now >= until:
            del self._until[agent_id]
            return False
        return True

    def strike(self, agent_id: int, now: float) -> bool:
        """One impossible beacon from ``agent_id``; True when it puts the peer in quarantine."""
        n, first = self._marks.get(agent_id, (0, now))
        if now - first > self.window:
            n, first = 0, now
        n += 1
        if n >= self.strikes:
            self._marks.pop(agent_id, None)
            if len(self._until) < self.capacity:
                self._until[agent_id] = now + self.quarantine
                return True
            return False
        if agent_id in self._marks or len(self._marks) < self.capacity:
            self._marks[agent_id] = (n, first)
        return False
