"""The agent's wait: one poll over its links and a signal's wake-up, and what arrived.

:class:`Inbox` registers the body's and the peers' sockets (and, once signals are routed to it, a
socket pair that :func:`signal.set_wakeup_fd` writes to, so a SIGTERM ends the wait at once),
sleeps until something arrives or the session's deadline, and yields every message with where it
came from. Direct peers' links that a peer's endless message made too big are made again here,
and the poller follows.
"""

from __future__ import annotations

import math
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import zmq

from .links import PeerLinks, UdpLink

__all__ = ["Arrival", "BodyOrder", "Inbox", "Wake", "route_signals"]


@dataclass(frozen=True)
class Arrival:
    """One message: its frames, whether it came over the body's link, the peer id its authenticated
    connection belongs to (CURVE direct mode) and, for a UDP body, its address and whether the body
    trusts it."""

    frames: list[bytes]
    from_body: bool
    peer: int | None = None
    source_ok: bool = True
    address: tuple[str, int] | None = None


@dataclass
class BodyOrder:
    """Which states the body may send: in order in the body's epoch, from its address; a new epoch
    (a restarted body) from the same address, or from anywhere once the body has been silent for
    ``state_timeout``. So one forged datagram with a huge epoch cannot lock the body out, nor
    another sender take over a body that is speaking."""

    state_timeout: float
    epoch: int = -1
    seq: int = -1
    last_state_at: float = -math.inf

    def may_send(self, msg, source_ok: bool, now: float) -> bool:
        if msg.epoch == self.epoch:
            return source_ok and msg.seq > self.seq
        if self.silent(now):
            return True
        return source_ok and msg.epoch > self.epoch

    def new_body(self, msg) -> bool:
        """Whether ``msg`` comes from another body epoch than the last state taken."""
        return msg.epoch != self.epoch

    def took(self, msg, now: float) -> None:
        self.epoch, self.seq, self.last_state_at = msg.epoch, msg.seq, now

    def silent(self, now: float) -> bool:
        """No state taken for ``state_timeout``: the fail-safe's condition."""
        return now - self.last_state_at > self.state_timeout


@dataclass
class Wake:
    """The socket pair a signal writes a byte to (:func:`signal.set_wakeup_fd`)."""

    read: socket.socket
    write: socket.socket

    def close(self) -> None:
        signal.set_wakeup_fd(-1)
        self.read.close()
        self.write.close()


def route_signals(stop: Callable) -> Wake:
    """SIGTERM and SIGINT call ``stop``, and wake the poll at once (main thread only)."""
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    r, w = socket.socketpair()
    r.setblocking(False)
    w.setblocking(False)
    signal.set_wakeup_fd(w.fileno(), warn_on_full_buffer=False)
    return Wake(r, w)


class Inbox:
    """The poll over an agent's links (see the module docstring); built once they are connected."""

    def __init__(self, body, peers, wake: Wake | None = None) -> None:
        self.body, self.peers = body, peers
        self.poller = zmq.Poller()
        self.sources = [(item, True) for item in body.poll_items()]
        if peers is not body:
            self.sources += [(item, False) for item in peers.poll_items()]
        for item, _ in self.sources:
            self.poller.register(item, zmq.POLLIN)
        self.wake = None if wake is None else wake.read
        if self.wake is not None:
            self.poller.register(self.wake, zmq.POLLIN)

    def wait(self, seconds: float) -> dict:
        """Sleep up to ``seconds`` (zmq polls in whole milliseconds: rounded up, or the last
        fraction would spin), or until something arrives; returns what is ready (for
        :meth:`arrivals`)."""
        events = dict(self.poller.poll(math.ceil(max(0.0, seconds) * 1000.0)))
        if self.wake is not None and self.wake in events:
            try:
                self.wake.recv(4096)
            except BlockingIOError:
                pass
        return events

    def arrivals(self, events: dict) -> Iterator[Arrival]:
        """Every message that came on the links ``events`` says are ready, link by link."""
        for item, from_body in list(self.sources):
            if item not in events:
                continue
            link = self.body if from_body else self.peers
            got = link.receive()
            if isinstance(link, UdpLink):  # a body by address: only it is answered
                for frames, addr in zip(got, link.sources, strict=True):
                    yield Arrival(frames, True, source_ok=link.trusts(addr), address=addr)
                continue
            expected = getattr(link, "expected", None) or [None] * len(got)
            for frames, peer in zip(got, expected, strict=True):
                yield Arrival(frames, from_body, peer)

    def watch_memory(self, now: float) -> int:
        """Direct peers' links made again when a peer's endless message grew this process
        (:meth:`PeerLinks.watch_memory`); returns how many."""
        if not isinstance(self.peers, PeerLinks):
            return 0
        old = self.peers.watch_memory(now)
        if not old:
            return 0
        for sock in old:
            self.poller.unregister(sock)
        self.sources[:] = [(item, b) for item, b in self.sources if b or item not in old]
        for item in self.peers.poll_items():
            if all(item is not known for known, _ in self.sources):
                self.poller.register(item, zmq.POLLIN)
                self.sources.append((item, False))
        return len(old)
