"""Sessions: the simulator's per-agent table (which connection speaks for each robot, and what it
has said), the rules for admitting a hello and ordering messages, and each agent's beacon budget.

One row per robot on the roster, indexed like the world (``k``): the connection (ZeroMQ route)
and epoch of the process that said hello last, the highest sequence number taken from it, when it
last sent a command (wall), the ticks of its latest command and beacon, where it last said it is
in its schedule, and its beacon token bucket. Nothing here sends or receives: the simulator asks
and acts on the answers.
"""

from __future__ import annotations

import math
from enum import Enum

import numpy as np

from swarmcover.protocol import ScheduleReport

__all__ = ["BEACON_BURST", "Admission", "Sessions"]

BEACON_BURST = 8  # beacons an agent may send at once after being quiet


class Admission(Enum):
    """What a hello does to its robot's session."""

    JOINED = "joined"  # the first hello of this robot
    REJOINED = "rejoined"  # a newer epoch: a restarted process (any connection)
    RECOVERED = "recovered"  # the same epoch and connection, detected silent but alive after all
    REFUSED = "refused"  # an older epoch, or the same epoch from another connection
    REPEATED = "repeated"  # the same epoch and connection again, nothing to do


class Sessions:
    """The per-agent session table of a roster of ``n`` robots."""

    def __init__(self, n: int) -> None:
        self.routes: dict[int, bytes] = {}
        self.epochs: dict[int, int] = {}
        self.seqs: dict[int, int] = {}
        self.last_command_wall = np.full(n, -math.inf)
        self.cmd_tick = np.full(n, -1, dtype=np.int64)
        self.beacon_tick = np.full(n, -1, dtype=np.int64)
        # where each agent last said it is in its schedule: epoch, stage, cause (-1: not yet)
        self.schedule_epoch = np.full(n, -1, dtype=np.int64)
        self.schedule_stage = np.full(n, -1, dtype=np.int64)
        self.schedule_cause = [""] * n
        self._tokens = np.full(n, float(BEACON_BURST))
        self._token_tick = np.zeros(n, dtype=np.int64)
        self._token_wall = np.zeros(n)

    def hello(
        self, k: int, a: int, route: bytes, epoch: int, seq: int, wall: float, silent: bool
    ) -> Admission:
        """Admit robot ``k`` (id ``a``)'s hello from ``route``; ``silent`` says whether it was
        detected failed (silence) and not injected. A newer epoch takes the robot over from any
        connection; the same epoch only from the same connection, and only to recover."""
        known = self.epochs.get(a)
        if known is not None and epoch <= known:
            if epoch < known or self.routes.get(a) != route:
                return Admission.REFUSED
            if not silent or seq <= self.seqs.get(a, -1):
                return Admission.REPEATED
            self.seqs[a] = seq
        else:
            self.routes[a], self.epochs[a], self.seqs[a] = route, epoch, seq
            self.schedule_epoch[k] = -1
        self.last_command_wall[k] = wall
        self.cmd_tick[k] = self.beacon_tick[k] = -1
        if known is None:
            return Admission.JOINED
        return Admission.REJOINED if epoch > known else Admission.RECOVERED

    def in_order(self, a: int, route: bytes, epoch: int, seq: int) -> bool:
        """Whether a message (not a hello) comes from the connection and epoch that own robot
        ``a`` and is newer than every one taken from them; if so its sequence number is taken."""
        if self.routes.get(a) != route or epoch != self.epochs.get(a) or seq <= self.seqs.get(a, -1):
            return False
        self.seqs[a] = seq
        return True

    def bye(self, a: int) -> None:
        """Robot ``a``'s process said goodbye: nothing is routed to it until its next hello."""
        self.routes.pop(a, None)

    def commanded(self, k: int, tick: int, wall: float) -> None:
        self.last_command_wall[k] = wall
        self.cmd_tick[k] = tick

    def report_schedule(self, k: int, rep: ScheduleReport) -> bool:
        """Record where robot ``k`` says it is in its schedule; returns whether that is a restart
        (a new schedule epoch, begun by this agent or taken up from its neighbours)."""
        restart = rep.epoch != self.schedule_epoch[k] and (rep.epoch > 0 or self.schedule_epoch[k] > 0)
        self.schedule_epoch[k], self.schedule_stage[k] = rep.epoch, rep.stage
        self.schedule_cause[k] = rep.cause
        return bool(restart)

    def admit_beacon(self, k: int, tick: int, wall: float, period: float | None) -> bool:
        r"""Whether robot ``k`` may beacon now: a token bucket of one token per world tick or, in
        real time (``period``, the wall seconds of a tick), per tick period of wall time, so that
        beacons queued behind a stall still pass; at most :data:`BEACON_BURST` saved (in real
        time, up to a second's worth). Each beacon is copied to every robot in range, so a flood
        would be multiplied: the excess is refused."""
        elapsed, burst = float(tick - self._token_tick[k]), float(BEACON_BURST)
        if period is not None:
            elapsed = max(elapsed, (wall - self._token_wall[k]) / period)
            burst = max(burst, 1.0 / period)
        tokens = min(burst, self._tokens[k] + elapsed)
        self._token_tick[k], self._token_wall[k] = tick, wall
        if tokens < 1.0:
            self._tokens[k] = tokens
            return False
        self._tokens[k] = tokens - 1.0
        self.beacon_tick[k] = tick
        return True
