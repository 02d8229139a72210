#!/usr/bin/env python3
"""A swarmcover agent written from ``docs/protocol.md`` alone: Python, pyzmq and numpy, nothing of
swarmcover's. It is the proof that the page is enough to interoperate, and the second
implementation the conformance suite runs against:

    swarmcover conformance agent -- python examples/protocol_agent.py --config {config}

It keeps to the page's minimal agent: one mollifier ε (no schedule), a ``sim`` body in plaintext
or CURVE, the law with reflecting walls, the separation barrier, planned paths, the fail-safe,
stats and the goodbye. No wind estimate, no direct peers, no UDP body. It runs launched fleets too
(``agents.command``), in lockstep or real time, answering the newest state it took; its law is numpy
written for reading (``protocol_law.py``), whole arrays at a time.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import signal
import time

import numpy as np
import zmq
from protocol_law import covers, law, sat, separation  # beside this file

MAX_HEADER, MAX_FRAME = 16384, 1 << 20
U31, U63 = 1 << 31, 1 << 63


class Reject(Exception):
    """A message that breaks a rule of the page: counted, dropped."""


# ---------------------------------------------------------------------------- strict fields
def _int(v, lo: int, hi: int) -> int:
    if type(v) is not int or not lo <= v < hi:
        raise Reject(f"integer out of [{lo}, {hi}): {v!r}")
    return v


def _num(v, lo: float, hi: float, open_lo: bool = False) -> float:
    if type(v) not in (int, float) or not math.isfinite(v) or v > hi or v < lo or (open_lo and v == lo):
        raise Reject(f"number out of range: {v!r}")
    return float(v)


def _vec(v, d: int) -> list[float]:
    if type(v) is not list or len(v) != d:
        raise Reject(f"not a vector of {d}: {v!r}")
    return [_num(a, -1e12, 1e12) for a in v]


def _fields(h: dict, required: set, optional: set) -> None:
    keys = set(h)
    if not required <= keys or not keys <= required | optional:
        raise Reject(f"fields {sorted(keys)}")


ENVELOPE = {"v", "kind", "agent_id", "epoch", "seq", "t"}


def _envelope(h: dict) -> None:
    if h.get("v") != 1 or type(h.get("v")) is not int:
        raise Reject("version")
    _int(h["agent_id"], 0, U31), _int(h["epoch"], 0, U63), _int(h["seq"], 0, U63), _num(h["t"], 0, 1e11)


def use_curve(sock: zmq.Socket, curve: dict) -> None:
    """Make ``sock`` a CURVE client with the key files of the config's ``curve`` (see Key files)."""

    def key(path: str, name: str) -> bytes:
        for line in open(path, encoding="utf-8"):
            k, _, v = line.strip().partition("=")
            if k.strip() == name:
                return v.strip().strip('"').encode()
        raise SystemExit(f"{path}: no {name}")

    sock.curve_publickey = key(curve["secret_key"], "public-key")
    sock.curve_secretkey = key(curve["secret_key"], "secret-key")
    sock.curve_serverkey = key(curve["server_key"], "public-key")


def parse_patch(p: dict, buf: bytes, d: int, eps: float) -> tuple:
    """A state's patch: ``(coef (*shape, d + 1), origin, spacing)``, every rule checked."""
    _fields(p, {"eps", "origin", "spacing", "shape", "buffer", "dtype"}, {"smoothing"})
    if p["dtype"] != "<f8" or not math.isclose(_num(p["eps"], 0, 1e12, True), eps, rel_tol=1e-9):
        raise Reject("patch eps/dtype")
    if "smoothing" in p and p["smoothing"] is not None:
        _num(p["smoothing"], 0, 1e12)
    origin, spacing = np.array(_vec(p["origin"], d)), np.array(_vec(p["spacing"], d))
    shape = [_int(s, 4, 257) for s in p["shape"]] if type(p["shape"]) is list else None
    if np.any(spacing <= 0) or shape is None or len(shape) != d:
        raise Reject("patch geometry")
    coef = np.frombuffer(buf, dtype="<f8")
    if coef.size * 8 != len(buf) or coef.size != math.prod(shape) * (d + 1) or not np.all(np.isfinite(coef)):
        raise Reject("patch buffer")
    return coef.reshape(*shape, d + 1), origin, spacing


