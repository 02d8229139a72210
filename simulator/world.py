"""The physical world: bodies on a fixed roster, their live set and failures, and kinematics.

Like PettingZoo's ``possible_agents`` and ``agents``: :attr:`World.roster` never changes, while
:meth:`World.live` is the set of robots whose controller the world currently serves. A body moves
as a single integrator, ``x <- x + dt (v + wind(x))``, where ``v`` is its latest usable command
(saturated to the speed limit; zero when the body failed, the robot was cut off, or in real time
the command is older than its TTL). Walls are no-flux (the outward component is removed, bodies
slide along them) and no-go zones are solid: a move that would end inside one is cut back to
the part along each axis that stays out.

Pure numpy: no sockets, no display. :meth:`World.snapshot` gives the read-only view that rendering
and recording use.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from swarmcover.control import clip_speed
from swarmcover.domain import Box, Zone
from swarmcover.integrate import slide_at_walls

__all__ = ["ALIVE", "STATUS_NAMES", "Snapshot", "Status", "World"]


class Status(IntEnum):
    """Per-robot status codes (``uint8`` in snapshots and recordings), as recorded and rendered.

    Like PettingZoo's ``agents`` among ``possible_agents``: every robot on the roster has one,
    and :data:`ALIVE` is the set whose controller the world still serves.
    """

    WAITING = 0  # on the roster, no controller has said hello yet
    LIVE = 1  # controller connected and answering
    STALE = 2  # controller connected, its last command is older than the TTL (real time)
    FAILED = 3  # detected (silent past the failure timeout) or injected failure
    RADIO_FAILED = 4  # live, but its radio is down (injected)
    BODY_FAILED = 5  # live controller, body ignores its commands (injected)

    @staticmethod
    def alive(codes: np.ndarray) -> np.ndarray:
        """Boolean mask, shape of ``codes``: whose controller is alive (a code in :data:`ALIVE`)."""
        return np.isin(codes, ALIVE)


#: The statuses of a robot whose controller is alive (connected, whatever else is wrong).
ALIVE: tuple[int, ...] = (Status.LIVE, Status.STALE, Status.RADIO_FAILED, Status.BODY_FAILED)

#: Code -> name, as written to ``summary.json`` and the recording.
STATUS_NAMES: dict[int, str] = {int(s): s.name.lower() for s in Status}


@dataclass(frozen=True)
class Snapshot:
    """A read-only copy of the world at one instant.

    Attributes
    ----------
    t : float
        World time.
    ids : ndarray, shape (n,)
    positions, commands : ndarray, shape (n, d)
    status : ndarray of uint8, shape (n,)
        :class:`Status` codes.
    """

    t: float
    ids: np.ndarray
    positions: np.ndarray
    commands: np.ndarray
    status: np.ndarray


class World:
    """Bodies of the robots in ``roster`` at ``positions (n, d)`` in ``box``."""

    def __init__(
        self,
        roster: list[int],
        positions: np.ndarray,
        box: Box,
        speed_limit: float,
        zones: list[Zone] | None = None,
        wind=None,
        drift_when_failed: bool = True,
    ) -> None:
        self.ids = np.asarray(roster, dtype=np.int64)
        self.index = {int(a): k for k, a in enumerate(self.ids)}
        self.box = box
        self.x = box.clip(np.asarray(positions, dtype=np.float64))
        n, d = self.x.shape
        self.speed_limit = float(speed_limit)
        self.zones = list(zones or [])
        self.wind = wind  # callable (n, d) -> (n, d), or None
        self.drift_when_failed = drift_when_failed
        self.t = 0.0
        self.command = np.zeros((n, d))
        self.command_at = np.full(n, -np.inf)  # wall time the latest command arrived
        self.connected = np.zeros(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self.radio_failed = np.zeros(n, dtype=bool)
        self.body_failed = np.zeros(n, dtype=bool)
        self.stale = np.zeros(n, dtype=bool)
        self.travelled = np.zeros(n)  # distance each body has moved

    @property
    def roster(self) -> list[int]:
        return [int(a) for a in self.ids]

    def live_mask(self) -> np.ndarray:
        """Robots whose controller the world serves: connected and not failed."""
        return self.connected & ~self.failed

    def live(self) -> list[int]:
        return [int(a) for a in self.ids[self.live_mask()]]

    def set_command(self, agent_id: int, velocity: np.ndarray, wall_now: float) -> None:
        k = self.index[agent_id]
        self.command[k] = clip_speed(np.asarray(velocity, dtype=np.float64), self.speed_limit)
        self.command_at[k] = wall_now

    def status(self) -> np.ndarray:
        s = np.full(len(self.ids), Status.WAITING, dtype=np.uint8)
        s[self.connected] = Status.LIVE
        s[self.connected & self.stale] = Status.STALE
        s[self.connected & self.body_failed] = Status.BODY_FAILED
        s[self.connected & self.radio_failed] = Status.RADIO_FAILED
        s[self.failed] = Status.FAILED
        return s

    def step(self, dt: float, wall_now: float, command_ttl: float | None) -> None:
        """Advance ``dt`` world seconds; commands older than ``command_ttl`` wall seconds are not
        applied (``None``: lockstep, every command is for this tick)."""
        use = self.live_mask() & ~self.body_failed
        if command_ttl is not None:
            fresh = wall_now - self.command_at <= command_ttl
            self.stale = self.connected & ~fresh
            use &= fresh
        v = np.where(use[:, None], self.command, 0.0)
        if self.wind is not None:
            w = self.wind(self.x)
            if not self.drift_when_failed:
                w = np.where(self.failed[:, None], 0.0, w)
            v = v + w
        v = slide_at_walls(self.x, v, self.box.lo, self.box.hi)
        new = self.box.clip(self.x + dt * v)
        if self.zones:
            new = self._keep_out(self.x, new)
        self.travelled += np.linalg.norm(new - self.x, axis=1)
        self.x = new
        self.t += dt

    def _keep_out(self, old: np.ndarray, new: np.ndarray) -> np.ndarray:
        """Cut back moves that end inside a zone: keep each axis's part of the move that stays out."""
        inside = self._inside(new)
        if not inside.any():
            return new
        out = new.copy()
        for k in np.flatnonzero(inside):
            trial = old[k].copy()
            for a in range(old.shape[1]):
                cand = trial.copy()
                cand[a] = new[k, a]
                if not self._inside(cand[None])[0]:
                    trial = cand
            out[k] = trial
        return out

    def _inside(self, p: np.ndarray) -> np.ndarray:
        m = np.zeros(p.shape[0], dtype=bool)
        for z in self.zones:
            m |= z.contains(p)
        return m

    def snapshot(self) -> Snapshot:
        return Snapshot(self.t, self.ids.copy(), self.x.copy(), self.command.copy(), self.status())
