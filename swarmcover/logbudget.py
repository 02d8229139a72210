"""Rate-limited logging: what a sender can make a process write is bounded.

A refused message is counted always and logged at most a few times per interval per kind, so
a flood of junk (a hundred thousand refused handshakes, a junk datagram a millisecond) writes a
handful of lines, each saying how many similar records were left out since the last one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["LogBudget"]


@dataclass
class _Window:
    start: float
    used: int = 0
    held_back: int = 0


@dataclass
class LogBudget:
    """At most ``per_interval`` records per key every ``interval`` seconds of ``clock``.

    Parameters
    ----------
    logger
        Where the records go.
    per_interval
        Records let through per key and window.
    interval
        The window's length in seconds.
    clock
        Seconds, monotonic (``time.monotonic`` by default; a test may pass its own).

    Attributes
    ----------
    suppressed
        Records held back so far, per key (the counts a summary can report).
    """

    logger: logging.Logger
    per_interval: int = 5
    interval: float = 10.0
    clock: Callable[[], float] = time.monotonic
    suppressed: dict[str, int] = field(default_factory=dict)
    _windows: dict[str, _Window] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.per_interval < 1 or not self.interval > 0:
            raise ValueError("a log budget needs per_interval >= 1 and interval > 0")

    def log(self, level: int, key: str, msg: str, *args: object) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` spent its budget; True when logged."""
        now = self.clock()
        w = self._windows.get(key)
        if w is None or now - w.start >= self.interval:
            held = 0 if w is None else w.held_back
            w = self._windows[key] = _Window(now)
            if held:
                msg += " (%d similar records left out in the last %.0f s)"
                args = (*args, held, self.interval)
        if w.used >= self.per_interval:
            w.held_back += 1
            self.suppressed[key] = self.suppressed.get(key, 0) + 1
            return False
        w.used += 1
        self.logger.log(level, msg, *args)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.WARNING, key, msg, *args)

    def info(self, key: str, msg: str, *args: object) -> bool:
        return self.log(logging.INFO, key, msg, *args)
