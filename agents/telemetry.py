"""An agent's record of its body's states: one JSON line per state, at most ``rate`` a second,
appended to a file (the launcher gives each agent of a vehicle fleet one in the run folder; on a
vehicle's own computer it is the flight's log). A file that cannot be written is said once and
then left alone: the robot flies on."""

from __future__ import annotations

import json
import logging
import time

__all__ = ["TelemetryLog"]

log = logging.getLogger("swarmcover.agent.telemetry")


class TelemetryLog:
    """Appends ``{"t": unix time, "world_time", "position", "agent_id"}`` lines to ``path``."""

    def __init__(self, path: str, agent_id: int, rate: float = 10.0) -> None:
        self.path, self.agent_id, self.every = path, int(agent_id), 1.0 / float(rate)
        self._next = 0.0
        self._file = None
        self.broken = False

    def write(self, now: float, world_time: float, position: list[float]) -> None:
        """The body's state at ``now`` (monotonic), if one is due."""
        if self.broken or now < self._next:
            return
        self._next = now + self.every
        row = {"t": time.time(), "agent_id": self.agent_id, "world_time": world_time, "position": position}
        try:
            if self._file is None:
                self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # held open
            self._file.write(json.dumps(row) + "\n")
        except OSError as exc:
            self.broken = True
            log.warning("telemetry log %s cannot be written (%s): not recording", self.path, exc)

    def close(self, counters: dict | None = None) -> None:
        """The last line, ``{"t", "agent_id", "counters"}`` (the agent's final counters), then close."""
        if counters is not None and not self.broken:
            self._next = 0.0
            try:
                if self._file is None:
                    self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # held open
                self._file.write(
                    json.dumps({"t": time.time(), "agent_id": self.agent_id, "counters": counters}) + "\n"
                )
            except OSError:
                pass
        if self._file is not None:
            self._file.close()
            self._file = None
