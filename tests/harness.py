"""A test harness standing in for the simulator: a real ROUTER socket, real agent OS processes.

It relays every beacon (a beacon message, or one riding on a command) to every other agent (a radio
with no loss): one message per beacon, or with ``batch = True`` in the receiver's next state, as the
simulator does; it sends states with field patches cut from a real ``BlobLaw``'s field, and collects
commands. Every wait polls the socket; nothing
sleeps for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import zmq

from swarmcover.law import BlobLaw
from swarmcover.protocol import (
    Beacon,
    Bye,
    Command,
    Hello,
    Neighbors,
    Patch,
    State,
    Stats,
    StatsRequest,
    decode,
    encode,
)


def agent_config(agent_id: int, endpoint: str, law: BlobLaw, **over) -> dict:
    cfg = {
        "agent_id": agent_id,
        "bounds": law.target.box.bounds.tolist(),
        "eps": law.eps,
        "mass": float(law.mass),
        "speed_limit": 1e6,
        "gain": 1.0,
        "rate_hz": 1000.0,
        "beacon_ttl": 0.5,
        "forget_after": 1.0,
        "state_timeout": 2.0,
        "body": {"kind": "sim", "endpoint": endpoint},
        "insecure": True,  # the stand-in is a plaintext ROUTER
    }
    cfg.update(over)
    return cfg


def start_agent(cfg: dict, log_level: str = "WARNING") -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "swarmcover.cli.main",
        "agent",
        "--json",
        json.dumps(cfg),
        "--log-level",
        log_level,
    ]
    # output to an unlinked temporary file, never a pipe nobody reads (a full pipe blocks the agent)
    out = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    proc.output_file = out  # type: ignore[attr-defined]
    return proc


def agent_output(proc: subprocess.Popen, limit: int = 4000) -> str:
    """The exit status and the last ``limit`` characters of what an agent started by
    :func:`start_agent` wrote, for an assertion message."""
    f = getattr(proc, "output_file", None)
    text = ""
    if f is not None and not f.closed:
        f.flush()
        f.seek(0)
        text = f.read().decode(errors="replace")[-limit:]
    return f"exit status {proc.poll()}; output: {text!r}"


def udp_body_tick(body, ports: list[int], x: np.ndarray, tick: int, dt: float, epoch: int, seq: int,
                  timeout: float) -> tuple[np.ndarray, set[int], int]:  # fmt: skip
    """One tick of UDP bodies run by a test: a state to agent ``i`` at ``127.0.0.1:ports[i]`` for
    each row of ``x (n, d)``, then this tick's commands from ``body`` (a UDP socket with a
    timeout) until every agent answered or ``timeout`` s passed. Returns the velocities ``(n, d)``
    (zero where none came), who answered, and the last sequence number used."""
    for i in range(len(x)):
        seq += 1
        st = State(agent_id=i, epoch=epoch, seq=seq, t=time.time(), position=x[i].tolist(),
                   world_time=tick * dt, tick=tick)  # fmt: skip
        body.sendto(encode(st)[0], ("127.0.0.1", ports[i]))
    v, answered = np.zeros_like(x), set()
    deadline = time.monotonic() + timeout
    while len(answered) < len(x) and time.monotonic() < deadline:
        try:
            data, _ = body.recvfrom(65536)
        except TimeoutError:
            continue
        cmd = decode([data]).message
        if isinstance(cmd, Command) and cmd.tick == tick:
            v[cmd.agent_id] = cmd.velocity
            answered.add(cmd.agent_id)
    return v, answered, seq


def udp_body_start(body, ports: list[int], x: np.ndarray, dt: float, epoch: int, seq: int, procs,
                   timeout: float = 90.0) -> tuple[np.ndarray, int]:  # fmt: skip
    """Tick 1 of :func:`udp_body_tick`, sent again (new sequence numbers) until every agent has
    answered it once, across the resends (an agent answers a tick once: an agent that answered
    the first send is silent on the next); fails at once, naming the agents that never answered
    and their exit status and output, when one exits or ``timeout`` s pass. Returns the
    velocities (the latest answer of each) and the last sequence number used."""
    got, v = set(), np.zeros_like(x)
    deadline = time.monotonic() + timeout
    while got != set(range(len(x))) and time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            break
        vi, answered, seq = udp_body_tick(body, ports, x, 1, dt, epoch, seq, 1.0)
        for a in answered:
            v[a] = vi[a]
        got |= answered
    missing = sorted(set(range(len(x))) - got)
    if missing:
        raise AssertionError({a: agent_output(procs[a]) for a in missing})
    return v, seq


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    """Call ``predicate`` (which does the work it waits for, e.g. advances a simulator) until it
    is true; ``TimeoutError`` after ``timeout`` wall seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:g} s")


def stop_all(procs) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        for stream in (p.stdout, p.stderr, getattr(p, "output_file", None)):
            if stream is not None:
                stream.close()


