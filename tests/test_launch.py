"""`swarmcover launch`: scenario files, the launcher's processes, signals and the run folder.

Every run here is the real thing: the CLI in its own process, the simulator in it, one agent OS
process per robot on loopback ZeroMQ. Each test kills whatever it started, also when it fails
(the ``launches`` fixture), and checks the process table for leftovers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tomllib
from launching import assert_png, events_of, free_port, processes_mentioning, summary_of, wait_until

from swarmcover.agentspec import SimBody
from swarmcover.launcher.resolve import resolve
from swarmcover.launcher.scenario import load_scenario
from swarmcover.launcher.supervise import Supervisor
from swarmcover.simulator.world import Snapshot

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
DOCS = ROOT / "docs" / "scenarios.md"


# ---------------------------------------------------------------------------------------- helpers
@pytest.mark.integration
def test_another_agent_program_drives_the_fleet_over_the_wire_alone(tmp_path, launches):
    """``agents.command`` runs a program that is not ours (benchmarks/floor_agent.py: stdlib and
    pyzmq only, zero velocities) with CURVE on: every robot joins, each state is answered, the
    simulator counts the answers itself, the byes carry the program's counters, and the robots,
    commanded to stand still, end where they started."""
    floor = ROOT / "benchmarks" / "floor_agent.py"
    command = json.dumps([sys.executable, str(floor), "{config}"])
    scn = LAUNCH / "quickstart.toml"
    out = tmp_path / "run"
    rc, so, se = launches.run(
        str(scn), "--headless", "--set", f"agents.command={command}", "--set", "duration=3.0", out=out
    )
    assert rc == 0, (so[-3000:], se[-3000:])
    s = summary_of(out)
    n = s["fleet_size"]
    assert all(a["joined"] and a["fate"] == "completed" for a in s["agents"]), s["agents"]
    assert all(a["states"] > 0 and a["answered"] > 0 for a in s["agents"]), s["agents"]
    # its counters came back in its bye: it answered at least what the simulator counted
    assert all(a["counters"]["commands"] >= a["answered"] for a in s["agents"]), s["agents"]
    assert s["messages"]["rejected"] == 0 and s["messages"]["delivered"] > 0  # its beacons were relayed
    start = np.asarray(resolve(load_scenario(scn), scn).sim.positions)
    np.testing.assert_allclose(np.asarray(s["final"]["positions"]), start, atol=1e-12)
    assert s["final"]["alive"] == n and not processes_mentioning(str(out))


@pytest.mark.integration
def test_bad_command_line_is_named(tmp_path, launches):
    out = tmp_path / "run"
    rc, _, se = launches.run(str(LAUNCH / "quickstart.toml"), "--set", "fleet.size=many", out=out, timeout=60)
    assert rc == 2 and "fleet.size" in se and "quickstart.toml (with --set fleet.size=many)" in se, se
    rc, _, se = launches.run(str(tmp_path / "absent.toml"), out=out, timeout=60)
    assert rc == 2 and "scenario file not found" in se and "absent.toml" in se, se
    with socket.socket() as taken:  # a port someone else holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rc, _, se = launches.run(str(LAUNCH / "quickstart.toml"), "--headless", "--bind", f"tcp://127.0.0.1:{port}",
                                 out=tmp_path / "busy", timeout=60)  # fmt: skip
    assert rc == 2 and "cannot listen at" in se and "Traceback" not in se, se
    assert not processes_mentioning(str(tmp_path / "busy"))
    for program, why in (("/nonexistent/agent", "was not found at that path"),
                         ("no-such-agent-program", "was not found on PATH"),
                         (str(LAUNCH / "quickstart.toml"), "is not executable")):  # fmt: skip
        cmd = json.dumps([program, "{config}"])
        args = ("--headless", "--set", f"agents.command={cmd}")
        rc, _, se = launches.run(str(LAUNCH / "quickstart.toml"), *args, out=tmp_path / "nocmd", timeout=60)
        assert rc == 2 and f"agents.command: the program {program!r} {why}" in se and "Traceback" not in se, (
            se
        )
        assert not (tmp_path / "nocmd").exists()  # nothing started, nothing written
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    rc, _, se = launches.run(str(LAUNCH / "quickstart.toml"), "--headless", out=out, timeout=60)
    assert rc == 2 and "already exists and is not empty" in se, se
    assert (out / "keep.txt").read_text() == "precious" and sorted(os.listdir(out)) == ["keep.txt"]


# ---------------------------------------------------------------------------------------- runs
@pytest.mark.integration
def test_quickstart_runs_headless_end_to_end(tmp_path, launches):
    out = tmp_path / "run"
    t0 = time.monotonic()
    rc, so, se = launches.run(str(LAUNCH / "quickstart.toml"), "--headless", "--progress", "2", out=out)
    wall = time.monotonic() - t0
    assert rc == 0, (so[-3000:], se[-3000:])
    s = summary_of(out)
    n = load_scenario(LAUNCH / "quickstart.toml").fleet.size
    print(f"\nquickstart: {wall:.1f} s wall; {so.strip().splitlines()[-6]}")
    assert s["schema"] == "swarmcover.run-summary/1" and s["fleet_size"] == n and not s["interrupted"]
    pids = [a["pid"] for a in s["agents"]]
    assert sorted(a["id"] for a in s["agents"]) == list(range(n))
    assert len(set(pids)) == n and os.getpid() not in pids and s["launcher_pid"] not in pids
    assert all(a["fate"] == "completed" and a["joined"] for a in s["agents"]), s["agents"]
    # each agent said bye with its own counters before the world closed
    assert all(a["counters"] and a["counters"]["commands"] > 50 for a in s["agents"]), s["agents"]
    m = s["metrics"]
    assert {"t", "energy_distance", "lloyd_cost", "blob_energy", "alive", "underserved", "on_time"} <= set(m)
    assert len({len(v) for v in m.values()}) == 1 and len(m["t"]) >= 10
    assert all(0.0 <= v <= 1.0 for v in m["underserved"] + [v for v in m["on_time"] if v is not None])
    assert m["underserved"][-1] < m["underserved"][0] and s["final"]["underserved"] == m["underserved"][-1]
    assert "Hello from the pygame community" not in so + se  # pygame's greeting is not the run's output
    ed = m["energy_distance"]
    assert ed[-1] < 0.3 * ed[0], ed  # the fleet spread from its depot over the target
    assert m["lloyd_cost"][-1] < 0.2 * m["lloyd_cost"][0]
    assert s["final"]["alive"] == n and s["final"]["t"] == pytest.approx(16.0, abs=0.11)
    assert s["messages"]["delivered"] > 0 and s["messages"]["rejected"] == 0
    tm = s["timing"]  # measured, not judged here (speed is the benchmarks' business)
    assert 0 < tm["answered"] <= tm["states_sent"] and 0 < tm["latency_ms_median"] <= tm["latency_ms_p99"]
    # the simulator's own count per robot adds up to its totals
    assert all(a["states"] >= a["answered"] >= a["on_time"] >= 0 and a["answered"] > 0 for a in s["agents"])
    assert sum(a["states"] for a in s["agents"]) == tm["states_sent"]
    assert sum(a["answered"] for a in s["agents"]) == tm["answered"]
    assert sum(a["on_time"] for a in s["agents"]) == round(tm["on_time_fraction"] * tm["states_sent"])
    kinds = [e["kind"] for e in s["events"]]
    assert kinds.count("joined") == n and kinds.count("process_started") == n and "end" in kinds
    assert all("t" in e and "kind" in e for e in s["events"])
    assert assert_png(out / "final.png")[0] == 900 and assert_png(out / "metrics.png")[0] > 300
    from swarmcover.simulator.recording import load_recording

    rec = load_recording(out / "recording")
    assert rec.positions.shape[1:] == (n, 2) and rec.t[-1] == pytest.approx(s["final"]["t"])
    np.testing.assert_allclose(rec.positions[-1], s["final"]["positions"])
    assert (out / "scenario.toml").read_bytes() == (LAUNCH / "quickstart.toml").read_bytes()
    assert json.loads((out / "scenario.json").read_text())["decided"]["eps"] > 0
    assert len(list((out / "agents").glob("agent_*.json"))) == n
    cfg0 = json.loads((out / "agents" / "agent_0000.json").read_text())
    assert "insecure" not in cfg0 and cfg0["curve"]["secret_key"].endswith(
        "agent_0000.key_secret"
    )  # CURVE by default
    assert (Path(cfg0["curve"]["secret_key"]).stat().st_mode & 0o077) == 0
    end = next(e for e in s["events"] if e["kind"] == "end")
    assert end["counters"]["auth_denied"] == 0 and end["counters"]["impersonation"] == 0
    assert "energy distance" in so and "folder:" in so  # the text summary
    replay = subprocess.run([sys.executable, "-m", "swarmcover.cli.main", "replay", str(out), "--headless",
                             "--every", "4"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert len(list((out / "recording" / "replay").glob("frame_*.png"))) == 5  # t = 0, 4, 8, 12, 16
    gif = subprocess.run([sys.executable, "-m", "swarmcover.cli.main", "replay", str(out), "--gif",
                          str(tmp_path / "run.gif"), "--max-frames", "40"],
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert gif.returncode == 0, gif.stderr
    from PIL import Image

    with Image.open(tmp_path / "run.gif") as im:  # an animated GIF of the whole run, bounded
        assert im.format == "GIF" and im.is_animated and 20 <= im.n_frames <= 40 and im.width == 480
    assert (tmp_path / "run.gif").stat().st_size < 10e6
    assert not processes_mentioning(str(out)), "processes left behind"
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists()
            or b"swarmcover" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        )


def _small(tmp_path: Path, extra: str = "", size: int = 4) -> Path:
    """A small, quick scenario: quickstart with ``size`` robots and ``extra`` appended."""
    text = (LAUNCH / "quickstart.toml").read_text().replace("size = 12", f"size = {size}")
    assert tomllib.loads(text)["fleet"]["size"] == size
    p = tmp_path / "small.toml"
    p.write_text(text + extra)
    return p


def _threads(pid: int) -> list[int]:
    return [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]


def _stat(tid: int, field: int) -> int:
    """Field ``field`` of a thread's /proc/TID/stat (19: its nice value, 41: its scheduling policy)."""
    return int(Path(f"/proc/{tid}/stat").read_text().rsplit(")", 1)[1].split()[field - 3])