def parse_rows(nb: dict, buf: bytes, d: int) -> np.ndarray:
    """A state's relayed neighbour rows ``(count, d + 3 [+ 2])``, every value checked."""
    _fields(nb, {"count", "buffer", "dtype"}, {"phase"})
    count, phase = _int(nb["count"], 0, 8193), nb.get("phase", False)
    if nb["dtype"] != "<f8" or type(phase) is not bool:
        raise Reject("rows header")
    cols = d + 3 + (2 if phase else 0)
    rows = np.frombuffer(buf, dtype="<f8")
    if rows.size * 8 != len(buf) or rows.size != count * cols or not np.all(np.isfinite(rows)):
        raise Reject("rows buffer")
    rows = rows.reshape(count, cols)
    ids, t, pos, mass = rows[:, 0], rows[:, 1], rows[:, 2 : 2 + d], rows[:, 2 + d]
    ok = (ids == np.floor(ids)) & (ids >= 0) & (ids < U31) & (t >= 0) & (t <= 1e11)
    ok &= np.all(np.abs(pos) <= 1e12, axis=1) & (mass > 0) & (mass <= 1)
    if phase:
        ep, age = rows[:, -2], rows[:, -1]
        ok &= ((ep == -1) | ((ep == np.floor(ep)) & (ep >= 0) & (ep < U31))) & (age >= 0) & (age <= 1e11)
    if not np.all(ok):
        raise Reject("rows values")
    return rows


def parse_path(h: dict, frames: list[bytes], bounds: np.ndarray) -> tuple[int, list[float], np.ndarray]:
    """A path message's ``(plan, times, points (k, d))``, every rule checked."""
    d = len(bounds)
    _fields(h, ENVELOPE | {"plan", "times", "points"}, set())
    if frames or type(h["times"]) is not list or type(h["points"]) is not list:
        raise Reject("path")
    plan = _int(h["plan"], 0, U31)
    times = [_num(t, 0, 1e11) for t in h["times"]]
    points = [_vec(p, d) for p in h["points"]]
    if len(times) != len(points) or len(times) > 256 or len(times) == 1:
        raise Reject("path nodes")
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise Reject("path times")
    pts = np.array(points).reshape(-1, d)
    if np.any(pts < bounds[:, 0]) or np.any(pts > bounds[:, 1]):
        raise Reject("path leaves the domain")
    return plan, times, pts


