"""Fleet benchmark: N agent processes and the simulator in real time, as ``swarmcover launch`` runs them.

For each case ``N@HZ``: a uniform target on a square sized so that every robot has about the same number of
neighbours at any N, robots placed at random, the real-time clock at ``--hz`` states per second,
CURVE on (the default; ``--insecure``: off), for ``--seconds`` of wall time after every agent has
joined. It reports: the achieved control rate per agent (commands per second answering the
latest state, counted by the simulator: median and 1st percentile), the
sense-to-command latency measured by the simulator (median, p99), the fraction of states whose
command came back within one tick (and so the fraction late), radio messages per second (beacons
handed to the radio and copies delivered; each state carries its agent's copies), agent start-up
time, and CPU and memory of the simulator's process and of the agents (CPU read from ``/proc``
2 s into the world and 2 s before its end; resident and proportional set sizes read once, at
the second reading, of the simulator and of ``MEMORY_SAMPLE`` agents: the median agent, and
the total as that median times N). A case whose agents
would not fit in the free memory (``--agent-mb`` each) is skipped and reported as such. Prints a
table, writes JSON, and plots latency against N.

    python benchmarks/fleet.py [--cases 25@10 50@10 100@10 200@10 400@10 100@20] [--seconds 20]
                               [--json benchmarks/results/fleet.json] [--plot benchmarks/results/fleet.png]
                               [--agent-command 'PROGRAM ... {config}'] [--set KEY=VALUE ...] [--insecure]

``--agent-command`` runs another agent program in place of ours (anything that speaks
``docs/protocol.md``, in any language); ``benchmarks/floor_agent.py`` is the least such a program
can do (answer every state with a zero command), which measures what the simulator, the protocol
and one process per robot cost on this machine before any law is computed. ``--set`` passes
scenario overrides to ``swarmcover launch`` (e.g. the simulator's endpoint, to compare transports);
``--insecure`` runs the fleet without CURVE (plaintext), to see what the encryption costs.

Linux only (``/proc``). Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from swarmcover.launcher.processes import processes_mentioning

ROOT = Path(__file__).resolve().parents[1]
CLK = os.sysconf("SC_CLK_TCK")
MEMORY_SAMPLE = 8  # agents whose memory is read (each read walks the process's page tables)
DEFAULT_CASES = "25@10 50@10 100@10 200@10 400@10 100@20"


def scenario(n: int, hz: float, seconds: float, agent_command: list[str] | None = None) -> str:
    side = math.sqrt(n)  # one robot per unit area: the same neighbourhoods at every N
    agents = [] if agent_command is None else ["[agents]", f"command = {json.dumps(agent_command)}"]
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
                *agents,
            ]
        )
        + "\n"
    )


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds ``pid`` has used so far (``/proc/PID/stat``: tens of microseconds to read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK
    except (OSError, IndexError, ValueError):
        return None


def rss_pss(pid: int) -> tuple[int, int] | None:
    """(resident kB, proportional kB) of ``pid``. ``smaps_rollup`` walks the process's page
    tables: about half a millisecond of kernel time per agent, so it is read for a few only."""
    try:
        roll = {
            x.split()[0]: int(x.split()[1])
            for x in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
            if len(x.split()) >= 2 and x.split()[1].isdigit()
        }
    except (OSError, IndexError, ValueError):
        return None
    return roll.get("Rss:", 0), roll.get("Pss:", 0)


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return math.inf


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def agent_pids(run: Path) -> list[int]:
    return processes_mentioning(str(run / "agents"))


def one(
    n: int,
    hz: float,
    seconds: float,
    work: Path,
    limit_s: float,
    agent_command: list[str] | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    insecure: bool = False,
) -> dict:
    scn = work / f"fleet_{n}_{hz:g}hz.toml"
    scn.write_text(scenario(n, hz, seconds, agent_command))
    run = work / f"run_{n}_{hz:g}hz"
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")
    cmd = [
        sys.executable,
        "-m",
        "swarmcover.cli.main",
        "launch",
        str(scn),
        "--headless",
        "--out",
        str(run),
        "--progress",
        "3600",
        *(f"--set={o}" for o in overrides),
        *(["--insecure"] if insecure else []),
    ]
    t0 = time.monotonic()
    p = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    events = run / "recording" / "events.jsonl"
    joined_at = None
    samples = []  # (monotonic, simulator CPU s, {agent pid: CPU s}): two, while the world runs
    memory = None
    while p.poll() is None:
        time.sleep(1.0)  # the polling clock
        if time.monotonic() - t0 > limit_s:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
            raise RuntimeError(f"{n} agents at {hz:g} Hz: not done after {limit_s:.0f} s")
        if joined_at is None and events.exists():
            text = events.read_text()
            if text.count('"kind": "start"') and text.count('"kind": "joined"') >= n:
                joined_at = time.monotonic() - t0
        if joined_at is None:
            continue
        # CPU read twice only, 2 s into the world and 2 s before its end, and memory once, of a
        # few agents: reading every agent's /proc each second was a burst of kernel work (about
        # 0.1 s a second at 200 agents) on the machine being measured, in its latency tail
        into = time.monotonic() - t0 - joined_at
        first = not samples and into >= min(2.0, seconds / 4)
        second = len(samples) == 1 and into >= max(seconds - 2.0, seconds * 3 / 4)
        if first or second:
            sim = cpu_seconds(p.pid)
            agents = {a: c for a in agent_pids(run) if (c := cpu_seconds(a)) is not None}
            if sim is not None and agents:
                samples.append((time.monotonic(), sim, agents))
                if len(samples) == 2:
                    memory = (
                        rss_pss(p.pid),
                        [m for a in sorted(agents)[:MEMORY_SAMPLE] if (m := rss_pss(a))],
                    )
    err = p.stderr.read().decode()[-2000:] if p.stderr else ""
    if p.returncode != 0 or not (run / "summary.json").exists():
        raise RuntimeError(f"launch of {n} agents failed ({p.returncode}): {err}")
    s = json.loads((run / "summary.json").read_text())
    world_s = s["final"]["t"]
    wall_run = world_s  # time_scale 1: a world second is a wall second
    # counted by the simulator (any agent program): first commands answering the latest state
    per_agent_rate = np.array([a["answered"] / wall_run for a in s["agents"]])
    reported = [(a.get("counters") or {}).get("commands") for a in s["agents"]]
    cpu = {}
    if len(samples) == 2:
        (ta, sa, aa), (tb, sb, ab) = samples  # both while the world ran
        dt = tb - ta
        both = [a for a in ab if a in aa]  # the same processes at both ends
        cpu = {"sim_cores": (sb - sa) / dt, "agents_cores": sum(ab[a] - aa[a] for a in both) / dt}
    if memory is not None and memory[0] and memory[1]:
        rss = float(np.median([m[0] for m in memory[1]])) / 1024
        pss = float(np.median([m[1] for m in memory[1]])) / 1024
        cpu |= {
            "sim_rss_mb": memory[0][0] / 1024,
            "agent_rss_mb_median": rss,
            "agent_pss_mb_median": pss,
            "agents_pss_mb_total": pss * n,  # the median of the sample times n
            "memory_sampled_agents": len(memory[1]),
        }
    t = s["timing"]
    return {
        "agents": n,
        "hz": hz,
        "joined_after_s": joined_at,
        "world_s": world_s,
        "control_rate_hz_median": float(np.median(per_agent_rate)),
        "control_rate_hz_p1": float(np.percentile(per_agent_rate, 1)),
        # what the agents say they sent (their bye counters; superseded states' answers included)
        "commands_reported_hz_median": (
            float(np.median(reported) / wall_run) if all(r is not None for r in reported) else None
        ),
        "latency_ms_median": t["latency_ms_median"],
        "latency_ms_p99": t["latency_ms_p99"],
        "on_time_fraction": t["on_time_fraction"],
        "late_fraction": 1.0 - t["on_time_fraction"],
        "states_sent": t["states_sent"],
        "answered": t["answered"],
        "radio_messages_per_s": (s["messages"]["sent"] + s["messages"]["delivered"]) / wall_run,
        **cpu,
    }


def parse_case(text: str) -> tuple[int, float]:
    n, _, hz = text.partition("@")
    try:
        out = int(n), float(hz or 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a case is N@HZ (e.g. 200@10), got {text!r}") from None
    if out[0] < 2 or out[1] <= 0:
        raise argparse.ArgumentTypeError(f"a case needs N >= 2 and HZ > 0, got {text!r}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--cases", type=parse_case, nargs="+", default=[parse_case(c) for c in DEFAULT_CASES.split()]
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument(
        "--agent-mb", type=float, default=35.0, help="memory to plan per agent process (measured PSS: 26 MB)"
    )
    ap.add_argument(
        "--agent-command",
        help="run this agent program instead of ours (the scenario's agents.command: a shell-style "
        "string containing {config}, e.g. 'python my_agent.py {config}')",
    )
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scenario override passed to `swarmcover launch --set` (repeatable), e.g. "
        "--set 'simulator.endpoint=\"ipc:///tmp/sc.sock\"'",
    )
    ap.add_argument(
        "--insecure", action="store_true", help="plaintext links (launch --insecure): what CURVE costs"
    )
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "fleet.json"))
    ap.add_argument("--plot", default=str(ROOT / "benchmarks" / "results" / "fleet.png"))
    args = ap.parse_args()
    agent_command = None
    if args.agent_command is not None:
        agent_command = shlex.split(args.agent_command)
        if not any("{config}" in part for part in agent_command):
            ap.error("--agent-command must contain {config} (where the agent's config file goes)")
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, hz in args.cases:
            need, free = n * args.agent_mb + 1024, mem_available_mb()
            if need > 0.9 * free:
                why = f"needs about {need / 1024:.1f} GB, {free / 1024:.1f} GB available"
                skipped.append({"agents": n, "hz": hz, "why": why})
                print(f"{n:>5} agents at {hz:g} Hz: skipped ({why})", flush=True)
                continue
            try:
                rows.append(
                    one(
                        n,
                        hz,
                        args.seconds,
                        Path(tmp),
                        limit_s=120 + 1.5 * n + 3 * args.seconds,
                        agent_command=agent_command,
                        overrides=args.overrides,
                        insecure=args.insecure,
                    )
                )
            except RuntimeError as exc:
                skipped.append({"agents": n, "hz": hz, "why": str(exc)})
                print(f"{n:>5} agents at {hz:g} Hz: failed ({exc})", flush=True)
                continue
            r = rows[-1]
            print(
                f"{n:>5} agents at {hz:g} Hz: joined {r['joined_after_s']:.1f} s, "
                f"rate {r['control_rate_hz_median']:.2f} Hz "
                f"(p1 {r['control_rate_hz_p1']:.2f}), latency {r['latency_ms_median']:.2f} / "
                f"{r['latency_ms_p99']:.2f} ms, on time {100 * r['on_time_fraction']:.2f} %",
                flush=True,
            )
    hdr = (
        f"{'agents':>6} {'Hz':>4} {'join s':>7} {'rate med':>8} {'rate p1':>8} {'lat med ms':>10} "
        f"{'lat p99 ms':>10} {'on time':>8} {'radio/s':>9} {'sim cores':>9} {'agent cores':>11} "
        f"{'sim MB':>7} {'agent MB':>8} {'agent PSS':>9}"
    )
    print(hdr)
    for r in rows:
        print(
            f"{r['agents']:6d} {r['hz']:4g} {r['joined_after_s']:7.1f} {r['control_rate_hz_median']:8.2f} "
            f"{r['control_rate_hz_p1']:8.2f} {r['latency_ms_median']:10.2f} {r['latency_ms_p99']:10.2f} "
            f"{100 * r['on_time_fraction']:7.2f}% {r['radio_messages_per_s']:9.0f} "
            f"{r.get('sim_cores', math.nan):9.2f} "
            f"{r.get('agents_cores', math.nan):11.2f} {r.get('sim_rss_mb', math.nan):7.0f} "
            f"{r.get('agent_rss_mb_median', math.nan):8.0f} {r.get('agent_pss_mb_median', math.nan):9.0f}"
        )
    for sk in skipped:
        print(f"{sk['agents']:6d} {sk['hz']:4g}  not run: {sk['why']}")
    out = {
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": cpu_model(),
            "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "args": {**vars(args), "cases": [f"{n}@{hz:g}" for n, hz in args.cases]},
        "rows": rows,
        "skipped": skipped,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for hz in sorted({r["hz"] for r in rows}):
        sel = [r for r in rows if r["hz"] == hz]
        ns = [r["agents"] for r in sel]
        (line,) = ax.plot(ns, [r["latency_ms_median"] for r in sel], "o-", label=f"median, {hz:g} Hz")
        ax.plot(
            ns, [r["latency_ms_p99"] for r in sel], "s--", color=line.get_color(), label=f"p99, {hz:g} Hz"
        )
        ax.axhline(1000 / hz, color=line.get_color(), ls=":", lw=1)
    ax.axhline(20, color="grey", ls="-.", lw=1, label="20 ms goal")
    ax.set_xlabel("agents")
    ax.set_ylabel("sense-to-command latency (ms)")
    ax.set_yscale("log")
    ax.set_title(f"{os.cpu_count()} cores; dotted: one tick")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=90)
    print(f"wrote {args.json} and {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