def _running(out: Path, n: int) -> bool:
    """All ``n`` agents joined and the world has been recording ticks (a chunk is on disk)."""
    joined = sum(e["kind"] == "joined" for e in events_of(out)) >= n
    return joined and any((out / "recording" / "chunks").glob("*.npz"))


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ctrl_c_stops_everything_and_leaves_a_complete_folder(sig, tmp_path, launches):
    out = tmp_path / "run"
    p = launches.start(str(_small(tmp_path)), "--headless", "--duration", "600", out=out)
    wait_until(lambda: _running(out, 4) or p.poll() is not None, 120, "the fleet to join and run")
    assert p.poll() is None, p.communicate()
    agents = [pid for pid in processes_mentioning(str(out)) if pid != p.pid]
    assert len(agents) == 4, agents
    # every thread of every agent (its ZeroMQ I/O thread too): 10 steps below the launcher, batch
    threads = [tid for pid in agents for tid in _threads(pid)]
    assert {(_stat(t, 19), _stat(t, 41)) for t in threads} == {(_stat(p.pid, 19) + 10, os.SCHED_BATCH)}
    t0 = time.monotonic()
    os.kill(p.pid, sig)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the launcher did not exit within 10 s of {sig.name}")
    # a guard against a hang, not a measurement: benchmarks/stop.py measures how fast (median 0.6 s)
    wait_until(lambda: not processes_mentioning(str(out)), 30.0, "every process to exit")
    print(f"\n{sig.name}: launcher and 4 agents gone {time.monotonic() - t0:.2f} s after the signal")
    assert p.returncode == 130
    s = summary_of(out)
    assert s["interrupted"] is True and s["final"]["t"] < 600
    assert s["events"][-1]["kind"] in ("interrupted", "end") and any(
        e["kind"] == "interrupted" for e in s["events"]
    )
    assert all(a["fate"] == "completed" for a in s["agents"])
    assert assert_png(out / "final.png") and assert_png(out / "metrics.png")
    from swarmcover.simulator.recording import load_recording

    rec = load_recording(out / "recording")
    assert len(rec.t) > 0 and rec.t[-1] <= s["final"]["t"] + 1e-9


