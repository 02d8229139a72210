"""Tie a child process's life to its parent's: when the parent dies, the child gets SIGTERM.

On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG)``) the moment the parent exits, even by
SIGKILL; elsewhere (or if prctl fails) a daemon thread checks every ``interval`` seconds that the
parent is still the one it was started by (after the parent dies, ``os.getppid()`` changes). Not
both: hundreds of agent processes each waking twice a second for nothing cost a fleet CPU.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading

__all__ = ["die_with_parent"]

log = logging.getLogger("swarmcover.lifeline")

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Send this process SIGTERM when ``parent_pid`` (its parent) exits; SIGTERM at once if it
    already has."""
    kernel_watches = False
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the running program's symbols, libc's among them
            kernel_watches = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0
            if not kernel_watches:
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except OSError as exc:  # pragma: no cover - no libc to load
            log.warning("cannot load libc for prctl: %s", exc)

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(interval):
            if os.getppid() != parent_pid:
                log.warning("parent %d is gone; stopping", parent_pid)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    if os.getppid() != parent_pid:  # the parent died before we could ask to be told
        os.kill(os.getpid(), signal.SIGTERM)
    elif not kernel_watches:
        threading.Thread(target=watch, name="lifeline", daemon=True).start()
