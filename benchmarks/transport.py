"""Benchmark of the deployment planner (swarmcover.transport.plan) against exact references.

Three families, every reference computed exactly here:

- points: N robots uniform on the unit square to N points sampled from a Gaussian two units away;
  reference the exact OT cost (the optimal assignment's mean squared distance, straight lines).
- gaussian: a grid on the unit square to a Gaussian density; reference the closed-form W2^2
  (separable: per axis (m - 1/2)^2 + 1/12 + s^2 - s/sqrt(pi)).
- disks: a depot to a target between two disks that block the straight lines; reference the
  assignment on squared exact geodesic lengths around the disks (tangent graph, tests/geodesics.py).

Columns: cost / reference - 1, the assignment read off the end points / OT - 1 (point sets), RMS
terminal misfit / target spread (point sets) or end spread / target spread - 1 (densities), the
smallest segment clearance, wall seconds (median of --repeats runs, one run at N >= 1000).

    python benchmarks/transport.py [--quick] [--repeats 3] [--json benchmarks/results/transport.json]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

import swarmcover as sc
from swarmcover.domain import Disk
from swarmcover.transport import plan

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results
from geodesics import geodesic_length

DISKS = [((0.5, 0.36), 0.13), ((0.5, 0.66), 0.13)]


def assignment(cost: np.ndarray) -> tuple[float, np.ndarray]:
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].mean()), c


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, statistics.median(times)


def points_row(n: int, repeats: int) -> dict:
    rng = np.random.default_rng(n)
    x0 = rng.random((n, 2))
    y = rng.normal(size=(n, 2)) * 0.1 + np.array([2.0, 1.0])
    sq = ((x0[:, None] - y[None]) ** 2).sum(-1)
    ot, _ = assignment(sq)
    p, secs = timed(lambda: plan(x0, y, steps=16), repeats)
    _, cols = assignment(((p.ends[:, None] - y[None]) ** 2).sum(-1))
    read = float(sq[np.arange(n), cols].mean())
    rms = math.sqrt(float(((p.ends - y[cols]) ** 2).sum(-1).mean()))
    spread = math.sqrt(float(np.trace(np.cov(y.T))) / 2)
    return dict(case="points", n=n, reference=ot, cost=p.cost, cost_err=p.cost / ot - 1,
                assignment_err=read / ot - 1, misfit=rms / spread, clearance=None, seconds=secs)  # fmt: skip


def gaussian_row(side: int, repeats: int) -> dict:
    mu, sig = np.array([2.0, 1.5]), 0.15
    g = (np.arange(side) + 0.5) / side
    x0 = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    target = sc.GaussianMixture([mu], [sig**2], bounds=[(-1, 4), (-1, 4)])
    w2 = float(np.sum((mu - 0.5) ** 2)) + 2 * (1 / 12 + sig**2 - sig / math.sqrt(math.pi))
    p, secs = timed(lambda: plan(x0, target, steps=16), repeats)
    return dict(case="gaussian", n=side * side, reference=w2, cost=p.cost, cost_err=p.cost / w2 - 1,
                assignment_err=None, misfit=float(p.ends.std(axis=0).mean()) / sig - 1, clearance=None,
                seconds=secs)  # fmt: skip


def disks_row(n: int, repeats: int) -> dict:
    rng = np.random.default_rng(n)
    x0 = rng.random((n, 2)) * [0.15, 0.3] + [0.0, 0.35]
    y = rng.random((n, 2)) * [0.15, 0.3] + [0.85, 0.35]
    lengths = np.array([[geodesic_length(a, b, DISKS) for b in y] for a in x0])
    ref, _ = assignment(lengths**2)
    p, secs = timed(lambda: plan(x0, y, obstacles=[Disk(c, r) for c, r in DISKS], steps=16), repeats)
    _, cols = assignment(((p.ends[:, None] - y[None]) ** 2).sum(-1))
    read = float((lengths[np.arange(n), cols] ** 2).mean())
    rms = math.sqrt(float(((p.ends - y[cols]) ** 2).sum(-1).mean()))
    spread = math.sqrt(float(np.trace(np.cov(y.T))) / 2)
    return dict(case="disks", n=n, reference=ref, cost=p.cost, cost_err=p.cost / ref - 1,
                assignment_err=read / ref - 1, misfit=rms / spread, clearance=p.clearance,
                seconds=secs)  # fmt: skip


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="benchmarks/results/transport.json")
    args = ap.parse_args()
    sizes = [10, 30, 100] if args.quick else [10, 30, 100, 300, 1000]
    sides = [4, 8, 16] if args.quick else [4, 8, 16, 32]
    disk_sizes = [10, 30] if args.quick else [10, 30, 100, 300]
    rows = []
    for n in sizes:
        rows.append(points_row(n, 1 if n >= 1000 else args.repeats))
    for side in sides:
        rows.append(gaussian_row(side, 1 if side * side >= 1000 else args.repeats))
    for n in disk_sizes:
        rows.append(disks_row(n, args.repeats))
    print(f"{'case':9} {'N':>5} {'reference':>10} {'cost/ref-1':>11} {'assign/ref-1':>12} {'misfit':>9} "
          f"{'clearance':>10} {'seconds':>8}")  # fmt: skip
    for r in rows:
        print(f"{r['case']:9} {r['n']:>5} {r['reference']:>10.5f} {r['cost_err']:>+11.4%} "
              f"{fmt(r['assignment_err'], '+.4%'):>12} {r['misfit']:>+9.4f} {fmt(r['clearance'], '.2e'):>10} "
              f"{r['seconds']:>8.2f}")  # fmt: skip
    write_results(args.json, rows, repeats=args.repeats, steps=16,
                  note="misfit: RMS end-point error / target spread (points, disks); end spread / target "
                  "spread - 1 (gaussian)")  # fmt: skip


if __name__ == "__main__":
    main()
