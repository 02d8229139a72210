"""Agent benchmark: one control step (compute only) and sense-to-command latency over loopback.

1. Compute: ``local_velocity`` + gain + separation + saturation for one agent with 30 neighbours
   (centre of the box, and a corner where mirror images count), and the message work around it
   (decode a state with its field patch, encode the command). Median of 2000.
2. Latency: N real agent processes (``swarmcover agent``) against an in-process stand-in for the
   simulator (ROUTER socket): every tick it sends each agent a state with its field patch and
   relays each beacon to the agents within the law's radius (static positions, about 30
   neighbours each); latency is the time from sending an agent's state to receiving its command,
   on the stand-in's clock. 10 Hz ticks for ``--seconds``.

    python benchmarks/agent.py [--agents 10 50 100] [--seconds 10] [--json benchmarks/results/agent.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import zmq

import swarmcover as sc
from swarmcover.control import Separation, saturate
from swarmcover.law import local_velocity
from swarmcover.protocol import Beacon, Command, Hello, Patch, State, decode, encode


def compute_bench(repeats: int = 2000) -> dict:
    n, k = 1000, 30
    target = sc.Uniform([(0, 1), (0, 1)])
    eps = math.sqrt(k / (n * math.pi * 32))  # about k neighbours within 4 sqrt2 eps
    law = sc.BlobLaw(target, eps, 1 / n)
    rng = np.random.default_rng(0)
    out = {}
    for where, x in (("centre", np.array([0.5, 0.5])), ("corner", np.array([0.01, 0.01]))):
        ang, rad = rng.random(k) * 2 * np.pi, np.sqrt(rng.random(k)) * law.radius * 0.95
        nb = np.clip(x + np.c_[np.cos(ang), np.sin(ang)] * rad[:, None], 0, 1)
        origin, coef = law.field.patch(x, 0.5 * law.radius)
        sp = law.field.spacing
        m, ids, sep = np.full(k, 1 / n), np.arange(1, k + 1), Separation(0.2 * eps, 1.0)

        def step(x=x, nb=nb, origin=origin, coef=coef, sp=sp, m=m, ids=ids, sep=sep):
            v = local_velocity(x, nb, 1 / n, m, eps=eps, cutoff=4.0, coef=coef, origin=origin, spacing=sp,
                               box=target.box)  # fmt: skip
            v = saturate(10.0 * v[None], 1.0)[0]
            return saturate((v + sep.velocity(x, nb, 0, ids))[None], 1.0)[0]

        patch = Patch(eps=eps, origin=origin.tolist(), spacing=sp.tolist(), shape=list(coef.shape[:-1]))
        st = State(agent_id=0, epoch=1, seq=1, t=time.time(), position=x.tolist(), world_time=0.0, tick=1,
                   patch=patch)  # fmt: skip
        frames = encode(st, coef)

        def messages(frames=frames):
            decode(frames)
            encode(Command(agent_id=0, epoch=1, seq=2, t=time.time(), velocity=[0.1, 0.2], tick=1, eps=eps))

        for name, fn in (("step", step), ("messages", messages)):
            for _ in range(100):
                fn()
            ts = []
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t)
            out[f"{name}_{where}_us"] = statistics.median(ts) * 1e6
        out["patch_bytes"] = len(frames[1])
    return out


def _cpu_seconds(procs: list[subprocess.Popen]) -> float:
    """User + system CPU seconds of the given processes so far (Linux ``/proc``; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0
    for p in procs:
        try:
            fields = Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick


def latency_bench(n: int, seconds: float, staggered: bool, rate: float = 10.0) -> dict:
    target = sc.Uniform([(0, 1), (0, 1)])
    eps = math.sqrt(30 / (n * math.pi * 32)) if n > 31 else 0.5
    law = sc.BlobLaw(target, eps, 1 / n)
    rng = np.random.default_rng(1)
    x = rng.random((n, 2))
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    near = [np.flatnonzero((dist[i] < law.radius) & (np.arange(n) != i)) for i in range(n)]
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    sock.bind("tcp://127.0.0.1:*")
    endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
    procs, routes = [], {}
    patches = []
    for i in range(n):
        origin, coef = law.field.patch(x[i], 0.5 * law.radius)
        patches.append((Patch(eps=eps, origin=origin.tolist(), spacing=law.field.spacing.tolist(),
                              shape=list(coef.shape[:-1])), coef))  # fmt: skip
    try:
        for i in range(n):
            body = {"kind": "sim", "endpoint": endpoint}
            cfg = {"agent_id": i, "bounds": [[0, 1], [0, 1]], "eps": eps, "mass": 1 / n, "speed_limit": 1.0,
                   "rate_hz": 2 * rate, "state_timeout": 5.0, "body": body}  # fmt: skip
            cmd = [sys.executable, "-m", "swarmcover.cli.main", "agent", "--json", json.dumps(cfg),
                   "--log-level", "WARNING"]  # fmt: skip
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 300
        while len(routes) < n and time.monotonic() < deadline:
            if sock.poll(100):
                route, *body = sock.recv_multipart()
                msg = decode(body).message
                if isinstance(msg, Hello):
                    routes[msg.agent_id] = route
        if len(routes) < n:
            raise RuntimeError(f"only {len(routes)} of {n} agents came up")
        epoch, seq = time.time_ns(), 0
        period = 1.0 / rate
        warm = int(3 * rate)  # first ticks load compiled kernels in every agent: not measured
        ticks = int(seconds * rate)
        sent: dict[tuple[int, int], float] = {}
        lat: list[float] = []
        relayed = 0
        queued: list[list[list[bytes]]] = [[] for _ in range(n)]

        def take(until: float) -> None:
            nonlocal relayed
            while True:
                left = until - time.monotonic()
                if left <= 0 or not sock.poll(left * 1000):
                    return
                while True:
                    try:
                        _route, *body = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    msg = decode(body).message
                    if isinstance(msg, Command):
                        t_sent = sent.pop((msg.tick, msg.agent_id), None)
                        if t_sent is not None and msg.tick > warm:
                            lat.append(time.monotonic() - t_sent)
                    elif isinstance(msg, Beacon):
                        for j in near[msg.agent_id]:
                            if staggered:
                                queued[j].append(body)
                            else:
                                sock.send_multipart([routes[j], *body])
                            if msg.t > t_measure:
                                relayed += 1

        t0 = time.monotonic() + 0.1
        t_measure = time.time() + warm * period
        cpu = {}
        for tick in range(1, warm + ticks + 1):
            if tick == warm + 1:  # CPU seconds of the stand-in and of all agents over the measured ticks
                cpu = {
                    "wall": time.monotonic(),
                    "standin": time.process_time(),
                    "agents": _cpu_seconds(procs),
                }
            for i in range(n):
                take(t0 + (tick - 1 + (i / n if staggered else 0.0)) * period)
                if staggered:  # the radio's deliveries since this agent's last state, then the state
                    for body in queued[i]:
                        sock.send_multipart([routes[i], *body])
                    queued[i].clear()
                seq += 1
                st = State(agent_id=i, epoch=epoch, seq=seq, t=time.time(), position=x[i].tolist(),
                           world_time=tick * period, tick=tick, patch=patches[i][0])  # fmt: skip
                sock.send_multipart([routes[i], *encode(st, patches[i][1])])
                sent[(tick, i)] = time.monotonic()
        take(time.monotonic() + period)
        span = time.monotonic() - cpu["wall"]
        standin_cores = (time.process_time() - cpu["standin"]) / span
        agent_cores = (_cpu_seconds(procs) - cpu["agents"]) / span
        late = sum(1 for t in lat if t > period) + sum(1 for (k, _i) in sent if k > warm)
        lat_ms = np.array(lat) * 1e3
        return {"agents": n, "sensing": "staggered" if staggered else "burst", "ticks": ticks,
                "warmup_ticks": warm, "rate_hz": rate,
                "median_ms": float(np.median(lat_ms)),
                "p99_ms": float(np.percentile(lat_ms, 99)), "late_fraction": late / (ticks * n),
                "beacons_relayed_per_s": relayed / (ticks * period),
                "mean_neighbours": float(np.mean([len(v) for v in near])),
                "standin_cores": standin_cores, "agent_cores": agent_cores}  # fmt: skip
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        sock.close(linger=0)
        ctx.term()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="*", default=[10, 50, 100])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sensing", choices=["burst", "staggered", "both"], default="both")
    ap.add_argument("--json", default="benchmarks/results/agent.json")
    args = ap.parse_args()
    comp = compute_bench()
    print("one agent, 30 neighbours (median of 2000):")
    for k, v in comp.items():
        print(f"  {k:24s} {v:10.1f}")
    rows = []
    print(f"\n{'sensing':>9} {'agents':>6} {'median ms':>10} {'p99 ms':>8} {'late':>7} {'relayed/s':>10} "
          f"{'neighbours':>10} {'standin':>8} {'agents':>8}")  # fmt: skip
    modes = {"burst": (False,), "staggered": (True,), "both": (False, True)}[args.sensing]
    for staggered in modes:
        for n in args.agents:
            r = latency_bench(n, args.seconds, staggered)
            rows.append(r)
            keys = ("sensing", "agents", "median_ms", "p99_ms", "late_fraction", "beacons_relayed_per_s")
            row = [r[k] for k in keys] + [r["mean_neighbours"], r["standin_cores"], r["agent_cores"]]
            print(
                "{:>9} {:6d} {:10.2f} {:8.2f} {:7.4f} {:10.0f} {:10.1f} {:8.2f} {:8.2f}".format(*row),
                flush=True,
            )
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "compute": comp, "latency": rows}, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
