"""The simulator's link to its agents: one ZeroMQ ROUTER socket, CurveZMQ with a ZAP allow-list,
and the bounds that keep what any connection sends from costing more than a message's worth.

The socket is set up and authenticated before it binds (no connection is ever served
unauthenticated); frames are bounded by ``MAXMSGSIZE`` (agents send headers only), handshakes
by ``HANDSHAKE_IVL``, connections in total, per key and when silent by
:class:`~swarmcover.simulator.connections.ConnectionGuard`. :meth:`AgentLink.receive` takes at most
``DRAIN_MAX`` messages at a time, each stamped with its own arrival and the key that
authenticated it; a message of more than one frame costs its connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import zmq

from swarmcover.protocol import MAX_HEADER_BYTES

from .budgets import DRAIN_MAX, HANDSHAKE_WALL, SPARE_DESCRIPTORS
from .config import SimConfig
from .connections import ConnectionGuard
from .security import CurveGuard, load_allow_list

__all__ = ["AgentLink"]

log = logging.getLogger("swarmcover.sim")


class AgentLink:
    """The bound ROUTER socket with its guards; ``nofile`` is the process's descriptor limit."""

    def __init__(self, cfg: SimConfig, nofile: int, ctx: zmq.Context | None = None) -> None:
        self._own_ctx = ctx is None
        self.ctx = zmq.Context() if ctx is None else ctx
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.sock.setsockopt(zmq.SNDHWM, 10_000)
        self.sock.setsockopt(zmq.RCVHWM, 10_000)
        # agents send headers only (buffers go the other way, with states): a bigger frame ends
        # its connection in ZeroMQ, one of more frames in receive(), an endless one in self.conns
        self.sock.setsockopt(zmq.MAXMSGSIZE, MAX_HEADER_BYTES)
        # a connection that never finishes its handshake is closed after HANDSHAKE_WALL (idle
        # TCP connections must not keep descriptors for ever)
        self.sock.setsockopt(zmq.HANDSHAKE_IVL, int(HANDSHAKE_WALL * 1000))
        # connections bounded in total (below the descriptor limit), per key, and silent ones
        self.conns = ConnectionGuard(self.sock, nofile - SPARE_DESCRIPTORS // 2 if nofile > 0 else 100_000)
        self.guard: CurveGuard | None = None
        if cfg.curve is not None:  # the authenticator runs before the socket binds
            self.guard = CurveGuard(
                self.ctx, self.sock, cfg.curve.secret_key, load_allow_list(cfg.curve.clients), self.conns
            )
            missing = sorted(set(cfg.roster) - set(self.guard.keys))
            if missing:
                log.warning("no CURVE key for agents %s: they cannot join", missing[:20])
        else:
            log.warning(
                "simulator is INSECURE (plaintext): anyone who reaches %s can drive the robots", cfg.endpoint
            )
        self.sock.bind(cfg.endpoint)
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        #: messages of more than one frame (nothing an agent sends has more than its header)
        self.multipart = 0

    @property
    def closed(self) -> bool:
        return self.sock.closed

    def agent_for(self, user: str | None) -> int | None:
        """The roster id whose CURVE key authenticated a message (``None`` when insecure)."""
        return None if self.guard is None else self.guard.agent_for(user)

    def send(self, route: bytes, frames: list[bytes]) -> bool:
        """Queue ``frames`` to ``route`` without waiting; ``False`` when it cannot be queued."""
        try:
            self.sock.send_multipart([route, *frames], zmq.NOBLOCK)
        except zmq.ZMQError:
            return False
        return True

    def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for a message (ZeroMQ polls in whole milliseconds, rounded down)."""
        if seconds >= 1e-3:
            self.sock.poll(int(seconds * 1000.0))

    def receive(self) -> Iterator[tuple[bytes, list[bytes], float, str | None]]:
        """Waiting messages, at most ``DRAIN_MAX`` taken: ``(route, frames, arrival, user)`` each,
        with its own monotonic arrival time and (with CURVE) the authenticated key. One of more
        than one frame is not yielded: it costs its connection and counts in :attr:`multipart`."""
        conns, curve = self.conns, self.guard is not None
        for _ in range(DRAIN_MAX):
            try:  # the descriptor and the authenticated key come with the frames (ZeroMQ metadata)
                parts = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            user = parts[-1].get("User-Id") if curve and len(parts) > 1 else None
            fd, wall = parts[-1].get(zmq.SRCFD), time.monotonic()
            conns.seen(fd, user, wall)
            if len(parts) > 2:  # the route and one header: nothing an agent sends has more
                self.multipart += 1
                conns.drop(fd, f"a message of {len(parts) - 1} frames")
                continue
            route, *frames = [p.bytes for p in parts]
            yield route, frames, wall, user

    def close(self) -> None:
        if self.sock.closed:
            return
        if self.guard is not None:
            self.guard.close()
        self.conns.close()
        self.sock.close(linger=0)
        if self._own_ctx:
            self.ctx.term()