@pytest.mark.integration
def test_killing_the_launcher_outright_takes_its_agents_with_it(tmp_path, launches):
    out = tmp_path / "run"
    p = launches.start(str(_small(tmp_path)), "--headless", "--duration", "600", out=out)
    wait_until(lambda: _running(out, 4) or p.poll() is not None, 120, "the fleet to join and run")
    assert p.poll() is None
    assert len(processes_mentioning(str(out))) == 5  # the launcher and four agents
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    t0 = time.monotonic()
    wait_until(
        lambda: not processes_mentioning(str(out)), 30.0, "the orphaned agents to exit"
    )  # a hang guard
    print(f"\nlauncher SIGKILLed: its agents gone after {time.monotonic() - t0:.2f} s")


FAILURES = """
[[failures]]
t = 3.0
kind = "kill"
ids = [0, 1]

[[failures]]
t = 4.0
kind = "terminate"
ids = [2]

[[failures]]
t = 7.0
kind = "restart"
ids = [0]
"""


@pytest.mark.integration
def test_a_restart_that_cannot_start_is_an_event_and_the_run_goes_on(tmp_path):
    """Agent 0's program (a real script) runs and exits; then it is deleted, so the scenario's
    ``restart`` cannot start it again: a ``restart_failed`` event that names why, no exception."""
    program = tmp_path / "agent.sh"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    cmd = json.dumps([str(program), "{config}"])
    restart = 'failures=[{t = 1.0, kind = "restart", fraction = 1.0}]'
    scn = load_scenario(LAUNCH / "quickstart.toml", [f"agents.command={cmd}", restart])
    rs = resolve(scn, LAUNCH / "quickstart.toml")
    events = []
    sup = Supervisor(rs, tmp_path / "run", lambda kind, a, **d: events.append((kind, a, d)), None)
    pool = sup.open_pool([0])
    config = rs.agent_config(0, SimBody(endpoint="tcp://127.0.0.1:9"))
    sup.start(0, config)
    pool.procs[0].popen.wait(30)
    program.unlink()
    snap = Snapshot(1.0, np.array([0]), np.zeros((1, 2)), np.zeros((1, 2)), np.zeros(1, np.uint8))
    sup.apply_failures(snap, lambda a: config)
    assert [k for k, _, _ in events] == ["process_started", "restart_failed"], events
    assert "agent 0: cannot start" in events[1][2]["error"] and str(program) in events[1][2]["error"]
    pool.shutdown()


