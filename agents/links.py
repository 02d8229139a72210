"""The agent's two seams: its body (position in, velocity out) and its peers (beacons in and out).

Each link exposes ``poll_items()`` (ZeroMQ sockets or file descriptors for :class:`zmq.Poller`),
``receive()`` (drain what arrived, as frame lists, non-blocking), ``send(frames)`` (non-blocking;
returns False when the message had to be dropped) and ``close()``.

- :class:`SimLink`: the simulator (or a test harness) as body, a DEALER connected to its ROUTER;
  beacons to and from peers go over it too when the simulator carries the radio.
- :class:`UdpBody`: a hardware body speaking the protocol's JSON headers over UDP datagrams
  (a position source in, velocity commands out); patches are not sent, the agent senses locally.
- :class:`DirectPeers`: peers without a simulator, each agent a PUB bound at its endpoint and a
  SUB connected to every endpoint of the roster.
"""

from __future__ import annotations

import errno
import socket
from pathlib import Path

import zmq

from swarmcover.protocol import MAX_FRAME_BYTES, MAX_HEADER_BYTES

__all__ = ["DirectPeers", "SimLink", "UdpBody", "load_curve_keys"]

_HWM = 1000


def _configure(sock: zmq.Socket) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, _HWM)
    sock.setsockopt(zmq.RCVHWM, _HWM)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES + MAX_HEADER_BYTES)


def _drain(sock: zmq.Socket, limit: int = 10_000) -> list[list[bytes]]:
    out = []
    for _ in range(limit):
        try:
            out.append(sock.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
    return out


def load_curve_keys(secret_key: str, server_key: str) -> tuple[bytes, bytes, bytes]:
    """``(public, secret, server_public)`` z85 keys from zcert files; ``ValueError`` names the file."""
    import zmq.auth

    out = []
    for path, need_secret in ((secret_key, True), (server_key, False)):
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
    return out[0], out[1], out[2]


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


class UdpBody:
    """A body speaking UDP at ``listen`` (``host:port``; port 0 picks one, see :attr:`address`)."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"udp listen address must be host:port, got {listen!r}")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, int(port)))
        self.sock.setblocking(False)
        self.address = self.sock.getsockname()
        self._reply_to: tuple[str, int] | None = None

    def poll_items(self) -> list:
        return [self.sock.fileno()]

    def receive(self) -> list[list[bytes]]:
        out = []
        for _ in range(10_000):
            try:
                data, addr = self.sock.recvfrom(MAX_HEADER_BYTES + 1)
            except BlockingIOError:
                break
            except OSError as exc:  # e.g. ICMP port unreachable from a vanished body
                if exc.errno in (errno.ECONNREFUSED, errno.ECONNRESET):
                    continue
                raise
            self._reply_to = addr
            out.append([data])
        return out

    def send(self, frames: list[bytes]) -> bool:
        if self._reply_to is None or len(frames) != 1:
            return False
        try:
            self.sock.sendto(frames[0], self._reply_to)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.sock.close()


class DirectPeers:
    """Beacons over PUB/SUB without a simulator."""

    def __init__(self, ctx: zmq.Context, bind: str, roster: list[str]) -> None:
        self.pub = ctx.socket(zmq.PUB)
        _configure(self.pub)
        self.pub.bind(bind)
        self.sub = ctx.socket(zmq.SUB)
        _configure(self.sub)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        own = self.pub.getsockopt(zmq.LAST_ENDPOINT).decode()
        for ep in roster:
            if ep not in (bind, own):
                self.sub.connect(ep)

    def poll_items(self) -> list:
        return [self.sub]

    def receive(self) -> list[list[bytes]]:
        return _drain(self.sub)

    def send(self, frames: list[bytes]) -> bool:
        try:
            self.pub.send_multipart(frames, zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def close(self) -> None:
        self.pub.close(linger=0)
        self.sub.close(linger=0)
