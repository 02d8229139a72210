"""How fast a launched fleet stops: Ctrl-C (SIGINT), SIGTERM, and the launcher SIGKILLed outright.

Each repeat launches ``launch/quickstart.toml`` with 4 robots and a long duration, waits until
every agent has joined and the world is recording, sends the signal to the launcher and measures
the wall time until no process whose command line names the run folder is left (the launcher and
its agent processes). The tests check that everything stops and the folder is complete; the times
are measured here, not asserted there (a wall-clock bound in a test is a flaky test).

    python benchmarks/stop.py [--repeats 5] [--json benchmarks/results/stop.json]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402

from swarmcover.launcher.processes import processes_mentioning  # noqa: E402

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGKILL": signal.SIGKILL}


def _running(out: Path, n: int) -> bool:
    events = out / "recording" / "events.jsonl"
    if not events.exists():
        return False
    joined = 0
    for line in events.read_text().splitlines():
        try:
            joined += json.loads(line).get("kind") == "joined"
        except json.JSONDecodeError:  # the line being written
            break
    return joined >= n and any((out / "recording" / "chunks").glob("*.npz"))


def _poll(cond, limit: float, what: str) -> None:
    end = time.monotonic() + limit
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"gave up waiting for {what} after {limit} s")
        time.sleep(0.005)


def one(sig: signal.Signals, tmp: Path, i: int, size: int) -> float:
    out = tmp / f"{sig.name}-{i}"
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", str(ROOT / "launch" / "quickstart.toml")]
    cmd += ["--headless", "--duration", "600", "--set", f"fleet.size={size}", "--out", str(out)]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
    try:
        _poll(lambda: _running(out, size) or p.poll() is not None, 120, "the fleet to join")
        if p.poll() is not None:
            raise SystemExit(f"the launch ended early with {p.returncode}")
        t0 = time.monotonic()
        os.kill(p.pid, sig)
        _poll(lambda: not processes_mentioning(str(out)), 60, "every process to exit")
        return time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
        p.wait()
        for pid in processes_mentioning(str(out)):
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=4, help="robots in the fleet")
    ap.add_argument("--signals", nargs="+", default=list(SIGNALS), choices=list(SIGNALS))
    ap.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "stop.json"))
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.signals:
            took = [one(SIGNALS[name], Path(tmp), i, args.size) for i in range(args.repeats)]
            rows.append(dict(signal=name, robots=args.size, seconds=took, median=statistics.median(took)))
    print(f"{'signal to the launcher':<24}{'robots':>7}{'median s':>10}{'max s':>8}  runs")
    for r in rows:
        runs = " ".join(f"{t:.2f}" for t in r["seconds"])
        print(f"{r['signal']:<24}{r['robots']:>7}{r['median']:>10.2f}{max(r['seconds']):>8.2f}  {runs}")
    write_results(args.json, rows, repeats=args.repeats)


if __name__ == "__main__":
    main()