@pytest.mark.integration
def test_failure_schedule_is_carried_out_with_real_signals(tmp_path, launches):
    out = tmp_path / "run"
    rc, so, se = launches.run(
        str(_small(tmp_path, FAILURES, size=6)), "--headless", "--duration", "14", out=out
    )
    assert rc == 0, (so[-3000:], se[-3000:])
    s = summary_of(out)
    ev = s["events"]
    by = {a["id"]: a for a in s["agents"]}

    def first(kind, agent):
        return next(e for e in ev if e["kind"] == kind and e.get("agent_id") == agent)

    for a in (0, 1):
        k = first("killed", a)
        assert (
            k["signal"] == "SIGKILL"
            and k["pid"] == by[a]["pids"][0]
            and k["t"] == pytest.approx(3.0, abs=0.11)
        )
        assert first("detected_failure", a)["t"] > k["t"]
    term = first("terminated", 2)
    assert term["signal"] == "SIGTERM" and first("bye", 2)["t"] >= term["t"]
    r = first("restarted", 0)
    assert r["pid"] == by[0]["pid"] != by[0]["pids"][0] and by[0]["restarts"] == 1
    assert first("rejoined", 0)["t"] >= r["t"]
    assert by[1]["fate"] == "killed" and by[1]["exit_code"] == -signal.SIGKILL
    assert by[2]["fate"] == "terminated" and by[2]["exit_code"] == 0
    assert by[0]["fate"] == "completed" and all(by[a]["fate"] == "completed" for a in (3, 4, 5))
    alive = dict(zip(s["metrics"]["t"], s["metrics"]["alive"], strict=True))
    assert alive[0.0] == 6 and min(alive.values()) == 3 and s["final"]["alive"] == 4
    assert not processes_mentioning(str(out))


