"""The same scenario launched plainly and with its agents placed by Ray, side by side.

Starts a local Ray cluster of two nodes on this machine (``ray start --head`` and a second
``ray start`` on loopback, ``--cpus`` CPUs each; or uses ``--address`` of a running one), then
runs ``swarmcover launch FILE --headless`` ``--repeat`` times each way, alternating (plain, then
``--cluster ray://ADDRESS``), and reads each run's summary.json: final energy
distance, commands within a tick, latency median and p99, the launch's wall time, and how many
agents each node ran.
The local cluster is torn down afterwards. Needs the ``ray`` extra.

    python benchmarks/cluster.py [--scenario launch/quickstart.toml] [--repeat 3]
        [--set cluster.cpus_per_agent=0.1] [--json benchmarks/results/cluster.json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(cpus: int, tmp: Path) -> str:
    """A head and one worker node on this machine; returns the head's address."""
    ray = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TMPDIR": str(tmp)}
    address = f"127.0.0.1:{_free_port()}"
    common = [f"--num-cpus={cpus}", "--object-store-memory=78643200", "--disable-usage-stats"]
    head = [ray, "start", "--head", f"--port={address.split(':')[1]}", f"--temp-dir={tmp}"]
    subprocess.run([*head, "--include-dashboard=false", *common], env=env, check=True, capture_output=True)
    subprocess.run([ray, "start", f"--address={address}", *common], env=env, check=True, capture_output=True)
    return address


def stop_cluster(tmp: Path) -> None:
    """Every process that mentions the cluster's temp dir, and their children (Ray's workers)."""
    from swarmcover.launcher.processes import processes_mentioning

    pids = set(processes_mentioning(str(tmp)))
    for d in Path("/proc").iterdir():  # the daemons' children (their command lines are renamed)
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) in pids:
                pids.add(int(d.name))
        except (OSError, IndexError, ValueError):
            continue
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def launch(scenario: str, out: Path, sets: list[str], cluster: str | None) -> dict:
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", scenario, "--headless", "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    if cluster is not None:
        cmd += ["--cluster", cluster]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"launch failed ({done.returncode}):\n{done.stderr[-3000:]}")
    s = json.loads((out / "summary.json").read_text())
    nodes = Counter(a.get("node", "this machine")[:8] for a in s["agents"])
    return {
        "placed": "ray" if cluster else "plain",
        "wall_s": round(time.monotonic() - t0, 2),
        "energy_distance": s["final"]["energy_distance"],
        "initial_energy_distance": s["final"]["initial_energy_distance"],
        "within_a_tick": s["timing"]["on_time_fraction"],
        "latency_ms_median": s["timing"]["latency_ms_median"],
        "latency_ms_p99": s["timing"]["latency_ms_p99"],
        "agents_per_node": dict(nodes),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=str(ROOT / "launch" / "quickstart.toml"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs of each local node")
    ap.add_argument("--address", help="a running cluster's head (else a local one is started)")
    ap.add_argument("--set", dest="sets", action="append", default=["cluster.cpus_per_agent=0.1"])
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "cluster.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scbench", dir="/tmp"))
    address = args.address or start_cluster(args.cpus, tmp)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as runs:
            for k in range(args.repeat):
                for placed in ("plain", "ray"):
                    out = Path(runs) / f"{placed}{k}"
                    cluster = f"ray://{address}" if placed == "ray" else None
                    r = launch(args.scenario, out, args.sets, cluster)
                    rows.append(r)
                    print(
                        f"{placed:5s} run {k}: energy distance {r['initial_energy_distance']:.3f} -> "
                        f"{r['energy_distance']:.4f}, within a tick {100 * r['within_a_tick']:.2f} %, "
                        f"latency {r['latency_ms_median']:.2f} / {r['latency_ms_p99']:.2f} ms, "
                        f"nodes {r['agents_per_node']}"
                    )
    finally:
        if args.address is None:
            stop_cluster(tmp)
    print("\n| placed | energy distance (median) | within a tick (median) | latency median / p99 (medians) |")
    print("|---|---:|---:|---:|")
    for placed in ("plain", "ray"):
        rs = [r for r in rows if r["placed"] == placed]
        keys = ("energy_distance", "within_a_tick", "latency_ms_median", "latency_ms_p99")
        med = {k: statistics.median(r[k] for r in rs) for k in keys}
        print(
            f"| {placed} | {med['energy_distance']:.4f} | {100 * med['within_a_tick']:.2f} % | "
            f"{med['latency_ms_median']:.2f} / {med['latency_ms_p99']:.2f} ms |"
        )
    write_results(args.json, rows, scenario=args.scenario, sets=args.sets, repeat=args.repeat)


if __name__ == "__main__":
    main()
