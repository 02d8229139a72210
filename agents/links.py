"""The agent's two seams: its body (position in, velocity out) and its peers (beacons in and out).

Each link exposes ``poll_items()`` (ZeroMQ sockets or file descriptors for :class:`zmq.Poller`),
``receive()`` (drain what arrived, as frame lists, non-blocking), ``send(frames)`` (non-blocking;
returns False when the message had to be dropped) and ``close()``.

- :class:`SimLink`: the simulator (or a test harness) as body, a DEALER connected to its ROUTER;
  beacons to and from peers go over it too when the simulator carries the radio.
- :class:`UdpLink`: a hardware body speaking the protocol's JSON headers over UDP datagrams
  (a position source in, velocity commands out); patches are not sent, the agent senses locally.
- :class:`PeerLinks`: peers without a simulator, each agent a PUB bound at its endpoint and a
  SUB connected to each other endpoint of the roster (its memory guarded).
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from pathlib import Path

import zmq

from swarmcover.procmem import MemoryWatch
from swarmcover.protocol import MAX_FRAME_BYTES, MAX_HEADER_BYTES

__all__ = ["MEMORY_BUDGET", "QUIET_WALL", "PeerLinks", "SimLink", "UdpLink", "load_curve_keys"]

log = logging.getLogger("swarmcover.agent.links")

_HWM = 1000
MEMORY_BUDGET = 256 << 20  # bytes an agent may grow before its quiet peer links are made again
QUIET_WALL = 1.0  # seconds without a complete message that make a peer link suspect then


def _configure(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, _HWM)
    sock.setsockopt(zmq.RCVHWM, _HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + MAX_HEADER_BYTES)


def _drain(sock: zmq.Socket, limit: int = 10_000) -> list[list[bytes]]:
    """Every message waiting on ``sock`` (at most ``limit``). Asks the socket whether one is
    waiting rather than receiving until ``zmq.Again``: an exception per call costs more than the
    message it ends the loop after, at one call per control tick."""
    out = []
    while len(out) < limit and sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:  # pragma: no cover - EVENTS said a message was there
            break
    return out


def load_curve_keys(secret_key: str, *public_keys: str) -> tuple[bytes, ...]:
    """``(public, secret, *others_public)`` z85 keys from zcert files (this agent's key pair, then
    public certificates); ``ValueError`` names the file."""
    import zmq.auth

    out = []
    for path, need_secret in ((secret_key, True), *((k, False) for k in public_keys)):
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"CURVE key file not found: {p}")
        try:
            public, secret = zmq.auth.load_certificate(p)
        except (ValueError, OSError) as exc:
            raise ValueError(f"CURVE key file {p}: {exc}") from None
        if not public or (need_secret and not secret):
            raise ValueError(f"CURVE key file {p}: no {'secret-key' if need_secret else 'public-key'}")
        out += [public, secret] if need_secret else [public]
    return tuple(out)


class SimLink:
    """Body (and optionally radio) link to a simulator ROUTER at ``endpoint``; a CURVE client
    when ``curve = (public, secret, server_public)`` is given."""

    def __init__(
        self, ctx: zmq.Context, endpoint: str, curve: tuple[bytes, bytes, bytes] | None = None
    ) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        _configure(self.sock)
        if curve is not None:
            self.sock.curve_publickey, self.sock.curve_secretkey, self.sock.curve_serverkey = curve
        self.sock.setsockopt(zmq.RECONNECT_IVL, 100)
        self.sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        self.sock.connect(endpoint)

    def poll_items(self) -> list:
        return [self.sock]

    def receive(self) -> list[list[bytes]]:
        return _drain(self.sock)

    def send(self, frames: list[bytes]) -> bool:
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        self.sock.close(linger=0)


class UdpLink:
    """A body speaking UDP at ``listen`` (``host:port``; port 0 picks one, see :attr:`address`)."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"udp listen address must be host:port, got {listen!r}")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, int(port)))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self.reply_to: tuple[str, int] | None = None
        self.sources: list[tuple[str, int]] = []

    def poll_items(self) -> list:
        return [self.sock.fileno()]

    def receive(self) -> list[list[bytes]]:
        """Datagrams waiting (at most 10,000); :attr:`sources` names each one's sender. Nothing
        here is trusted yet: replies go to :attr:`reply_to`, set by :meth:`confirm` once the agent
        has accepted a state from that address."""
        out: list[list[bytes]] = []
        self.sources = []
        for _ in range(10_000):
            try:
                data, addr = self.sock.recvfrom(MAX_HEADER_BYTES + 1)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. ICMP port unreachable from a vanished body
                if exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
                    continue
                raise
            self.sources.append(addr)
            out.append([data])
        return out

    def trusts(self, addr: tuple[str, int] | None) -> bool:
        """Whether ``addr`` is the body's confirmed address (any address before the first)."""
        return self.reply_to is None or addr == self.reply_to

    def confirm(self, addr: tuple[str, int] | None) -> None:
        """The agent accepted a state from ``addr``: commands go there from now on."""
        if addr is not None:
            self.reply_to = addr

    def send(self, frames: list[bytes]) -> bool:
        if self.reply_to is None or len(frames) != 1:
            return False
        try:
            self.sock.sendto(frames[0], self.reply_to)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