@pytest.mark.integration
def test_simulator_and_agents_under_separate_launchers_over_tcp(tmp_path, launches):
    port = free_port()
    scn = str(_small(tmp_path))
    keys = tmp_path / "keys"  # made once for the fleet, as an operator would (CURVE across "hosts")
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "keys", "new", str(keys), "--fleet", "4"]
    made = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0 and (keys / "agents" / "agent_0003.key_secret").is_file(), made.stderr
    sim = launches.start(
        scn,
        "--keys",
        str(keys),
        "--headless",
        "--only",
        "sim",
        "--bind",
        f"tcp://127.0.0.1:{port}",
        "--duration",
        "6",
        out=tmp_path / "sim",
    )
    groups = [
        launches.start(
            scn,
            "--only",
            "agents",
            "--agents",
            ids,
            "--connect",
            f"tcp://127.0.0.1:{port}",
            "--keys",
            str(keys),
            out=tmp_path / f"agents{k}",
        )
        for k, ids in enumerate(("0-1", "2,3"))
    ]
    so, se = sim.communicate(timeout=180)
    assert sim.returncode == 0, (so.decode()[-3000:], se.decode()[-3000:])
    s = summary_of(tmp_path / "sim")
    assert s["mode"] == "sim" and all(a["joined"] and a["fate"] == "not started here" for a in s["agents"])
    ed = s["metrics"]["energy_distance"]
    assert ed[-1] < 0.5 * ed[0]
    for g in groups:
        assert g.poll() is None  # the agents run until told to stop
        os.kill(g.pid, signal.SIGTERM)
        g.wait(timeout=10)
        assert g.returncode == 130
    s0, s1 = summary_of(tmp_path / "agents0"), summary_of(tmp_path / "agents1")
    assert [a["id"] for a in s0["agents"]] == [0, 1] and [a["id"] for a in s1["agents"]] == [2, 3]
    assert all(a["fate"] == "completed" for a in s0["agents"] + s1["agents"])
    for d in ("sim", "agents0", "agents1"):
        assert not processes_mentioning(str(tmp_path / d))


@pytest.mark.integration
def test_progress_is_a_live_bar_on_a_terminal_and_plain_lines_otherwise(tmp_path, launches):
    scen = _small(tmp_path)
    rc, raw = launches.run_on_terminal(str(scen), "--headless", "--duration", "6", out=tmp_path / "tty")
    text = raw.decode(errors="replace")
    assert rc == 0, text[-3000:]
    frames = [f for f in text.replace("\n", "\r").split("\r") if "world s [" in f]
    assert len(frames) >= 3, text[-2000:]  # the bar, redrawn in place
    assert any("100%" in f and "6.0/6 world s" in f for f in frames)
    assert all("live" in f and "energy distance" in f for f in frames[1:])
    assert any("<" in f and "?" not in f.split("<")[1].split(",")[0] for f in frames)  # an ETA
    assert text.rfind("run small: 4 robots") > text.rfind("100%")  # the summary comes below the bar
    assert "Hello from the pygame community" not in text
    rc, so, se = launches.run(
        str(scen), "--headless", "--progress", "1", "--duration", "4", out=tmp_path / "pipe"
    )
    assert rc == 0, se[-3000:]
    assert "\r" not in so and "%|" not in so  # a log gets plain lines
    assert any(line.startswith("  t ") and "live 4/4" in line for line in so.splitlines())
