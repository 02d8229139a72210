"""This process's own memory: what the guards against endless multipart messages (the
simulator's and an agent's) measure, and how freed heap is given back. Linux only; elsewhere the
answers are None and nothing."""

from __future__ import annotations

import ctypes
import os

__all__ = ["MemoryWatch", "malloc_trim", "resident_bytes"]


def resident_bytes() -> int | None:
    """This process's resident memory in bytes (``/proc/self/statm``), None where unknown."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def malloc_trim() -> None:
    """Return freed heap to the system (glibc's ``malloc_trim``; nothing elsewhere)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


class MemoryWatch:
    """This process's growth in resident memory since the watch began, against ``budget`` bytes,
    looked at most every ``every`` seconds. :meth:`over` after the owner freed something
    (:meth:`freed`) first gives the heap back. ``active`` is False where memory is unknown."""

    def __init__(self, budget: int, every: float = 0.1) -> None:
        self.budget, self.every = int(budget), float(every)
        self._rss0 = resident_bytes()
        self.active = self._rss0 is not None
        self._next_look, self._trim = 0.0, False
        self.peak_growth = 0

    def over(self, now: float) -> int | None:
        """The growth in bytes when this look (at monotonic ``now``) finds it over the budget;
        None when it is not, or when it is not time to look."""
        if self._rss0 is None or now < self._next_look:
            return None
        self._next_look = now + self.every
        if self._trim:  # what the owner closed is free by now: give it back
            self._trim = False
            malloc_trim()
        rss = resident_bytes()
        if rss is None:
            return None
        grown = rss - self._rss0
        self.peak_growth = max(self.peak_growth, grown)
        return grown if grown > self.budget else None

    def freed(self) -> None:
        """The owner closed what held memory: give the heap back at the next look."""
        self._trim = True
