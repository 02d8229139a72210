"""A planned deployment against coverage alone, through the fleet of agent processes.

Runs ``swarmcover launch launch/deploy.toml --headless`` (lockstep) with ``deploy.plan`` =
"transport" and "none" (and coverage alone for ``--long`` world seconds), one launch at a time,
and reads each run's summary.json: final energy distance and Lloyd cost, the fleet's total
distance travelled, and the world time (and distance) at which the energy distance first fell
below the planned run's final value.

    python benchmarks/deploy.py [--long 240] [--json benchmarks/results/deploy.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402

SCENARIO = ROOT / "launch" / "deploy.toml"


def launch(out: Path, *sets: str, duration: float | None = None) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "swarmcover_cli.main",
        "launch",
        str(SCENARIO),
        "--headless",
        "--out",
        str(out),
    ]
    for s in sets:
        cmd += ["--set", s]
    if duration is not None:
        cmd += ["--duration", str(duration)]
    done = subprocess.run(cmd, capture_output=True, text=True, env={"SDL_VIDEODRIVER": "dummy", **_env()})
    if done.returncode != 0:
        raise SystemExit(f"launch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads((out / "summary.json").read_text())


def _env() -> dict:
    return dict(os.environ)


def row(name: str, s: dict, level: float | None) -> dict:
    m, f = s["metrics"], s["final"]
    reach = None
    if level is not None:
        for t, ed, dist in zip(m["t"], m["energy_distance"], m["distance"], strict=True):
            if ed is not None and ed <= level:
                reach = (t, dist)
                break
    return dict(run=name, world_s=f["t"], energy_distance=f["energy_distance"], lloyd_cost=f["lloyd_cost"],
                distance=f["distance_travelled"], reached_t=None if reach is None else reach[0],
                reached_distance=None if reach is None else reach[1], wall_s=s["wall_seconds"])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=float, default=240.0, help="world seconds of the long coverage-alone run")
    ap.add_argument("--json", default="benchmarks/results/deploy.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        planned = launch(Path(tmp) / "planned", 'deploy.plan="transport"')
        level = planned["final"]["energy_distance"]
        rows = [row("planned (transport), then coverage", planned, level)]
        alone = launch(Path(tmp) / "alone", 'deploy.plan="none"')
        rows.append(row("coverage alone", alone, level))
        longer = launch(Path(tmp) / "long", 'deploy.plan="none"', duration=args.long)
        rows.append(row(f"coverage alone, {args.long:g} s", longer, level))
    print(f"{'run':38} {'world s':>7} {'energy dist':>11} {'Lloyd':>7} {'distance':>9} {'reached':>8}")
    for r in rows:
        reached = "never" if r["reached_t"] is None else f"{r['reached_t']:.0f} s"
        print(f"{r['run']:38} {r['world_s']:>7.0f} {r['energy_distance']:>11.4f} {r['lloyd_cost']:>7.3f} "
              f"{r['distance']:>9.1f} {reached:>8}")  # fmt: skip
    base = rows[1]["distance"]
    ratio = rows[0]["distance"] / base
    print(f"distance, planned / coverage alone (same {rows[0]['world_s']:.0f} s): {ratio:.3f}")
    write_results(args.json, rows, scenario=str(SCENARIO.relative_to(ROOT)),
                  note="reached: first world time at the planned run's final energy distance")  # fmt: skip


if __name__ == "__main__":
    main()
