"""This process's own memory: what the guards against endless multipart messages (the
simulator's and an agent's) measure, and how freed heap is given back. Linux only; elsewhere the
answers are None and nothing."""

from __future__ import annotations

import ctypes
import os

__all__ = ["malloc_trim", "resident_bytes"]


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
