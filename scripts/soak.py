"""Soak: a fleet under continual random kills and restarts, with memory and descriptors sampled.

    python scripts/soak.py [--agents 30] [--minutes 10] [--every 5] [--kill 0.1] [--out DIR]

Runs ``swarmcover launch`` on a generated scenario (real time, ``--agents`` robots) whose failure
schedule SIGKILLs a random ``--kill`` fraction of the agent processes every ``--every`` seconds
and restarts every dead one half a period later. Every 10 s it samples, from ``/proc``, the
launcher's (the simulator's) resident memory and open file descriptors, and the agents' (count,
total memory, total descriptors). Prints a table, writes ``soak.json`` into the output folder,
and says whether the launcher's memory and descriptors stayed flat (last sample within 10 % /
+5 of the first after warm-up). Linux only (``/proc``). Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def scenario(agents: int, seconds: float, every: float, kill: float) -> str:
    lines = [
        'description = "soak: random SIGKILLs and restarts"',
        f"duration = {seconds:.1f}",
        "[domain]",
        "bounds = [[0.0, 10.0], [0.0, 6.0]]",
        "[target]",
        'kind = "mixture"',
        "means = [[3.0, 3.5], [7.5, 2.5]]",
        "covs = [1.0, 1.5]",
        "[fleet]",
        f"size = {agents}",
        'deploy = "random"',
        "[control]",
        "speed_limit = 1.5",
        "[render]",
        "enabled = false",
    ]
    t = every
    while t < seconds - every:
        lines += ["[[failures]]", f"t = {t:.2f}", 'kind = "kill"', f"fraction = {kill}"]
        lines += ["[[failures]]", f"t = {t + every / 2:.2f}", 'kind = "restart"', "fraction = 1.0"]
        t += every
    return "\n".join(lines) + "\n"


def proc_stats(pid: int) -> tuple[int, int] | None:
    """(resident kB, open descriptors) of ``pid``, or None if it is gone."""
    try:
        rss = next(int(line.split()[1]) for line in open(f"/proc/{pid}/status") if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (OSError, StopIteration):
        return None
    return rss, fds


def pids_mentioning(text: str, exclude: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != exclude:
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=30)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=5.0, help="seconds between kill rounds")
    ap.add_argument("--kill", type=float, default=0.1, help="fraction of the live agents killed each round")
    ap.add_argument("--out", default=f"runs/soak-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=False)
    scn = out / "soak.toml"
    scn.write_text(scenario(args.agents, args.minutes * 60, args.every, args.kill))
    run = out / "run"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", str(scn), "--headless", "--out", str(run),
           "--progress", "60"]  # fmt: skip
    launcher = subprocess.Popen(cmd, env=env, start_new_session=True)
    samples = []
    t0 = time.monotonic()
    print(
        f"{'t s':>6} {'sim MB':>8} {'sim fds':>8} {'agents':>7} {'agents MB':>10} {'agent fds':>10}",
        flush=True,
    )
    try:
        while launcher.poll() is None:
            time.sleep(10.0)  # the sampling period (nothing to wait on: this is a clock)
            own = proc_stats(launcher.pid)
            if own is None:
                break
            agents = [s for p in pids_mentioning(str(run / "agents"), launcher.pid) if (s := proc_stats(p))]
            row = {"t": round(time.monotonic() - t0, 1), "sim_rss_kb": own[0], "sim_fds": own[1],
                   "agents": len(agents), "agents_rss_kb": sum(a[0] for a in agents),
                   "agents_fds": sum(a[1] for a in agents)}  # fmt: skip
            samples.append(row)
            print(f"{row['t']:6.0f} {row['sim_rss_kb'] / 1024:8.1f} {row['sim_fds']:8d} {row['agents']:7d} "
                  f"{row['agents_rss_kb'] / 1024:10.1f} {row['agents_fds']:10d}", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        os.killpg(launcher.pid, signal.SIGINT)
    launcher.wait()
    summary = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
    kinds: dict[str, int] = {}
    for e in summary.get("events", []):
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    # steady state: after a minute of warm-up, while agents run (not the report at the end)
    warm = [s for s in samples if s["t"] >= 60 and s["agents"] > 0] or samples
    flat = None
    if len(warm) >= 2:
        a = warm[0]
        flat = all(
            s["sim_rss_kb"] <= 1.1 * a["sim_rss_kb"] and s["sim_fds"] <= a["sim_fds"] + 5 for s in warm
        )
    result = {
        "args": vars(args),
        "samples": samples,
        "events": kinds,
        "launcher_exit": launcher.returncode,
        "sim_flat_after_warmup": flat,
        "sim_rss_mb_range": [
            min(s["sim_rss_kb"] for s in warm) / 1024,
            max(s["sim_rss_kb"] for s in warm) / 1024,
        ]
        if warm
        else None,
        "sim_fds_range": [min(s["sim_fds"] for s in warm), max(s["sim_fds"] for s in warm)] if warm else None,
        "leftover_processes": pids_mentioning(str(run), os.getpid()),
    }
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    print(f"events: {kinds}")
    print(f"simulator memory and descriptors flat after warm-up: {flat}; leftover processes: "
          f"{result['leftover_processes']}; written {out / 'soak.json'}")  # fmt: skip
    return 0 if flat and not result["leftover_processes"] and launcher.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
