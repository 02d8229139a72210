"""How many connections the simulator keeps: in total, per CURVE key, and silent ones.

ZeroMQ's ROUTER accepts every TCP connection and has no cap of its own, and every connection
holds a descriptor. :class:`ConnectionGuard` watches the socket's monitor (one per socket: it
also reports the failed handshakes the CURVE guard counts) and the descriptor each message came
from (ZeroMQ's ``SRCFD``), and closes connections that are over a bound:

- **in total**: a connection accepted while :attr:`ConnectionGuard.max_total` are open is closed
  at once (``connections_refused``); the bound is below the descriptor limit, so the recording,
  logs and pictures always find a descriptor;
- **silent**: a connection that has not delivered one message within ``silent_wall`` seconds of
  being accepted (an honest agent says hello as soon as its handshake is done) is closed
  (``connections_silent``); one that never finishes its handshake ZeroMQ closes itself after the
  handshake interval;
- **per key** (CURVE): the ZAP handler refuses a handshake with a key that already holds
  ``per_key`` connections, counting the ones approved but not yet heard from
  (``connections_per_key``); should a key still hold more (an approval expired), its oldest
  connections are closed.

- **memory**: ZeroMQ keeps every frame of a multipart message until its last frame has come,
  with no bound on the number of frames (the high-water mark counts whole messages, the frame
  size bound counts one frame), so one connection can grow the process by gigabytes with a
  message that never ends. A connection in the middle of a message has delivered nothing since
  it began it, so when this process's resident memory has grown more than ``memory_budget``
  bytes since the guard started, every connection quiet for ``quiet_wall`` seconds is closed
  (``connections_memory``; ZeroMQ frees what it held). An honest agent speaks every tick and
  reconnects by itself if it was closed by mistake. Linux only (``/proc/self/statm``);
  elsewhere ``ConnectionGuard.memory.active`` is False;
- **frames**: :meth:`ConnectionGuard.drop` closes the connection of a complete message that the
  caller refuses outright (more frames than any message to this socket has).

A connection is closed by ``shutdown(2)`` on a duplicate of its descriptor, after checking that
the descriptor still leads to the same peer: ZeroMQ sees the end of the stream and closes its
own descriptor as it would for a peer that hung up.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass

import zmq
from zmq.utils.monitor import recv_monitor_message

from swarmcover.logbudget import LogBudget
from swarmcover.procmem import MemoryWatch

__all__ = [
    "EVENTS_PER_SECOND",
    "MEMORY_BUDGET",
    "PER_KEY",
    "QUIET_WALL",
    "SILENT_WALL",
    "ConnectionGuard",
]

log = logging.getLogger("swarmcover.sim.connections")

EVENTS_PER_SECOND = 20  # refusal events recorded per second; the rest are only counted
PER_KEY = 4  # connections one CURVE key may hold (an agent needs one; a restart briefly two)
SILENT_WALL = 10.0  # seconds after being accepted by which a connection must have said something
MEMORY_BUDGET = 512 << 20  # bytes the process may grow before quiet connections are closed
QUIET_WALL = 1.0  # seconds without a complete message that make a connection suspect then
_MEMORY_EVERY = 0.1  # seconds between two looks at the resident memory

_HANDSHAKE_FAILURES = {
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake failed",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake failed: protocol error (plaintext client or garbage?)",
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake failed: authentication refused",
}
_GONE = zmq.EVENT_DISCONNECTED | zmq.EVENT_CLOSED


@dataclass
class _Conn:
    peer: object  # getpeername() when accepted: a reused descriptor leads elsewhere
    accepted: float
    key: str | None = None
    spoke: bool = False
    last: float = 0.0  # when its last complete message came (monotonic)


def _dup(fd: int) -> socket.socket:
    """A socket object on a duplicate of ``fd`` (closing it leaves ``fd`` open); OSError if
    ``fd`` is not an open socket."""
    d = os.dup(fd)
    try:
        return socket.socket(fileno=d)
    except OSError:
        os.close(d)
        raise


def _peer(fd: int):
    try:
        with _dup(fd) as s:
            return s.getpeername()
    except OSError:
        return None


class _Refusals:
    """Refusal events waiting for the receiving thread, handed out at most
    :data:`EVENTS_PER_SECOND` a second (the owner holds its lock)."""

    def __init__(self) -> None:
        self.pending: deque[tuple[str, dict]] = deque(maxlen=1000)
        self._window = (0.0, 0)  # (start, handed out since)

    def take(self, now: float) -> tuple[list[tuple[str, dict]], int]:
        """The events to record now, and how many were only counted."""
        start, used = self._window
        if now - start >= 1.0:
            start, used = now, 0
        out, suppressed = [], 0
        while self.pending:
            item = self.pending.popleft()
            if used < EVENTS_PER_SECOND:
                out.append(item)
                used += 1
            else:
                suppressed += 1
        self._window = (start, used)
        return out, suppressed


class ConnectionGuard:
    """Bounds the connections of ``sock`` (a ROUTER not yet bound). Call :meth:`seen` for every
    message received (its ``SRCFD`` and ``User-Id``) and :meth:`take_events` from the loop that
    receives them; :meth:`admit_key` is the ZAP handler's question (any thread)."""

    def __init__(
        self,
        sock: zmq.Socket,
        max_total: int,
        per_key: int = PER_KEY,
        silent_wall: float = SILENT_WALL,
        memory_budget: int = MEMORY_BUDGET,
        quiet_wall: float = QUIET_WALL,
    ):
        if max_total < 1 or per_key < 1 or silent_wall <= 0 or memory_budget <= 0 or quiet_wall <= 0:
            raise ValueError("connection bounds must be positive")
        self.max_total, self.per_key, self.silent_wall = int(max_total), int(per_key), float(silent_wall)
        self.memory, self.quiet_wall = MemoryWatch(memory_budget, _MEMORY_EVERY), float(quiet_wall)
        events = zmq.EVENT_ACCEPTED | _GONE
        for e in _HANDSHAKE_FAILURES:
            events |= e
        self._sock = sock
        self.monitor = sock.get_monitor_socket(events)
        self.monitor.setsockopt(zmq.RCVHWM, 100_000)
        self.conns: dict[int, _Conn] = {}
        self._quiet_fds: deque[int] = deque()  # accepted, not yet heard from, oldest first
        self.by_key: dict[str, list[int]] = {}
        self._approved: dict[str, deque[float]] = {}  # ZAP approvals not yet heard from
        self.counts = {
            "auth_denied": 0,
            "handshake_failed": 0,
            "connections_refused": 0,
            "connections_silent": 0,
            "connections_per_key": 0,
            "connections_peak": 0,
            "connections_memory": 0,
            "connections_dropped": 0,
            "memory_peak_growth": 0,
            "events_suppressed": 0,
        }
        self._lock = threading.Lock()
        self._refusals = _Refusals()
        self.quiet = LogBudget(log)

    # ------------------------------------------------------------ any thread
    def note(self, kind: str, details: dict, message: str, *args) -> None:
        """Count a refusal ``kind``, queue its event and log it within the log budget."""
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self._refusals.pending.append((kind, details))
            self.quiet.warning(kind, message, *args)

    def admit_key(self, key: str) -> bool:
        """May one more connection with the CURVE key ``key`` finish its handshake?"""
        now = time.monotonic()
        with self._lock:
            fds = self.by_key.get(key, [])
            fds[:] = [fd for fd in fds if fd in self.conns]
            waiting = self._approved.setdefault(key, deque())
            while waiting and now - waiting[0] > self.silent_wall:
                waiting.popleft()
            if len(fds) + len(waiting) >= self.per_key:
                ok = False
            else:
                waiting.append(now)
                ok = True
        if not ok:
            self.note("connections_per_key", {"key": key}, "a key holding %d connections refused another: %s",
                      self.per_key, key)  # fmt: skip
        return ok

    # ------------------------------------------------------------ the receiving thread
    def seen(self, fd: int, key: str | None, now: float | None = None) -> None:
        """A message came from descriptor ``fd`` (``SRCFD``), authenticated as ``key``."""
        c = self.conns.get(fd)
        now = time.monotonic() if now is None else now
        if c is None:  # heard before the monitor reported it accepted
            if fd is None or fd < 0:
                return
            c = self._accepted(fd, now)
            if c is None:
                return
        c.last = now
        if c.spoke:
            return
        c.spoke = True
        if key is None:
            return
        with self._lock:
            c.key = key
            fds = self.by_key.setdefault(key, [])
            fds.append(fd)
            waiting = self._approved.get(key)
            if waiting:
                waiting.popleft()
            over = fds[: max(0, len(fds) - self.per_key)]
        for old in over:  # the oldest go: the newest is the one that just spoke
            self._close(old)
            what = "a key over %d connections: its oldest closed (%s)"
            self.note("connections_per_key", {"key": key}, what, self.per_key, key)

    def drop(self, fd: int, why: str) -> None:
        """Close the connection on ``fd`` (whose last message the caller refused: ``why``)."""
        if fd is not None and self._close(fd):
            self.note("connections_dropped", {"why": why}, "a connection closed: %s", why)

    def take_events(self) -> list[tuple[str, dict]]:
        """Read the monitor, close what is over a bound; the refusals since the last call, at
        most :data:`EVENTS_PER_SECOND` a second (the rest only counted)."""
        now = time.monotonic()
        # bounded (a flood of connections cannot hold the tick loop); read when it has something
        for _ in range(10_000 if self.monitor.get(zmq.EVENTS) & zmq.POLLIN else 0):
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            kind, value = int(ev["event"]), int(ev["value"])
            if kind == zmq.EVENT_ACCEPTED:
                self._accepted(value, now)
            elif kind & _GONE:
                self._gone(value)
            elif kind in _HANDSHAKE_FAILURES:
                what = _HANDSHAKE_FAILURES[kind]
                self.note("handshake_failed", {"why": what, "code": value}, "%s (code %d)", what, value)
        while self._quiet_fds:
            fd = self._quiet_fds[0]
            c = self.conns.get(fd)
            if c is not None and not c.spoke and now - c.accepted <= self.silent_wall:
                break
            self._quiet_fds.popleft()
            if c is not None and not c.spoke and self._close(fd):
                self.note("connections_silent", {}, "a connection silent for %.0f s closed", self.silent_wall)
        grown = self.memory.over(now)
        self.counts["memory_peak_growth"] = self.memory.peak_growth
        if grown is not None:
            self._close_quiet(now, grown)
        if not self._refusals.pending:  # the usual case: no lock
            return []
        with self._lock:
            events, suppressed = self._refusals.take(now)
            self.counts["events_suppressed"] += suppressed
        return events

    def _close_quiet(self, now: float, grown: int) -> None:
        """The process grew past its budget (one of them is holding an unfinished multipart
        message): close the quiet connections."""
        quiet = [fd for fd, c in self.conns.items() if now - max(c.last, c.accepted) >= self.quiet_wall]
        closed = sum(self._close(fd) for fd in quiet)
        if closed:
            self.memory.freed()
            self.note("connections_memory", {"closed": closed, "grown_mb": round(grown / 2**20)},
                      "memory grew %.0f MB: %d quiet connections closed", grown / 2**20, closed)  # fmt: skip

    def _accepted(self, fd: int, now: float) -> _Conn | None:
        """A connection on ``fd``: the one already known (its first message came before the
        monitor's report), else a new entry; None if it was over the total and closed."""
        peer = _peer(fd)
        c = self.conns.get(fd)
        if c is not None and c.peer == peer:
            return c
        self._gone(fd)  # a descriptor reused before its end was reported
        c = self.conns[fd] = _Conn(peer=peer, accepted=now)
        self._quiet_fds.append(fd)
        self.counts["connections_peak"] = max(self.counts["connections_peak"], len(self.conns))
        if len(self.conns) > self.max_total:
            self._close(fd)
            self.note("connections_refused", {"open": len(self.conns)},
                      "%d connections open: one more refused", self.max_total)  # fmt: skip
            return None
        return c

    def _gone(self, fd: int) -> None:
        c = self.conns.pop(fd, None)
        if c is not None and c.key is not None:
            with self._lock:
                fds = self.by_key.get(c.key, [])
                if fd in fds:
                    fds.remove(fd)

    def _close(self, fd: int) -> bool:
        c = self.conns.get(fd)
        if c is None or c.peer is None:
            return False
        try:
            with _dup(fd) as s:
                if s.getpeername() != c.peer:
                    return False
                s.shutdown(socket.SHUT_RDWR)
        except OSError:
            return False
        self._gone(fd)
        return True

    def close(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self.monitor.close(linger=0)
