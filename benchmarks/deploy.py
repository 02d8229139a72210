"""A planned deployment against coverage alone, through the fleet of agent processes.

Runs ``swarmcover launch launch/deploy.toml --headless`` (lockstep) with ``deploy.plan`` =
"transport" and "none", for the scenario's duration and for ``--long`` world seconds, one launch
at a time, and reads each run's summary.json: final energy distance and Lloyd cost, the fleet's
total distance travelled, and the world time (and distance) at which the energy distance first
fell to coverage alone's final value. Two comparisons per duration: distance in the same time, and
distance to the same coverage.

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
        "swarmcover.cli.main",
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


def first_reach(s: dict, level: float) -> tuple[float, float] | None:
    """The first sampled world time at which the energy distance is at most ``level``, and the fleet's
    distance travelled by then."""
    m = s["metrics"]
    for t, ed, dist in zip(m["t"], m["energy_distance"], m["distance"], strict=True):
        if ed is not None and ed <= level:
            return t, dist
    return None


def row(name: str, s: dict, level: float) -> dict:
    f = s["final"]
    reach = first_reach(s, level)
    return dict(run=name, world_s=f["t"], energy_distance=f["energy_distance"], lloyd_cost=f["lloyd_cost"],
                distance=f["distance_travelled"], level=level, reached_t=None if reach is None else reach[0],
                reached_distance=None if reach is None else reach[1], wall_s=s["wall_seconds"])  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--long", type=float, default=240.0, help="world seconds of the long runs")
    ap.add_argument("--json", default="benchmarks/results/deploy.json")
    args = ap.parse_args()
    rows, pairs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for duration in (None, args.long):
            tag = "scenario's" if duration is None else f"{duration:g}"
            planned = launch(Path(tmp) / f"planned{tag}", 'deploy.plan="transport"', duration=duration)
            alone = launch(Path(tmp) / f"alone{tag}", 'deploy.plan="none"', duration=duration)
            # equal coverage: the level coverage alone ends at, and the distance each run needed to
            # reach it first
            level = alone["final"]["energy_distance"]
            pair = [row("planned (transport), then coverage", planned, level)]
            pair.append(row("coverage alone", alone, level))
            rows += pair
            pairs.append(pair)
    print(f"{'run':36} {'world s':>7} {'energy dist':>11} {'Lloyd':>7} {'distance':>9} "
          f"{'first at alone final':>21}")  # fmt: skip
    for r in rows:
        reached = "never"
        if r["reached_t"] is not None:
            reached = f"{r['reached_t']:.0f} s, {r['reached_distance']:.0f} m"
        print(f"{r['run']:36} {r['world_s']:>7.0f} {r['energy_distance']:>11.4f} {r['lloyd_cost']:>7.3f} "
              f"{r['distance']:>9.1f} {reached:>21}")  # fmt: skip
    for planned, alone in pairs:
        same_time = planned["distance"] / alone["distance"]
        same_cover = float("nan")
        if planned["reached_distance"] is not None:
            same_cover = planned["reached_distance"] / alone["reached_distance"]
        print(f"{planned['world_s']:.0f} s: distance planned / coverage alone, in the same time "
              f"{same_time:.3f}, to coverage alone's final energy distance ({alone['level']:.3f}) "
              f"{same_cover:.3f}")  # fmt: skip
    write_results(args.json, rows, scenario=str(SCENARIO.relative_to(ROOT)),
                  note="reached: first sampled world time (and distance) at coverage alone's final "
                  "energy distance")  # fmt: skip


if __name__ == "__main__":
    main()
