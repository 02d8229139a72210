"""Fleet metrics: coverage quality sampled every ``metrics_every`` world seconds, and the
sense-to-command timing of every state a robot was asked to answer.

The series (:attr:`FleetMetrics.series`) are what ``summary.json``, ``metrics.png`` and the
progress line show: energy distance, Lloyd cost and blob energy of the live robots, how many are
alive, the fleet's distance travelled, the under-served demand, and the fraction of the
interval's command-states answered within one tick (``on_time``). Each command-state counts in
the interval it was sent in: an answer still in flight when the interval is sampled updates that
interval's entry when it comes, so ``on_time`` stays a fraction of its own states.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from swarmcover.law import BlobLaw
from swarmcover.metrics import energy_distance, lloyd_cost, underserved_mass

from .world import World

__all__ = ["SERIES", "FleetMetrics"]

#: The sampled series, in the order ``summary.json`` lists them.
SERIES = ("t", "energy_distance", "lloyd_cost", "blob_energy", "alive", "distance", "underserved", "on_time")


class FleetMetrics:
    """Quality series and per-robot timing for a world of ``n`` robots.

    ``counts`` is the simulator's counter dict; this room keeps its ``states_sent``,
    ``commands_answering`` and ``commands_on_time`` entries.
    """

    def __init__(self, n: int, every: float, target, law: BlobLaw, counts: dict[str, int]) -> None:
        self.every, self.target, self.law, self.counts = every, target, law, counts
        for key in ("states_sent", "commands_answering", "commands_on_time"):
            counts.setdefault(key, 0)
        self.series: dict[str, list[float]] = {name: [] for name in SERIES}
        self.latencies: deque[float] = deque(maxlen=1_000_000)  # sense-to-command, wall seconds
        # per robot: states asking for a command, first commands answering them, of those on time
        self.states_to = np.zeros(n, dtype=np.int64)
        self.answered_by = np.zeros(n, dtype=np.int64)
        self.on_time_by = np.zeros(n, dtype=np.int64)
        self.sent_wall = np.full(n, math.nan)  # when the latest command-state went out
        self.sent_tick = np.full(n, -1, dtype=np.int64)
        self.sent_interval = np.zeros(n, dtype=np.int64)  # the metrics interval it went out in
        # per metrics interval: command-states sent in it, and of those, answered within a tick
        self._sent: list[int] = [0]
        self._on_time: list[int] = [0]
        self._next = 0.0

    def state_sent(self, k: int, tick: int, wall: float) -> None:
        """Robot ``k`` was sent the command-state of ``tick`` at monotonic ``wall``."""
        self.sent_wall[k], self.sent_tick[k] = wall, tick
        self.sent_interval[k] = len(self._sent) - 1
        self._sent[-1] += 1
        self.counts["states_sent"] += 1
        self.states_to[k] += 1

    def answered(self, k: int, wall: float, period: float) -> None:
        """The first command answering robot ``k``'s latest state arrived at ``wall``; it is on
        time when back within one tick ``period`` (wall seconds) of the state."""
        lat = wall - self.sent_wall[k]
        self.latencies.append(lat)
        self.counts["commands_answering"] += 1
        self.answered_by[k] += 1
        if lat <= period:
            self.counts["commands_on_time"] += 1
            self.on_time_by[k] += 1
            self._count_on_time(int(self.sent_interval[k]))

    def _count_on_time(self, interval: int, answered: int = 1) -> None:
        self._on_time[interval] += answered
        if interval < len(self.series["on_time"]):
            sent = self._sent[interval]
            self.series["on_time"][interval] = self._on_time[interval] / sent if sent else math.nan

    def sample(self, world: World) -> bool:
        """Append one sample of every series if ``every`` world seconds have passed since the last;
        returns whether it did."""
        if world.t + 1e-9 < self._next:
            return False
        self._next += self.every
        alive = world.live_mask()
        x = world.x[alive]
        some = len(x) > 1
        s = self.series
        s["t"].append(world.t)
        s["energy_distance"].append(float(energy_distance(x, self.target)) if some else math.nan)
        s["lloyd_cost"].append(float(lloyd_cost(x, self.target, 128)) if some else math.nan)
        s["blob_energy"].append(float(self.law.energy(x)) if some else math.nan)
        s["alive"].append(int(alive.sum()))
        s["distance"].append(float(world.travelled.sum()))
        s["underserved"].append(float(underserved_mass(x, self.target)) if some else 1.0)
        s["on_time"].append(math.nan)  # filled in by _count_on_time, now and as late answers come
        self._count_on_time(len(self._sent) - 1, 0)
        self._sent.append(0)
        self._on_time.append(0)
        return True

    def timing(self) -> dict:
        """Sense-to-command timing so far: states sent, commands answering them, the fraction on
        time (back within one tick period; meaningful in real time), latency median and p99 (ms)."""
        lat = np.asarray(self.latencies, dtype=np.float64) * 1e3
        sent = self.counts["states_sent"]
        return {
            "states_sent": sent,
            "answered": self.counts["commands_answering"],
            "on_time_fraction": self.counts["commands_on_time"] / sent if sent else None,
            "latency_ms_median": float(np.median(lat)) if len(lat) else None,
            "latency_ms_p99": float(np.percentile(lat, 99)) if len(lat) else None,
        }