class Harness:
    def __init__(self, law: BlobLaw) -> None:
        self.law = law
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.routes: dict[int, bytes] = {}
        self.epochs: dict[int, int] = {}
        self.commands: dict[int, Command] = {}
        self.stats: dict[int, Stats] = {}
        self.byes: dict[int, Bye] = {}
        self.captured_beacons: list[list[bytes]] = []
        self.beacons_from: dict[int, int] = {}
        self.relay = True
        self.batch = False
        self.pending: dict[int, dict[int, list[float]]] = {}  # receiver -> sender -> row (batch)
        self.epoch = time.time_ns()
        self.seq = 0
        self.tick = 0

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()

    def _env(self, agent_id: int) -> dict:
        self.seq += 1
        return {"agent_id": agent_id, "epoch": self.epoch, "seq": self.seq, "t": time.time()}

    def pump(self, timeout: float) -> None:
        """Take what arrives within ``timeout`` seconds, relaying beacons."""
        if not self.sock.poll(timeout * 1000):
            return
        while True:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            route, body = frames[0], frames[1:]
            msg = decode(body).message
            if isinstance(msg, Hello):
                if msg.epoch >= self.epochs.get(msg.agent_id, -1):
                    self.routes[msg.agent_id], self.epochs[msg.agent_id] = route, msg.epoch
            elif self.routes.get(msg.agent_id) != route:
                continue  # not from the process that owns this id now
            if isinstance(msg, Command):
                self.commands[msg.agent_id] = msg
                if msg.beacon is not None:  # the beacon riding on it, as its own message
                    env = {k: getattr(msg, k) for k in ("agent_id", "epoch", "seq", "t")}
                    self._beacon(Beacon(**env, position=msg.beacon.position, mass=msg.beacon.mass))
            elif isinstance(msg, Stats):
                self.stats[msg.agent_id] = msg
            elif isinstance(msg, Bye):
                self.byes[msg.agent_id] = msg
            elif isinstance(msg, Beacon):
                self._beacon(msg)

    def _beacon(self, msg: Beacon) -> None:
        body = encode(msg)
        self.captured_beacons.append(body)
        self.beacons_from[msg.agent_id] = self.beacons_from.get(msg.agent_id, 0) + 1
        if not self.relay:
            return
        for aid, r in self.routes.items():
            if aid == msg.agent_id:
                continue
            if self.batch:
                row = [float(msg.agent_id), msg.t, *msg.position, msg.mass]
                self.pending.setdefault(aid, {})[msg.agent_id] = row
            else:
                self.sock.send_multipart([r, *body])

    def wait_for(self, predicate, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("harness: condition not met in time")
            self.pump(min(left, 0.05))

    def send_raw(self, agent_id: int, frames: list[bytes]) -> None:
        self.sock.send_multipart([self.routes[agent_id], *frames])

    def send_state(self, agent_id: int, x: np.ndarray, patch: bool = True, margin: float = 0.0) -> None:
        """A state for ``x``: with a patch ``margin`` (a fraction) wider than the law needs, or none."""
        field = self.law.field
        coef = None
        if patch:
            origin, coef = field.patch(x, 0.5 * self.law.radius * (1.0 + margin))
            patch = Patch(eps=self.law.eps, origin=origin.tolist(), spacing=field.spacing.tolist(),
                          shape=list(coef.shape[:-1]))  # fmt: skip
        else:
            patch = None
        rows = list(self.pending.pop(agent_id, {}).values())
        nb = Neighbors(count=len(rows), buffer=0 if patch is None else 1) if rows else None
        st = State(**self._env(agent_id), position=x.tolist(), world_time=0.0, tick=self.tick, patch=patch,
                   neighbors=nb)  # fmt: skip
        self.send_raw(agent_id, encode(st, coef, np.array(rows) if rows else None))

    def step(self, x: np.ndarray, ids, patch: bool = True, margin: float = 0.0) -> dict[int, np.ndarray]:
        """One lockstep tick: a state to every agent; wait for every command of this tick and every
        agent's beacon after it (already relayed when counted, so on each agent's connection it
        precedes the next tick's state: the next tick sees every neighbour's position of this one)."""
        self.tick += 1
        beacons = {aid: self.beacons_from.get(aid, 0) for aid in ids}
        for aid in ids:
            self.send_state(aid, x[aid], patch, margin)
        self.wait_for(
            lambda: all(
                aid in self.commands
                and self.commands[aid].tick == self.tick
                and self.beacons_from.get(aid, 0) > beacons[aid]
                for aid in ids
            )
        )
        return {aid: np.array(self.commands[aid].velocity) for aid in ids}

    def request_stats(self, ids) -> dict[int, Stats]:
        for aid in ids:
            self.stats.pop(aid, None)
            self.send_raw(aid, encode(StatsRequest(**self._env(aid))))
        self.wait_for(lambda: all(aid in self.stats for aid in ids))
        return {aid: self.stats[aid] for aid in ids}


def terminate_and_wait(p: subprocess.Popen, sig=signal.SIGTERM, timeout: float = 30.0) -> float:
    """Send ``sig``, wait for the process to exit and return how long it took.

    ``timeout`` guards against a hang; how fast processes stop is measured by
    ``benchmarks/stop.py``, not asserted (a wall-clock bound in a test is a flaky test).
    """
    t = time.monotonic()
    p.send_signal(sig)
    p.wait(timeout=timeout)
    return time.monotonic() - t
