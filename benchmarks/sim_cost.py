"""What the simulator spends per agent and tick, piece by piece, in this process.

A real :class:`swarmcover.simulator.server.Simulator` (real time, a uniform target, ``n`` robots on
a lattice of one per unit area, a radio of the law's range) is driven without agent processes: every
robot is marked connected, each tick the world steps and the radio takes every robot's beacon, and
the state for every robot is built and encoded (``Outbox.state``) and one command per robot, encoded
as an agent encodes it (with its beacon riding on it), is taken (``Intake.take``). Each piece is
timed over all robots and ticks; the table gives microseconds per robot and tick (median over
ticks), so the pieces that scale with the fleet show up.

    python benchmarks/sim_cost.py [--sizes 100 200 400] [--ticks 30] [--json benchmarks/results/sim_cost.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results

from swarmcover.protocol import BeaconPart, Command, Hello, encode
from swarmcover.simulator.config import SimConfig
from swarmcover.simulator.server import Simulator

PIECES = ("world step", "radio update", "state", "command in", "per tick (all)")


def _sim(n: int) -> Simulator:
    side = float(np.ceil(np.sqrt(n)))
    g = (np.arange(n) % side + 0.5, np.arange(n) // side + 0.5)
    cfg = SimConfig(bounds=[(0.0, side), (0.0, side)], positions=np.stack(g, axis=1).tolist(), eps=0.3,
                    speed_limit=0.5, tick=0.1, clock="realtime", endpoint="tcp://127.0.0.1:*",
                    insecure=True, seed=1)  # fmt: skip
    sim = Simulator(cfg)
    sim.world.connected[:] = True
    sim.running = True
    return sim


def _commands(sim: Simulator, tick: int) -> list[tuple[int, list[bytes]]]:
    out = []
    for k, a in enumerate(sim.world.ids):
        a = int(a)
        part = BeaconPart(position=sim.world.x[k].tolist(), mass=1.0 / len(sim.world.ids))
        cmd = Command(agent_id=a, epoch=1, seq=tick + 1, t=time.time(), velocity=[0.01, 0.0], tick=tick,
                      eps=sim.cfg.eps, beacon=part)  # fmt: skip
        out.append((k, encode(cmd)))
    return out


def measure(n: int, ticks: int) -> dict:
    sim = _sim(n)
    ids = [int(a) for a in sim.world.ids]
    route = {a: f"r{a}".encode() for a in ids}
    for a in ids:  # each says hello on its own connection, as an agent process does
        hello = Hello(agent_id=a, epoch=1, seq=1, t=time.time(), rate_hz=10.0, eps=sim.cfg.eps)
        sim.intake.take(route[a], encode(hello), time.monotonic())
    times = {p: [] for p in PIECES}
    try:
        for tick in range(1, ticks + 1):
            t_all = time.perf_counter()
            t0 = time.perf_counter()
            sim.world.step(sim.cfg.tick, time.monotonic(), None)
            sim.tick = tick
            t1 = time.perf_counter()
            sim.radio_update()
            t2 = time.perf_counter()
            for k in range(n):
                sim.out.state(k)
            t3 = time.perf_counter()
            cmds = _commands(sim, tick)
            t4 = time.perf_counter()
            for k, frames in cmds:
                sim.intake.take(route[ids[k]], frames, time.monotonic())
            t5 = time.perf_counter()
            times["world step"].append(t1 - t0)
            times["radio update"].append(t2 - t1)
            times["state"].append(t3 - t2)
            times["command in"].append(t5 - t4)
            times["per tick (all)"].append((t5 - t_all) - (t4 - t3))
    finally:
        sim.close()
    row = {"n": n, "ticks": ticks, "rejected": sim.counts["rejected"], "commands": sim.counts["commands"]}
    for p in PIECES:
        row[p] = 1e6 * statistics.median(times[p]) / n
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    ap.add_argument("--ticks", type=int, default=30)
    ap.add_argument("--json", default="benchmarks/results/sim_cost.json")
    args = ap.parse_args()
    rows = [measure(n, args.ticks) for n in args.sizes]
    print(f"{'robots':>6} " + " ".join(f"{p:>15}" for p in PIECES) + "   (us per robot and tick, median)")
    for r in rows:
        print(f"{r['n']:>6} " + " ".join(f"{r[p]:>15.1f}" for p in PIECES))
    write_results(args.json, rows, note="microseconds per robot and tick, medians over ticks")


if __name__ == "__main__":
    main()