class Peers:
    """What the agent heard of its peers: ``id -> [position, mass, heard (monotonic), t]``, a
    beacon live for ``ttl`` seconds, forgotten after ``forget``; an older ``t`` than the one held
    is refused (counted in ``counters["rejected"]``)."""

    def __init__(self, own: int, d: int, ttl: float, forget: float, counters: dict) -> None:
        self.own, self.d, self.ttl, self.forget, self.counters = own, d, ttl, forget, counters
        self.table: dict[int, list] = {}

    def take(self, rows: np.ndarray) -> None:
        now = time.monotonic()
        for row in rows:
            pid, t = int(row[0]), float(row[1])
            if pid == self.own:
                continue
            old = self.table.get(pid)
            if old is not None and t < old[3]:
                self.counters["rejected"] += 1
                continue
            self.table[pid] = [row[2 : 2 + self.d].copy(), float(row[2 + self.d]), now, t]

    def live(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The live peers' ids, positions ``(k, d)`` and masses ``(k,)``."""
        now = time.monotonic()
        for pid in [p for p, e in self.table.items() if now - e[2] > self.forget]:
            del self.table[pid]
        ids = [p for p, e in self.table.items() if now - e[2] <= self.ttl]
        pos = np.array([self.table[p][0] for p in ids]).reshape(-1, self.d)
        return ids, pos, np.array([self.table[p][1] for p in ids])


# ---------------------------------------------------------------------------- the agent
def connect(cfg: dict) -> tuple[zmq.Context, zmq.Socket]:
    """The DEALER to the body (CURVE unless the config says ``insecure``), with the page's limits."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    for opt, val in ((zmq.LINGER, 0), (zmq.SNDHWM, 1000), (zmq.RCVHWM, 1000),
                     (zmq.MAXMSGSIZE, MAX_HEADER + MAX_FRAME)):  # fmt: skip
        sock.setsockopt(opt, val)
    if not cfg.get("insecure"):
        use_curve(sock, cfg["curve"])
    sock.connect(cfg["body"]["endpoint"])
    return ctx, sock


class Agent:
    def __init__(self, cfg: dict) -> None:
        self.id, self.bounds = cfg["agent_id"], np.array(cfg["bounds"], dtype=float)
        self.d = len(self.bounds)
        self.eps, self.cutoff, self.m = cfg["eps"], cfg.get("cutoff", 4.0), cfg["mass"]
        self.vmax = cfg["speed_limit"]
        self.gain = cfg.get("gain") or self.vmax * self.eps / 0.5
        self.r_min, self.rate = cfg.get("r_min"), cfg.get("rate_hz", 10.0)
        self.ttl, self.forget = cfg.get("beacon_ttl", 0.5), cfg.get("forget_after", 2.0)
        self.timeout = cfg.get("state_timeout", 1.0)
        self.epoch, self.seq = time.time_ns(), 0
        self.ctx, self.sock = connect(cfg)
        self.body = None  # (epoch, seq) of the body's latest message taken
        self.field = None  # (coef, origin, spacing), the held patch
        self.counters = dict(messages_in=0, messages_out=0, rejected=0, commands=0, failsafe=0, stale=0)
        self.peers = Peers(self.id, self.d, self.ttl, self.forget, self.counters)
        self.path = None  # (plan, times, points)
        self.plan = -1
        self.last_state = None  # monotonic time of the last state taken
        self.last_tick, self.beacon_tick, self.tokens, self.refill = 0, -1, 2.0, time.monotonic()
        self.pending = None  # the newest state not yet answered: (x, world_time, dt, tick, position)
        self.stop = False

    # ------------------------------------------------------------------ sending
    def send(self, kind: str, **fields) -> None:
        self.seq += 1
        h = dict(v=1, kind=kind, agent_id=self.id, epoch=self.epoch, seq=self.seq, t=time.time(), **fields)
        try:
            self.sock.send(json.dumps(h).encode(), zmq.NOBLOCK)
            self.counters["messages_out"] += 1
        except zmq.Again:
            pass

    def hello(self) -> None:
        self.send("hello", name="protocol_agent", rate_hz=float(self.rate))

    # ------------------------------------------------------------------ receiving
    def receive(self, frames: list[bytes]) -> None:
        self.counters["messages_in"] += 1
        try:
            if len(frames[0]) > MAX_HEADER:
                raise Reject("header too long")
            h = json.loads(frames[0])
            if type(h) is not dict:
                raise Reject("not an object")
            _envelope(h)
            kind = h.get("kind")
            if kind in ("state", "path", "stats_request"):
                if h["agent_id"] != self.id:
                    raise Reject("not for me")
                getattr(self, f"_{kind}")(h, frames[1:])
            elif kind == "beacon":
                self._beacon(h, frames[1:])
            else:
                raise Reject(f"kind {kind!r}")
        except (Reject, ValueError, KeyError, TypeError, IndexError):
            self.counters["rejected"] += 1

    def _order(self, h: dict) -> None:
        """The body's epoch and seq: older epochs and repeated seqs refused; a newer epoch resets."""
        if self.body is not None:
            if h["epoch"] < self.body[0] or (h["epoch"] == self.body[0] and h["seq"] <= self.body[1]):
                raise Reject("order")
            if h["epoch"] > self.body[0]:
                self.field = self.pending = None
        self.body = (h["epoch"], h["seq"])

    def _buffers(self, declared: list[int], frames: list[bytes]) -> None:
        if sorted(declared) != list(range(len(declared))) or len(frames) != len(declared):
            raise Reject("frames")

    def _state(self, h: dict, frames: list[bytes]) -> None:
        _fields(h, ENVELOPE | {"position", "world_time", "tick"}, {"dt", "patch", "neighbors", "reply"})
        x = np.array(_vec(h["position"], self.d))
        wt, tick = _num(h["world_time"], 0, 1e11), _int(h["tick"], 0, U63)
        dt = None if h.get("dt") is None else _num(h["dt"], 0, 1e6, open_lo=True)
        reply = h.get("reply", "command")
        if reply not in ("command", "beacon"):
            raise Reject("reply")
        patch, nb = h.get("patch"), h.get("neighbors")
        declared = ([] if patch is None else [patch.get("buffer")]) + (
            [] if nb is None else [nb.get("buffer")]
        )
        self._buffers(declared, frames)
        fld = None if patch is None else parse_patch(patch, frames[patch["buffer"]], self.d, self.eps)
        rows = None if nb is None else parse_rows(nb, frames[nb["buffer"]], self.d)
        r = self.cutoff * math.sqrt(2) * self.eps
        if fld is not None and not covers(x, r / 2, fld[1], fld[2], fld[0].shape[:-1]):
            raise Reject("patch does not cover")
        self._order(h)
        held = fld is not None or (
            self.field is not None
            and covers(x, r / 2, self.field[1], self.field[2], self.field[0].shape[:-1])
        )
        if not held and reply != "beacon":  # a sensing round needs no patch: it only asks where we are
            raise Reject("no field")
        if fld is not None:
            self.field = fld
        if rows is not None:
            self.peers.take(rows)
        self.last_state = time.monotonic()
        if reply == "beacon":
            self.send("beacon", position=h["position"], mass=self.m)
            self.beacon_tick = tick
            return
        self.pending = (x, wt, dt, tick, h["position"])  # answered once what has arrived is taken

    def answer(self) -> None:
        """One command for the newest state taken (states that queued behind it while this agent
        was busy are superseded: answering them would only put it further behind)."""
        if self.pending is None or not self._token():
            return
        x, wt, dt, tick, position = self.pending
        self.pending = None
        v = self._command(x, wt, dt)
        fields = dict(velocity=v.tolist(), tick=tick, eps=self.eps)
        if self.beacon_tick != tick:
            fields["beacon"] = dict(position=position, mass=self.m)
        self.send("command", **fields)
        self.counters["commands"] += 1
        self.last_tick = tick

    def _beacon(self, h: dict, frames: list[bytes]) -> None:
        _fields(h, ENVELOPE | {"position", "mass"}, {"phase"})
        if frames:
            raise Reject("frames")
        x = np.array(_vec(h["position"], self.d))
        row = np.array([[h["agent_id"], h["t"], *x, _num(h["mass"], 0, 1, True)]])
        self.peers.take(row)

    def _path(self, h: dict, frames: list[bytes]) -> None:
        plan, times, pts = parse_path(h, frames, self.bounds)
        self._order(h)
        if plan <= self.plan:
            return
        self.plan = plan
        self.path = None if not times else (np.array(times), pts)

    def _stats_request(self, h: dict, frames: list[bytes]) -> None:
        _fields(h, ENVELOPE, set())
        if frames:
            raise Reject("frames")
        self._order(h)
        self.send("stats", counters=dict(self.counters), neighbors=len(self.peers.live()[0]))

    # ------------------------------------------------------------------ deciding
    def _command(self, x: np.ndarray, wt: float, dt: float | None) -> np.ndarray:
        if self.path is not None and wt < self.path[0][-1]:
            step = dt or 1.0 / self.rate
            times, pts = self.path
            target = np.array([np.interp(wt + step, times, pts[:, a]) for a in range(self.d)])
            return sat((target - x) / step, self.vmax)
        ids, pos, mass = self.peers.live()
        v = sat(
            self.gain * law(x, self.m, pos, mass, self.eps, self.cutoff, self.field, self.bounds), self.vmax
        )
        if self.r_min is not None:
            v = sat(v + separation(x, self.id, ids, pos, self.r_min, self.vmax), self.vmax)
        return v

    def _token(self) -> bool:
        now = time.monotonic()
        self.tokens = min(2.0, self.tokens + (now - self.refill) * self.rate)
        self.refill = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "stop", True))
        self.hello()
        last_hello, last_zero = time.monotonic(), 0.0
        while not self.stop:
            # a state waiting for a token: wake when the bucket has one
            wait = 50 if self.pending is None else math.ceil(max(0.0, 1.0 - self.tokens) / self.rate * 1000)
            if self.sock.poll(wait):
                while True:
                    try:
                        self.receive(self.sock.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            self.answer()
            now = time.monotonic()
            silent = self.last_state is None or now - self.last_state > self.timeout
            if silent and now - last_hello >= 1.0:
                self.hello()
                last_hello = now
                if self.last_state is None:
                    self.send("command", velocity=[0.0] * self.d, tick=self.last_tick, eps=self.eps)
            if self.last_state is not None and silent and now - last_zero >= 1.0 / self.rate:
                self.send("command", velocity=[0.0] * self.d, tick=self.last_tick, eps=self.eps)
                self.counters["failsafe"] += 1
                last_zero = now
        self.send("bye", reason="signal", counters=dict(self.counters))
        self.sock.close(linger=0)
        self.ctx.term()
        return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True, help="the agent config file (JSON)")
    args = ap.parse_args()
    with open(args.config, encoding="utf-8") as f:
        return Agent(json.load(f)).run()


if __name__ == "__main__":
    raise SystemExit(main())
