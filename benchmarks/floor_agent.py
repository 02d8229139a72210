"""The least an agent program can do: answer every state with a zero velocity, and nothing else.

For measuring the floor of a fleet's cost: the simulator, the wire protocol (``docs/protocol.md``),
CurveZMQ and one operating-system process per robot, before any law is computed.
``benchmarks/fleet.py --agent-command 'python benchmarks/floor_agent.py {config}'`` runs a fleet
of these in place of ours. The robots do not move.

It is also the smallest example of an agent written against the protocol alone: it imports only
the standard library and pyzmq (not ``swarmcover``), reads the agent config the launcher writes
(JSON: ``agent_id``, ``mass``, ``eps`` or the first of ``schedule.stages`` (its ``eps`` and
``smoothing``, asked for in the hello and every command), ``rate_hz``,
``body.endpoint``, ``curve``), says hello, answers a ``state`` asking for a command with a
``command`` carrying its beacon and one asking for a beacon with a ``beacon``, a
``stats_request`` with ``stats``, says ``hello`` again when a second passes without a state (so
a robot declared failed while its process was stalled rejoins), and on SIGTERM or SIGINT says
``bye`` with its counters. Malformed messages are counted as rejected and skipped; it does not
validate what it does not use.

    python benchmarks/floor_agent.py AGENT_CONFIG.json
"""

from __future__ import annotations

import json
import signal
import sys
import time

import zmq
import zmq.auth

__all__ = ["FloorAgent", "main"]

HELLO_AGAIN = 1.0  # seconds without a state after which the agent says hello again


class FloorAgent:
    """One robot's zero-work agent over a DEALER to the simulator's ROUTER."""

    def __init__(self, cfg: dict, ctx: zmq.Context) -> None:
        self.id = int(cfg["agent_id"])
        # the pair it asks patches for, in its hello and every command (so that one patch, the
        # first, does): one eps for ever, or the first stage of its schedule (it never moves)
        first = {"eps": cfg["eps"]} if cfg.get("eps") else cfg["schedule"]["stages"][0]
        self.mass, self.eps = float(cfg["mass"]), float(first["eps"])
        self.smoothing = None if first.get("smoothing") is None else float(first["smoothing"])
        self.rate_hz = float(cfg.get("rate_hz", 10.0))
        self.epoch, self.seq = time.time_ns(), 0
        self.counts = dict.fromkeys(
            ("messages_in", "messages_out", "stale", "rejected", "commands", "failsafe", "dropped"), 0
        )
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.linger = 0
        curve = cfg.get("curve")
        if curve:
            public, secret = zmq.auth.load_certificate(curve["secret_key"])
            server, _ = zmq.auth.load_certificate(curve["server_key"])
            self.sock.curve_publickey, self.sock.curve_secretkey, self.sock.curve_serverkey = (
                public,
                secret,
                server,
            )
        self.sock.connect(cfg["body"]["endpoint"])
        self.running = True
        self.last_state = self.last_hello = -float("inf")

    def send(self, body: dict) -> None:
        self.seq += 1
        body.update(v=1, agent_id=self.id, epoch=self.epoch, seq=self.seq, t=time.time())
        try:
            self.sock.send(json.dumps(body).encode(), zmq.NOBLOCK)
            self.counts["messages_out"] += 1
        except zmq.Again:
            self.counts["dropped"] += 1

    def take(self, frames: list[bytes]) -> None:
        self.counts["messages_in"] += 1
        try:
            h = json.loads(frames[0])
            kind = h["kind"]
        except (ValueError, KeyError, TypeError):
            self.counts["rejected"] += 1
            return
        if kind == "state":
            self.last_state = time.monotonic()
        if kind == "state" and h.get("reply", "command") == "command":
            self.counts["commands"] += 1
            zero = [0.0] * len(h["position"])
            beacon = {"position": h["position"], "mass": self.mass}
            self.send(
                {"kind": "command", "velocity": zero, "tick": h["tick"], "beacon": beacon, **self.pair()}
            )
        elif kind == "state":
            self.send({"kind": "beacon", "position": h["position"], "mass": self.mass})
        elif kind == "stats_request":
            self.send({"kind": "stats", "counters": dict(self.counts), "neighbors": 0})
        else:
            self.counts["rejected"] += 1

    def pair(self) -> dict:
        """The (eps, smoothing) it wants its patches sensed for."""
        return {"eps": self.eps} if self.smoothing is None else {"eps": self.eps, "smoothing": self.smoothing}

    def hello(self) -> None:
        self.send({"kind": "hello", "name": "floor", "rate_hz": self.rate_hz, **self.pair()})
        self.last_hello = time.monotonic()

    def run(self) -> None:
        self.hello()
        while self.running:
            # left without states for a second (declared failed while stalled, or not yet
            # started): hello again, at most once a second, as docs/protocol.md's fail-safe says
            if time.monotonic() - max(self.last_state, self.last_hello) >= HELLO_AGAIN:
                self.hello()
            if not self.sock.poll(200):  # wakes 5 times a second to see a signal's flag
                continue
            while self.sock.get(zmq.EVENTS) & zmq.POLLIN:
                self.take(self.sock.recv_multipart())
        self.send({"kind": "bye", "reason": "stopped", "counters": dict(self.counts)})

    def stop(self, *_args) -> None:
        self.running = False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: floor_agent.py AGENT_CONFIG.json", file=sys.stderr)
        return 2
    try:
        with open(argv[0], encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        print(f"floor_agent: cannot read config {argv[0]}: {exc}", file=sys.stderr)
        return 2
    ctx = zmq.Context()
    agent = FloorAgent(cfg, ctx)
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    try:
        agent.run()
    finally:
        agent.sock.close()
        ctx.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
