"""The fleet of agent processes on the sparse map, beside ``cover()`` and Lloyd's algorithm from the
same start (issue 16). Every fleet row is a real ``swarmcover launch launch/sparse.toml`` (lockstep,
one agent process per robot); the in-process rows start from the positions that launch started from.

Rows per fleet size: Lloyd's algorithm (central, full map, to convergence); ``cover()`` with the
library's defaults (10 stages x 20 relaxation times, adaptive steps, cut off at the budget);
``cover(fixed_step=tick)`` with the fleet's own schedule (the same law in one process); the fleet
with one eps for ever (the spacing: what the agents ran before this release); the fleet with the
annealed schedule (the default), with ``objective = "service"``, and with 20 % beacon loss.
Then losses: a quarter SIGKILLed at t = 100 (at random, and the westernmost quarter), run to
t = 300, against a fresh fleet of the survivors' size.

Columns: cost (locational cost ``int min_i |q - x_i|^2 rhobar``), covered (target mass within one
spacing of a robot), walls (robots on a wall where there is no demand), min sep / r_min, energy
distance, cost at half the budget over the final cost, restarts (agents that restarted their
schedule, and how many said ``losses``), wall seconds.

    python benchmarks/sparse_maps.py --agents [--sizes 32 128] [--json benchmarks/results/sparse_fleet.json]
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from swarmcover import lloyd
from swarmcover.coverage import cover
from swarmcover.launcher.resolve import resolve
from swarmcover.launcher.scenario import load_scenario
from swarmcover.metrics import energy_distance, lloyd_cost
from swarmcover.simulator.recording import load_recording

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "launch" / "sparse.toml"
KILL_AT, LOSS_END = 100.0, 300.0


def _launch(out: Path, n: int, sets: list[str], failures: str = "", duration: float | None = None) -> dict:
    """One ``swarmcover launch`` of the sparse scenario; returns its summary."""
    src = SCENARIO
    if failures:  # a copy of the scenario with a failure schedule appended
        src = out.parent / f"{out.name}.toml"
        src.write_text(SCENARIO.read_text() + "\n" + failures)
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", str(src), "--headless", "--out", str(out),
           "--set", f"fleet.size={n}", *(x for s in sets for x in ("--set", s))]  # fmt: skip
    if duration is not None:
        cmd += ["--duration", str(duration)]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    summary = json.loads((out / "summary.json").read_text())
    summary["_wall"] = time.perf_counter() - t
    return summary


def _measure(x: np.ndarray, target, spacing: float, r_min: float) -> dict:
    q, w = target.quadrature(256)
    dist, _ = cKDTree(x).query(q)
    nn, _ = cKDTree(x).query(x, k=2)
    lo, hi = target.box.lo, target.box.hi
    tol = 1e-6 * float(target.box.size.max())
    on_wall = (np.minimum(x - lo, hi - x).min(axis=1) < tol) & (target.pdf(x) <= 0)
    return {
        "cost": float(lloyd_cost(x, target)),
        "covered": float(w[dist <= spacing].sum()),
        "walls": int(on_wall.sum()),
        "min_sep_over_r_min": float(nn[:, 1].min() / r_min),
        "energy_distance": float(energy_distance(x, target)),
    }


def _fleet_row(name: str, summary: dict, target, spacing: float, r_min: float, alive=None) -> dict:
    f = summary["final"]
    x = np.asarray(f["positions"])
    if alive is not None:
        x = x[alive]
    m = summary["metrics"]
    t, cost = np.asarray(m["t"]), np.asarray(m["lloyd_cost"])
    half = float(cost[np.searchsorted(t, 0.5 * t[-1])] / cost[-1]) if len(t) else math.nan
    restarts = [e for e in summary["events"] if e["kind"] == "schedule_restart"]
    return {
        "candidate": name,
        **_measure(x, target, spacing, r_min),
        "half_over_final": half,
        "restarted_agents": len({e["agent_id"] for e in restarts}),
        "restarts_for_losses": sum(e["cause"] == "losses" for e in restarts),
        "seconds": summary["_wall"],
        "on_time": summary["timing"]["on_time_fraction"] if summary.get("timing") else None,
    }


def _print(n: int, row: dict) -> None:
    r = row
    half = "" if "half_over_final" not in r else f"{r['half_over_final']:9.3f}"
    rs = "" if "restarted_agents" not in r else f"{r['restarted_agents']:4d}/{r['restarts_for_losses']:<3d}"
    print(f"{n:4d} {r['candidate']:46s} {r['cost']:10.1f} {r['covered']:8.3f} {r['walls']:5d} "
          f"{r['min_sep_over_r_min']:7.2f} {r['energy_distance']:8.3f} {half:>9} {rs:>8} "
          f"{r.get('seconds', 0.0):7.1f}", flush=True)  # fmt: skip


def run_size(n: int, work: Path) -> dict:
    rs = resolve(load_scenario(SCENARIO, [f"fleet.size={n}"]), SCENARIO)
    target, h, r_min, v, tick = rs.target, rs.spacing, rs.r_min, rs.speed_limit, rs.sim.tick
    T = rs.scenario.duration
    x0 = np.asarray(rs.sim.positions)
    rows = []

    def add(row: dict) -> None:
        rows.append(row)
        _print(n, row)

    t = time.perf_counter()
    ref = lloyd(target, x0)
    add({"candidate": "Lloyd (central, full map)", **_measure(ref.x, target, h, r_min),
         "seconds": time.perf_counter() - t})  # fmt: skip
    t = time.perf_counter()
    lib = cover(target, x0, v, r_min=r_min, t_end=T)
    add({"candidate": "cover(), library defaults (10 x 20, adaptive)", **_measure(lib.x, target, h, r_min),
         "seconds": time.perf_counter() - t})  # fmt: skip
    t = time.perf_counter()
    # the exact pairwise law, as every agent computes it ("auto" picks the particle-mesh
    # approximation from about a hundred robots, which is not the fleet's law)
    same = cover(
        target, x0, v, r_min=r_min, schedule=rs.schedule, t_end=T, fixed_step=tick, method="pairwise"
    )
    add({"candidate": "cover(fixed_step), the fleet's schedule", **_measure(same.x, target, h, r_min),
         "seconds": time.perf_counter() - t})  # fmt: skip
    runs = {}
    for key, name, sets in (
        ("fixed", "fleet: one eps = the spacing (before)", ['law.schedule="fixed"']),
        ("annealed", "fleet: annealed schedule (default)", []),
        ("service", 'fleet: objective = "service"', ['law.objective="service"']),
        ("loss20", "fleet: annealed, 20 % beacon loss", ["radio.loss=0.2"]),
    ):
        runs[key] = _launch(work / f"{n}_{key}", n, sets)
        add(_fleet_row(name, runs[key], target, h, r_min))
    # losses after convergence: which robots the fleet has at KILL_AT (lockstep is deterministic,
    # so the annealed run's recording says where the loss runs' robots are then)
    rec = load_recording(work / f"{n}_annealed" / "recording")
    at = rec.positions[int(np.searchsorted(rec.t, KILL_AT))]
    k = n // 4
    west = sorted(int(i) for i in np.argsort(at[:, 0])[:k])
    fresh = _launch(work / f"{n}_fresh", n - k, [])
    fresh_row = _fleet_row(f"fresh fleet of {n - k} from the depot", fresh, target, h, r_min)
    add(fresh_row)
    losses = {}
    for key, failures in (
        ("kill_random", f'[[failures]]\nt = {KILL_AT}\nkind = "kill"\nfraction = 0.25\n'),
        ("kill_west", f'[[failures]]\nt = {KILL_AT}\nkind = "kill"\nids = {west}\n'),
    ):
        s = _launch(work / f"{n}_{key}", n, [], failures, duration=LOSS_END)
        killed = {e["agent_id"] for e in s["events"] if e["kind"] == "killed"}
        alive = [i for i in range(n) if i not in killed]
        row = _fleet_row(
            f"fleet: {key.replace('_', ' ')} quarter at t=100, to t=300", s, target, h, r_min, alive
        )
        row["survivors"] = len(alive)
        row["over_fresh"] = row["cost"] / fresh_row["cost"]
        said = {e["agent_id"] for e in s["events"] if e["kind"] == "schedule_restart"}
        row["survivors_restarted"] = sorted(said) == alive
        losses[key] = row
        add(row)
    return {"n": n, "spacing": h, "r_min": r_min, "rows": rows, "losses": losses}


def main(sizes: list[int], json_path: str | None) -> None:
    print(f"{'n':>4} {'candidate':46s} {'cost':>10} {'covered':>8} {'walls':>5} {'sep/r':>7} {'ed':>8} "
          f"{'half/end':>9} {'restarts':>8} {'s':>7}")  # fmt: skip
    out = []
    with tempfile.TemporaryDirectory(prefix="sparse_fleet_") as tmp:
        for n in sizes:
            out.append(run_size(n, Path(tmp)))
    for r in out:
        for key, row in r["losses"].items():
            print(f"n = {r['n']}: {key}: survivors' cost / fresh fleet's = {row['over_fresh']:.3f}, every "
                  f"survivor's restart in the events: {row['survivors_restarted']}")  # fmt: skip
    info = {"machine": platform.processor() or platform.machine(), "python": platform.python_version(),
            "scenario": str(SCENARIO.relative_to(ROOT))}  # fmt: skip
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps({"info": info, "sizes": out}, indent=1))
        print(f"\nwrote {json_path}")
