"""Fleet benchmark: N agent processes and the simulator in real time, as ``swarmcover launch`` runs them.

For each N: a uniform target on a square sized so that every robot has about the same number of
neighbours at any N, robots placed at random, the real-time clock at ``--hz`` states per second,
CURVE on (the default), for ``--seconds`` of wall time after every agent has joined. It reports:
the achieved control rate per agent (commands per second: median and 1st percentile), the
sense-to-command latency measured by the simulator (median, p99), the fraction of states whose
command came back within one tick, radio messages per second, agent start-up time, and CPU and
resident memory of the simulator's process and of the agents (sampled from ``/proc`` every
second while the world runs). Prints a table, writes JSON, and plots latency against N.

    python benchmarks/fleet.py [--agents 25 50 100] [--hz 10] [--seconds 20]
                               [--json benchmarks/results/fleet.json] [--plot benchmarks/results/fleet.png]

Linux only (``/proc``). Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK")


def scenario(n: int, hz: float, seconds: float) -> str:
    side = math.sqrt(n)  # one robot per unit area: the same neighbourhoods at every N
    return (
        "\n".join(
            [
                f'description = "fleet benchmark, {n} robots at {hz:g} Hz"',
                f"duration = {seconds:.1f}",
                "seed = 1",
                "[domain]",
                f"bounds = [[0.0, {side:.4f}], [0.0, {side:.4f}]]",
                "[fleet]",
                f"size = {n}",
                'deploy = "random"',
                "[control]",
                "speed_limit = 0.5",
                f"tick = {1.0 / hz:.6f}",
                "[render]",
                "enabled = false",
                "[simulator]",
                "wait_for_agents_wall = 600.0",
                "metrics_every = 5.0",
            ]
        )
        + "\n"
    )


def cpu_rss(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used so far, resident kB) of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = next(
            int(x.split()[1])
            for x in Path(f"/proc/{pid}/status").read_text().splitlines()
            if x.startswith("VmRSS:")
        )
    except (OSError, StopIteration, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK, rss


def agent_pids(run: Path) -> list[int]:
    out = []
    needle = str(run / "agents").encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if needle in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def one(n: int, hz: float, seconds: float, work: Path) -> dict:
    scn = work / f"fleet_{n}.toml"
    scn.write_text(scenario(n, hz, seconds))
    run = work / f"run_{n}"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    cmd = [
        sys.executable,
        "-m",
        "swarmcover_cli.main",
        "launch",
        str(scn),
        "--headless",
        "--out",
        str(run),
        "--progress",
        "3600",
    ]
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    events = run / "recording" / "events.jsonl"
    joined_at = None
    samples = []
    while p.poll() is None:
        time.sleep(1.0)  # the sampling clock
        if joined_at is None and events.exists():
            text = events.read_text()
            if text.count('"kind": "start"') and text.count('"kind": "joined"') >= n:
                joined_at = time.monotonic() - t0
        if joined_at is None:
            continue
        sim = cpu_rss(p.pid)
        agents = [s for a in agent_pids(run) if (s := cpu_rss(a))]
        if sim and agents:
            samples.append((time.monotonic(), sim, agents))
    err = p.stderr.read().decode()[-2000:] if p.stderr else ""
    if p.returncode != 0 or not (run / "summary.json").exists():
        raise RuntimeError(f"launch of {n} agents failed ({p.returncode}): {err}")
    s = json.loads((run / "summary.json").read_text())
    world_s = s["final"]["t"]
    wall_run = world_s  # time_scale 1: a world second is a wall second
    per_agent_rate = np.array(
        [((a.get("counters") or {}).get("commands", 0)) / wall_run for a in s["agents"]]
    )
    cpu = {}
    if len(samples) >= 3:
        (ta, sa, aa), (tb, sb, ab) = samples[1], samples[-1]
        dt = tb - ta
        cpu = {
            "sim_cores": (sb[0] - sa[0]) / dt,
            "agents_cores": (sum(x[0] for x in ab) - sum(x[0] for x in aa)) / dt,
            "sim_rss_mb": sb[1] / 1024,
            "agent_rss_mb_median": float(np.median([x[1] for x in ab])) / 1024,
        }
    t = s["timing"]
    return {
        "agents": n,
        "hz": hz,
        "joined_after_s": joined_at,
        "world_s": world_s,
        "control_rate_hz_median": float(np.median(per_agent_rate)),
        "control_rate_hz_p1": float(np.percentile(per_agent_rate, 1)),
        "latency_ms_median": t["latency_ms_median"],
        "latency_ms_p99": t["latency_ms_p99"],
        "on_time_fraction": t["on_time_fraction"],
        "radio_messages_per_s": (s["messages"]["sent"] + s["messages"]["delivered"]) / wall_run,
        **cpu,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, nargs="+", default=[25, 50, 100])
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fleet.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "results" / "fleet.png"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.agents:
            rows.append(one(n, args.hz, args.seconds, Path(tmp)))
            r = rows[-1]
            print(
                f"{n:>5} agents: joined {r['joined_after_s']:.1f} s, "
                f"rate {r['control_rate_hz_median']:.2f} Hz "
                f"(p1 {r['control_rate_hz_p1']:.2f}), latency {r['latency_ms_median']:.2f} / "
                f"{r['latency_ms_p99']:.2f} ms, on time {100 * r['on_time_fraction']:.2f} %",
                flush=True,
            )
    hdr = (
        f"{'agents':>6} {'Hz':>4} {'join s':>7} {'rate med':>8} {'rate p1':>8} {'lat med ms':>10} "
        f"{'lat p99 ms':>10} {'on time':>8} {'radio/s':>9} {'sim cores':>9} {'agent cores':>11} "
        f"{'sim MB':>7} {'agent MB':>8}"
    )
    print(hdr)
    for r in rows:
        print(
            f"{r['agents']:6d} {r['hz']:4g} {r['joined_after_s']:7.1f} {r['control_rate_hz_median']:8.2f} "
            f"{r['control_rate_hz_p1']:8.2f} {r['latency_ms_median']:10.2f} {r['latency_ms_p99']:10.2f} "
            f"{100 * r['on_time_fraction']:7.2f}% {r['radio_messages_per_s']:9.0f} "
            f"{r.get('sim_cores', math.nan):9.2f} "
            f"{r.get('agents_cores', math.nan):11.2f} {r.get('sim_rss_mb', math.nan):7.0f} "
            f"{r.get('agent_rss_mb_median', math.nan):8.0f}"
        )
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "args": vars(args),
        "rows": rows,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r["agents"] for r in rows]
    ax.plot(ns, [r["latency_ms_median"] for r in rows], "o-", label="median")
    ax.plot(ns, [r["latency_ms_p99"] for r in rows], "s-", label="p99")
    ax.axhline(1000 / args.hz, color="grey", ls=":", label="one tick")
    ax.set_xlabel("agents")
    ax.set_ylabel("sense-to-command latency (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{args.hz:g} Hz, {os.cpu_count()} cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.plot, dpi=90)
    print(f"wrote {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
