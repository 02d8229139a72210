"""The suite's side of the wire: a body (a ROUTER on loopback) that one agent process under test
connects to, and the reference the agent's commands are checked against.

Everything the agent sends is decoded strictly by :func:`swarmcover.protocol.decode`; a message
that does not decode is kept in :attr:`Body.malformed` (the agent broke the wire format).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import zmq

from swarmcover.law import BlobLaw
from swarmcover.protocol import Hello, Message, Neighbors, Patch, ProtocolError, State, decode, encode

__all__ = ["Body", "Sent", "Timeout"]


class Timeout(AssertionError):
    """What a check waited for did not come in time."""


@dataclass
class Sent:
    """A state the suite sent: what the agent saw (position, neighbours' rows, the field it had)."""

    state: State
    rows: np.ndarray | None = None
    field: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (coef, origin, spacing)


@dataclass
class Body:
    """A ZeroMQ ROUTER bound on ``tcp://127.0.0.1:*`` (plaintext), serving one agent id.

    ``law`` supplies the field: every patch is cut from its spline grid (``law.field.patch``), as
    the simulator cuts them.
    """

    law: BlobLaw
    agent_id: int
    ctx: zmq.Context = field(default_factory=zmq.Context)
    sock: zmq.Socket = field(init=False)
    endpoint: str = field(init=False)
    route: bytes | None = None
    epoch: int = field(default_factory=time.time_ns)
    seq: int = 0
    inbox: deque = field(default_factory=deque)
    malformed: list[str] = field(default_factory=list)
    received: int = 0
    #: says why waiting is pointless (the agent's process exited), or None
    gone: Callable[[], str | None] = lambda: None

    def __post_init__(self) -> None:
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()

    # ------------------------------------------------------------------ receiving
    def _pump(self, timeout: float) -> None:
        if not self.sock.poll(max(timeout, 0.0) * 1000):
            return
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.received += 1
            route, body = frames[0], frames[1:]
            try:
                msg = decode(body).message
            except ProtocolError as exc:
                self.malformed.append(str(exc))
                continue
            if isinstance(msg, Hello) and msg.agent_id == self.agent_id:
                self.route = route
            if route == self.route:
                self.inbox.append(msg)

    def expect(self, match, timeout: float, what: str) -> tuple[Message, list[Message]]:
        """The first message ``match(msg)`` accepts, and every message that came before it; waits
        (polling the socket) up to ``timeout`` s, else :class:`Timeout` naming ``what``."""
        skipped: list[Message] = []
        deadline = time.monotonic() + timeout
        while True:
            while self.inbox:
                msg = self.inbox.popleft()
                if match(msg):
                    return msg, skipped
                skipped.append(msg)
            left = deadline - time.monotonic()
            why = self.gone()
            if why is not None:
                raise Timeout(f"{what}: {why}")
            if left <= 0:
                kinds = ", ".join(f"{m.kind}" for m in skipped[-8:]) or "nothing"
                raise Timeout(f"{what}: not received within {timeout:g} s (last received: {kinds})")
            self._pump(min(left, 0.05))

    def drain(self) -> list[Message]:
        """Everything received so far (without waiting)."""
        self._pump(0.0)
        out = list(self.inbox)
        self.inbox.clear()
        return out

    # ------------------------------------------------------------------ sending
    def envelope(self, **over) -> dict:
        self.seq += 1
        env = {"agent_id": self.agent_id, "epoch": self.epoch, "seq": self.seq, "t": time.time()}
        env.update(over)
        return env

    def send(self, frames: list[bytes]) -> None:
        if self.route is None:
            raise Timeout("no hello received: the body knows no connection to send to")
        self.sock.send_multipart([self.route, *frames])

    def state(self, x, tick: int, world_time: float, *, dt: float | None = 0.1, patch: bool = True,
              rows: np.ndarray | None = None, reply: str = "command", **env) -> Sent:  # fmt: skip
        """Send a state at ``x`` with a patch covering the law's disc around it (half as wide again,
        as the simulator sends them) or none, and ``rows`` of relayed beacons ``(k, d + 3)``."""
        x = np.asarray(x, dtype=np.float64)
        coef, header, fld = None, None, None
        if patch:
            origin, coef = self.law.field.patch(x, 0.75 * self.law.radius)
            spacing = self.law.field.spacing
            header = Patch(eps=self.law.eps, origin=origin.tolist(), spacing=spacing.tolist(),
                           shape=list(coef.shape[:-1]))  # fmt: skip
            fld = (coef, origin, spacing)
        nb = None
        if rows is not None and len(rows):
            nb = Neighbors(count=len(rows), buffer=0 if coef is None else 1)
        st = State(**self.envelope(**env), position=x.tolist(), world_time=world_time, dt=dt, tick=tick,
                   patch=header, neighbors=nb, reply=reply)  # fmt: skip
        self.send(encode(st, coef, None if nb is None else np.asarray(rows, dtype=np.float64)))
        return Sent(st, None if nb is None else np.asarray(rows, dtype=np.float64), fld)