class PeerLinks:
    """Beacons over PUB/SUB without a simulator: a PUB bound at ``bind`` and one SUB per other
    roster endpoint.

    CURVE (``curve = (public, secret)`` and ``peer_keys = {agent_id: public}``): the PUB is a
    CURVE server that admits only the roster's keys (a ZAP handler in this process), and each
    SUB connects with its peer's key as the server key, so each message is known to come from
    that peer (:attr:`expected` names it, message by message, after :meth:`receive`; plaintext:
    None).

    **Memory** (:meth:`watch_memory`): ZeroMQ keeps every frame of a multipart message until its
    last has come, with no bound on their number, so a peer could grow this process without end
    with a message that never ends. When the process has grown more than ``memory_budget``
    bytes since the link was made, every SUB that has delivered no complete message for
    ``quiet_wall`` seconds (a peer inside such a message has delivered none since it began it)
    is closed, which frees what it held, and made again (an honest peer is heard again within a
    reconnect interval).
    """

    def __init__(
        self,
        ctx: zmq.Context,
        bind: str,
        roster: list[tuple[int | None, str]],
        curve: tuple[bytes, bytes] | None = None,
        peer_keys: dict[int, bytes] | None = None,
        memory_budget: int = MEMORY_BUDGET,
        quiet_wall: float = QUIET_WALL,
    ) -> None:
        self.auth = None
        self.ctx, self.curve, self.peer_keys = ctx, curve, peer_keys or {}
        self.pub = ctx.socket(zmq.PUB)
        _configure(self.pub)
        if curve is not None:
            from zmq.auth.thread import ThreadAuthenticator

            allowed = {k.decode("ascii") for k in self.peer_keys.values()}
            self.auth = ThreadAuthenticator(ctx)
            self.auth.start()
            self.auth.configure_curve_callback("swarmcover", credentials_provider=_AllowList(allowed))
            self.pub.curve_publickey, self.pub.curve_secretkey = curve
            self.pub.curve_server = True
            self.pub.zap_domain = b"swarmcover"
        self.pub.bind(bind)
        own = self.pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.memory, self.quiet_wall = MemoryWatch(memory_budget), float(quiet_wall)
        self.resets = 0  # SUBs closed and made again for memory
        # one SUB per peer endpoint: (socket, its peer's id or None, endpoint, last complete message)
        self.subs: list[list] = []
        for a, ep in roster:
            if ep not in (bind, own):
                self.subs.append([self._sub(a, ep), a, ep, time.monotonic()])
        self.expected: list[int | None] = []

    def _sub(self, peer: int | None, endpoint: str) -> zmq.Socket:
        sub = self.ctx.socket(zmq.SUB)
        _configure(sub)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        if self.curve is not None:
            sub.curve_publickey, sub.curve_secretkey = self.curve
            sub.curve_serverkey = self.peer_keys[peer]
        sub.connect(endpoint)
        return sub

    def poll_items(self) -> list:
        return [entry[0] for entry in self.subs]

    def receive(self) -> list[list[bytes]]:
        out: list[list[bytes]] = []
        self.expected = []
        now = time.monotonic()
        for entry in self.subs:
            got = _drain(entry[0])
            if got:
                entry[3] = now
            out += got
            self.expected += [entry[1]] * len(got)
        return out

    def watch_memory(self, now: float) -> list[zmq.Socket]:
        """Look at this process's memory (at most every 0.1 s); past the budget, close and make
        again the SUBs quiet for ``quiet_wall``. Returns the sockets replaced (the caller's poller
        must drop them and take :meth:`poll_items` again); empty when nothing was done."""
        grown = self.memory.over(now)
        if grown is None:
            return []
        old = []
        for entry in self.subs:
            if now - entry[3] >= self.quiet_wall:
                old.append(entry[0])
                entry[0].close(linger=0)
                entry[0], entry[3] = self._sub(entry[1], entry[2]), now
        if old:
            self.resets += len(old)
            self.memory.freed()
            log.warning("memory grew %.0f MB: %d quiet peer links made again", grown / 2**20, len(old))
        return old

    def send(self, frames: list[bytes]) -> bool:
        try:
            self.pub.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        self.pub.close(linger=0)
        for entry in self.subs:
            entry[0].close(linger=0)
        if self.auth is not None:
            self.auth.stop()


class _AllowList:
    """ZAP credentials provider: admits exactly these z85 public keys."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys

    def callback(self, domain: str, key: bytes) -> bool:
        return key.decode("ascii", "replace") in self.keys
