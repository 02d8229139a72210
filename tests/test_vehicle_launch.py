"""Issue 18, part 4: ``swarmcover launch`` runs a fleet of agents whose bodies are vehicles (no
simulator) and writes the same run folder a simulated run does. The vehicles are MAVSDK
autopilots (``tests/vehicles.py``) on loopback, one per robot, at the ports the scenario's
``[vehicles]`` section gives."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
from launching import summary_of

pytestmark = pytest.mark.integration

pytest.importorskip("mavsdk", reason="the vehicles need mavsdk (the test extra)")
pytest.importorskip("pymavlink", reason="the mavlink body needs pymavlink (the mavlink extra)")

from vehicles import MavsdkCopter  # noqa: E402

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def _free_run(n: int, kind) -> int:
    """A port p with p .. p + n - 1 all free now (for ``kind`` sockets on loopback)."""
    rng = np.random.default_rng()
    for _ in range(200):
        p = int(rng.integers(20_000, 60_000))
        socks = []
        try:
            for k in range(n):
                s = socket.socket(socket.AF_INET, kind)
                socks.append(s)
                s.bind(("127.0.0.1", p + k))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of free ports")


def test_a_launched_fleet_flies_mavsdk_copters_and_writes_summary_metrics_and_pictures(tmp_path, launches):
    """``launch/copters.toml`` (four MAVLink copters, a no-fly disk) with its ports and duration
    overridden, four MAVSDK copters waiting at those ports: the launcher starts four agents in
    direct mode with the run's CurveZMQ keys, each flies its copter, and robot 3's agent is
    SIGKILLed at t = 10 s by the failure schedule; the run folder holds each agent's telemetry,
    ``summary.json`` (energy distance falling to under half its first value, the kill and the
    silence it left detected, three robots heard at the end, the others' final counters),
    ``metrics.png`` and ``final.png``."""
    n, port, peer = 4, _free_run(4, socket.SOCK_DGRAM), _free_run(4, socket.SOCK_STREAM)
    starts = [[95.0, 60.0], [105.0, 60.0], [95.0, 70.0], [105.0, 70.0]]  # relative to vehicles.origin
    copters = [MavsdkCopter(port + k, system_id=k + 1, start=starts[k], accel=15.0) for k in range(n)]
    out = tmp_path / "run"
    try:
        rc, so, se = launches.run(
            str(LAUNCH / "copters.toml"), "--headless", "--duration", "15",
            "--set", f"vehicles.port={port}", "--set", f"vehicles.peer_port={peer}",
            "--set", "vehicles.origin=[0.0, 0.0]", "--set", "control.speed_limit=20.0",
            "--set", 'failures=[{t = 10.0, kind = "kill", ids = [3]}]',
            out=out, timeout=180.0,
        )  # fmt: skip
    finally:
        for c in copters:
            c.close()
    assert rc == 0, (so[-3000:], se[-3000:])
    summary = summary_of(out)
    assert summary["fleet_size"] == n and not summary["interrupted"]
    ed = [v for v in summary["metrics"]["energy_distance"] if v is not None]
    f = summary["final"]
    print(f"\nvehicle fleet: energy distance {ed[0]:.4f} -> {f['energy_distance']:.4f}, "
          f"heard {f['alive']}/{n}, travelled {f['distance_travelled']:.0f} m")  # fmt: skip
    assert f["alive"] == n - 1 and min(ed) < 0.5 * ed[0], (ed, f)  # robot 3's agent was killed
    final = np.asarray(f["positions"])
    flown = np.array([c.state()[0] for c in copters[:3]])  # copter 3 braked after its agent died
    assert np.allclose(final[:3], flown, atol=2.0), (final, flown)  # what the run says is where they are
    for row in summary["agents"][:3]:
        assert row["counters"] is not None and row["counters"]["commands"] > 50, row
        assert (out / "telemetry" / f"agent_{row['id']:04d}.jsonl").stat().st_size > 0
    kinds = [(e["kind"], e.get("agent_id")) for e in summary["events"]]
    assert sum(k == "process_started" for k, _ in kinds) == n and sum(k == "joined" for k, _ in kinds) == n
    assert ("killed", 3) in kinds and ("detected_failure", 3) in kinds, kinds  # its telemetry stopped
    assert summary["agents"][3]["fate"] == "killed" and summary["agents"][3]["counters"] is None
    assert (out / "metrics.png").stat().st_size > 10_000 and (out / "final.png").stat().st_size > 10_000
    assert (out / "keys" / "agents").is_dir()  # the agents spoke CurveZMQ with the run's keys
