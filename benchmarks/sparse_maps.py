"""Candidates for the law on sparse, peaky maps, measured against Lloyd's algorithm (issue 3).

The map: a 1024 x 1024 world whose target is zero on 73 % of the area (12 bumps cut at two standard
deviations, ``swarmcover.maps.peaky_map``); 32 and 128 agents from a corner depot; speed limit 20;
the gain rule; separation r_min = 0.2 spacing where named. Each candidate runs for the same time
budget (the crossing time plus 60 relaxation times at the spacing). Lloyd's algorithm (full knowledge,
central) runs from the same start to convergence.

Columns: cost/Lloyd (locational cost relative to Lloyd's; < 1 is better), covered (target mass within
one spacing of an agent), on support (fraction of agents where the target is > 0), min sep (smallest
pair distance / spacing), alloc err (half the L1 distance between the agents' split over bumps and
the bumps' masses), walls (agents on a wall), steps, seconds.

    python benchmarks/sparse_maps.py [--quick] [--json benchmarks/results/sparse_maps.json]

With ``--agents``: the fleet of agent processes (``swarmcover launch launch/sparse.toml``) beside
``cover()`` and Lloyd's algorithm from the same start (``benchmarks/sparse_fleet.py``):

    python benchmarks/sparse_maps.py --agents [--sizes 32 128] [--json benchmarks/results/sparse_fleet.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.interpolate import RegularGridInterpolator
from scipy.spatial import cKDTree

from swarmcover import BlobLaw, GaussianMixture, Separation, flow, gain_for, lloyd
from swarmcover.control import saturate
from swarmcover.coverage import CoverageSchedule, cover
from swarmcover.integrate import slide_at_walls
from swarmcover.maps import corner_start, peaky_map
from swarmcover.metrics import lloyd_cost

SIZE, SPEED, R_MIN = 1024.0, 20.0, 0.2
MAX_STEPS = 6000


def spacing(n: int) -> float:
    return SIZE / math.sqrt(n)


def budget(n: int) -> float:
    return math.hypot(SIZE, SIZE) / SPEED + 60 * spacing(n) * 0.5 / SPEED


def measure(x: np.ndarray, target: GaussianMixture, n: int, lloyd_ref: float) -> dict:
    h = spacing(n)
    q, w = target.quadrature(256)
    dist, _ = cKDTree(x).query(q)
    nn, _ = cKDTree(x).query(x, k=2)
    sd = np.sqrt(target.covs[:, 0, 0])
    owner = np.argmin(np.linalg.norm(x[:, None] - target.means[None], axis=2) / sd, axis=1)
    split = np.bincount(owner, minlength=len(sd)) / len(x)
    to_wall = np.minimum(x, SIZE - x).min(axis=1)
    return {
        "cost_over_lloyd": lloyd_cost(x, target) / lloyd_ref,
        "covered": float(w[dist <= h].sum()),
        "on_support": float(np.mean(target.pdf(x) > 0)),
        "min_sep": float(nn[:, 1].min() / h),
        "alloc_err": float(0.5 * np.abs(split - target.weights).sum()),
        "walls": int(np.sum(to_wall < 1e-6 * SIZE)),
    }


def run_law(target, x0, n, *, eps, boundary="reflect", smoothing=0.0, separation=True, floor=None):
    """One stage of the blob law at fixed eps for the whole budget."""
    tgt = target if floor is None else rebuild(target, floor)
    law = BlobLaw(tgt, eps, 1.0 / n, boundary=boundary, target_smoothing=smoothing)
    sep = Separation(R_MIN * spacing(n), SPEED) if separation else None
    res = flow(
        law, x0, budget(n), speed_limit=SPEED, gain=gain_for(eps, SPEED), separation=sep, max_steps=MAX_STEPS
    )
    return res.x, res.n_steps


def run_annealed(target, x0, n, *, smoothing, resolution=1.0, separation=True):
    sched = CoverageSchedule.annealed(target, n, SPEED, resolution=resolution, smoothing=smoothing)
    # same time budget as the single-stage candidates: the last stage takes what is left
    res = cover(target, x0, SPEED, r_min=R_MIN * spacing(n) if separation else None, schedule=sched,
                t_end=max(budget(n), sched.duration))  # fmt: skip
    return res.x, res.n_steps


def rebuild(target: GaussianMixture, floor: float) -> GaussianMixture:
    return GaussianMixture(target.means, target.covs, target.weights, bounds=target.box, floor=floor,
                           truncate=target.truncate)  # fmt: skip


def run_ratio(target, x0, n, *, eps):
    r"""The variant with both densities mollified: :math:`v = -\nabla[(\phi*\rho)/(\phi*\bar\rho)]`,
    reflecting walls, same gain rule, separation and speed limit; explicit Euler, each step moving
    at most 0.05 eps."""
    cells = 512
    axes, _ = target.box.grid(cells)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    cell = SIZE / cells
    smooth = ndimage.gaussian_filter(target.pdf(grid).reshape(cells, cells), eps / cell, mode="reflect")
    smooth = np.maximum(smooth, target.floor_density)
    gx, gy = np.gradient(smooth, cell)
    interp = [RegularGridInterpolator(axes, f, bounds_error=False, fill_value=None) for f in (smooth, gx, gy)]
    sep = Separation(R_MIN * spacing(n), SPEED)
    gain = gain_for(eps, SPEED)
    x, t, steps, T = x0.copy(), 0.0, 0, budget(n)
    dt = 0.05 * eps / SPEED
    box = target.box
    while t < T and steps < MAX_STEPS * 4:
        g, _owner = box.images(x, 4 * eps)
        src = np.concatenate([x, g])
        sdm = cKDTree(x).sparse_distance_matrix(cKDTree(src), 4 * eps, output_type="ndarray")
        z = x[sdm["i"]] - src[sdm["j"]]
        k = np.exp(-0.5 * np.einsum("ij,ij->i", z, z) / eps**2) / (2 * math.pi * eps**2) / n
        rho = np.bincount(sdm["i"], k, n)
        grad = np.stack([np.bincount(sdm["i"], -k * z[:, a] / eps**2, n) for a in range(2)], 1)
        s, sx, sy = (f(x) for f in interp)
        gs = np.stack([sx, sy], 1)
        v = -(grad * s[:, None] - rho[:, None] * gs) / (s * s)[:, None]
        v = saturate(gain * v, SPEED) + sep.velocities(x)
        v = saturate(slide_at_walls(x, v, box.lo, box.hi), SPEED)
        x = box.clip(x + dt * v)
        t += dt
        steps += 1
    return x, steps


def candidates(n: int, quick: bool) -> dict:
    h = spacing(n)
    table = [
        (
            "literal: eps=h, free walls, floor 1e-3",
            run_law,
            {"eps": h, "boundary": "free", "separation": False},
        ),
        ("+ reflecting walls", run_law, {"eps": h, "separation": False}),
        ("+ separation r_min", run_law, {"eps": h}),
        ("+ floor 0.1 (relative to the mean)", run_law, {"eps": h, "floor": 0.1}),
        ("+ eps annealed, no smoothing", run_annealed, {"smoothing": 0.0}),
        ("+ target smoothed at eps, no anneal", run_law, {"eps": h, "smoothing": h}),
        ("ratio variant (phi*rho)/(phi*rhobar), eps=h", run_ratio, {"eps": h}),
        ("anneal + smoothing, final eps = h", run_annealed, {"smoothing": 1.0}),
        ("anneal + smoothing, final eps = 0.5 h", run_annealed, {"smoothing": 1.0, "resolution": 0.5}),
        (
            "anneal + smoothing, final eps = 0.3 h (default)",
            run_annealed,
            {"smoothing": 1.0, "resolution": 0.3},
        ),
        ("anneal + smoothing, final eps = 0.2 h", run_annealed, {"smoothing": 1.0, "resolution": 0.2}),
    ]
    if quick:
        table = [row for row in table if "anneal + smoothing" in row[0]]
    return {name: (lambda tg, x0, fn=fn, kw=kw: fn(tg, x0, n, **kw)) for name, fn, kw in table}


def robustness_row(tg: GaussianMixture, n: int, seed: int, label: str, kw: dict) -> dict:
    """Deploy from the corner, lose a quarter (random / the east side / the west side), heal; compare
    with a fresh fleet of the survivors' size run twice as long."""
    h = spacing(n)
    x0 = corner_start(tg.box, n, 0.3 * h, seed=0)
    ref = lloyd(tg, x0)
    sched = CoverageSchedule.annealed(tg, n, SPEED, **kw)
    t = time.perf_counter()
    x = cover(tg, x0, SPEED, r_min=R_MIN * h, schedule=sched).x
    seconds = time.perf_counter() - t
    m = measure(x, tg, n, ref.costs[-1])
    k = n - n // 4
    fresh_sched = CoverageSchedule.annealed(tg, k, SPEED, **kw)
    fresh_x0 = corner_start(tg.box, k, 0.3 * h, seed=0)
    fresh = cover(tg, fresh_x0, SPEED, r_min=R_MIN * h, schedule=fresh_sched, t_end=2 * sched.duration).x
    heal = {}
    for loss, alive in (
        ("random", np.random.default_rng(seed).choice(n, k, replace=False)),
        ("east", np.argsort(x[:, 0])[:k]),
        ("west", np.argsort(-x[:, 0])[:k]),
    ):
        rec = CoverageSchedule.after_losses(tg, n, SPEED, **kw)
        healed = cover(tg, x[alive], SPEED, r_min=R_MIN * h, mass=1.0 / n, schedule=rec).x
        heal[loss] = lloyd_cost(healed, tg) / lloyd_cost(fresh, tg)
    print(f"{label:26s} {seed:4d} {n:4d} {sched.duration:5.0f} {m['cost_over_lloyd']:10.3f} "
          f"{m['covered']:8.3f} {m['on_support']:8.2f} {m['min_sep']:8.3f} {heal['random']:20.2f} "
          f"{heal['east']:5.2f} {heal['west']:5.2f}", flush=True)  # fmt: skip
    return {"schedule": label, "seed": seed, "n": n, "duration": sched.duration, "seconds": seconds, **m,
            "healed_over_fresh": heal}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only the annealed-and-smoothed candidates")
    ap.add_argument("--json", default=None, help="default: benchmarks/results/sparse_maps.json "
                    "(sparse_fleet.json with --agents)")  # fmt: skip
    ap.add_argument("--agents", action="store_true", help="the fleet of agent processes (see above)")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 128], help="--agents: fleet sizes")
    args = ap.parse_args()
    if args.agents:
        import sparse_fleet

        sparse_fleet.main(args.sizes, args.json or "benchmarks/results/sparse_fleet.json")
        return
    args.json = args.json or "benchmarks/results/sparse_maps.json"
    target = peaky_map(SIZE, 12, 0.27, 2.0, seed=1)
    rows = []
    print(f"{'n':>4} {'candidate':48s} {'cost/Lloyd':>10} {'covered':>8} {'on supp':>8} {'min sep':>8} "
          f"{'alloc err':>9} {'walls':>5} {'steps':>6} {'s':>6}")  # fmt: skip
    for n in (32, 128):
        x0 = corner_start(target.box, n, 0.3 * spacing(n), seed=0)
        ref = lloyd(target, x0)
        lloyd_row = {
            "n": n,
            "candidate": "Lloyd (central, full map)",
            "steps": ref.iterations,
            "seconds": 0.0,
        }
        lloyd_row.update(measure(ref.x, target, n, ref.costs[-1]))
        rows.append(lloyd_row)
        for name, fn in [(None, None), *candidates(n, args.quick).items()]:
            if name is None:
                row = lloyd_row
            else:
                t = time.perf_counter()
                x, steps = fn(target, x0)
                row = {"n": n, "candidate": name, **measure(x, target, n, ref.costs[-1]), "steps": int(steps),
                       "seconds": time.perf_counter() - t}  # fmt: skip
                rows.append(row)
            print(f"{n:4d} {row['candidate']:48s} {row['cost_over_lloyd']:10.3f} {row['covered']:8.3f} "
                  f"{row['on_support']:8.2f} {row['min_sep']:8.3f} {row['alloc_err']:9.3f} {row['walls']:5d} "
                  f"{row['steps']:6d} {row['seconds']:6.1f}", flush=True)  # fmt: skip
    # robustness on other maps, and recovery after losing a quarter, for two schedules
    robust = []
    schedules = {"default (10 stages x 20)": {}, "fast (6 stages x 10)": {"stages": 6, "relax": 10.0}}
    print(f"\n{'schedule':26s} {'seed':>4} {'n':>4} {'T':>5} {'cost/Lloyd':>10} {'covered':>8} "
          f"{'on supp':>8} {'min sep':>8} {'healed/fresh: random':>20} {'east':>5} {'west':>5}")  # fmt: skip
    for label, kw in schedules.items():
        for seed in (1, 2, 3) if args.quick else range(1, 9):
            tg = peaky_map(SIZE, 12, 0.27, 2.0, seed=seed)
            for n in (32, 128):
                robust.append(robustness_row(tg, n, seed, label, kw))
    summary = {}
    for label in schedules:
        heal = np.array([list(r["healed_over_fresh"].values()) for r in robust if r["schedule"] == label])
        cost = np.array([r["cost_over_lloyd"] for r in robust if r["schedule"] == label])
        summary[label] = {
            "max_cost_over_lloyd": float(cost.max()),
            "max_healed_over_fresh": float(heal.max()),
            "median_healed_over_fresh": float(np.median(heal)),
            "trials_within_25pct": f"{int(np.sum(heal <= 1.25))} of {heal.size}",
        }
        print(f"{label}: {summary[label]}")
    info = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "speed_limit": SPEED, "r_min_over_spacing": R_MIN}  # fmt: skip
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(
            json.dumps({"info": info, "candidates": rows, "robustness": robust, "summary": summary}, indent=1)
        )
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
