"""Issue 18: the same agent process on real vehicles. Agent processes fly vehicles whose other
side is a real implementation of the protocol, not ours: MAVSDK as the autopilot of simulated
copters (``tests/vehicles.py``), and a Cyclone DDS participant speaking ROS 2's types for a ROS 2
robot. Everything on loopback."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import numpy as np
import pytest
from harness import agent_output, start_agent, stop_all, wait_until
from launching import free_port

pytestmark = pytest.mark.integration

mavsdk = pytest.importorskip("mavsdk", reason="the MAVLink tests' vehicles need mavsdk (the test extra)")
pytest.importorskip("pymavlink", reason="the mavlink body needs pymavlink (the mavlink extra)")

from vehicles import MavsdkCopter, UdpRelay  # noqa: E402

BOUNDS = [[0.0, 40.0], [0.0, 40.0]]
TARGET = {"means": [[14.0, 26.0], [28.0, 14.0]], "covs": [12.0, 12.0]}


def _config(i: int, body: dict, peers: dict, **over) -> dict:
    cfg = {
        "agent_id": i, "bounds": BOUNDS, "eps": 5.0, "mass": 0.2, "speed_limit": 3.0, "r_min": 2.0,
        "rate_hz": 20.0, "insecure": True, "body": body, "peers": peers, "target": dict(TARGET),
    }  # fmt: skip
    cfg.update(over)
    return cfg


def _energy_distance(x: np.ndarray) -> float:
    import swarmcover as sc

    target = sc.GaussianMixture(TARGET["means"], TARGET["covs"], bounds=BOUNDS)
    return float(sc.metrics.energy_distance(x, target))


def test_one_agent_flies_a_mavsdk_copter_by_velocity_setpoints_without_arming_it():
    """One agent, one copter: the agent hears the autopilot's heartbeat, flies it toward the
    demand with velocity-only SET_POSITION_TARGET_LOCAL_NED (frame LOCAL_NED, altitude held),
    never arms it (``arm`` is off by default), counts a NaN position and flies on, and leaves the
    copter holding (a zero setpoint) when it stops."""
    port = free_port(socket.SOCK_DGRAM)
    copter = MavsdkCopter(port, system_id=1, start=[4.0, 4.0])
    body = {"kind": "mavlink", "connect": f"udpin:127.0.0.1:{port}"}
    peers = {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []}
    proc = start_agent(_config(0, body, peers, mass=1.0), log_level="INFO")
    try:
        wait_until(lambda: len(copter.setpoints) > 20 or proc.poll() is not None, 60.0, "setpoints")
        copter.nan_next = True
        n = len(copter.setpoints)
        wait_until(lambda: len(copter.setpoints) > n + 100 or proc.poll() is not None, 60.0, "more setpoints")
        start = np.array([4.0, 4.0])
        p, _ = copter.state()
        assert proc.poll() is None, agent_output(proc)
        assert np.linalg.norm(p - start) > 5.0, p  # it flew
        for f in copter.raw_setpoints:
            assert f["type_mask"] == 3527 and f["coordinate_frame"] == 1 and f["vz"] == 0.0, f
            assert f["target_system"] == 1 and f["target_component"] == 1, f
        speeds = [np.hypot(f["vx"], f["vy"]) for f in copter.raw_setpoints]
        assert max(speeds) <= 3.0 * (1 + 1e-6) and max(speeds) > 2.5  # float32 on the wire
        assert not copter.commands, copter.commands  # no arming, no mode change
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        out = agent_output(proc)
        assert "telemetry readings rejected" in out and "'telemetry_rejected': 1" in out, out
        last = copter.raw_setpoints[-1]
        assert last["vx"] == 0.0 and last["vy"] == 0.0, last  # the bye left it holding
    finally:
        stop_all([proc])
        copter.close()


def _simulated_fleet(fleets, starts: np.ndarray, seconds: float):
    """The same five agents (the same law settings) on the simulator's bodies, in real time,
    their beacons through its radio: a real :class:`swarmcover.simulator.server.Simulator` serving real
    agent processes (``tests/simfleet.py``), running in a thread while the test goes on."""
    cfg = {
        "bounds": BOUNDS, "target": TARGET, "positions": starts.tolist(), "eps": 5.0, "speed_limit": 3.0,
        "tick": 0.05, "clock": "realtime", "duration": seconds, "command_ttl_wall": 0.5,
    }  # fmt: skip
    fleet = fleets(cfg, mass=0.2, r_min=2.0, rate_hz=20.0, beacon_ttl=0.5, forget_after=2.0)
    fleet.run_in_thread()
    return fleet


def test_five_agents_fly_mavsdk_copters_cover_as_on_simulator_bodies_and_fail_safe(fleets):
    """Five agent processes in direct mode (no simulator), each flying a MAVSDK copter: the fleet
    ends within 10 % (plus 0.02 for real-time noise) of the energy distance the same fleet
    reaches on the simulator's bodies in the same time. Then a SIGKILLed agent's copter gets no setpoint
    after the kill and comes to rest within its setpoint timeout plus the time to brake; and a
    copter whose link to its agent falls silent (heartbeat and telemetry cut, the agent still
    reaching it) is reported lost by its agent, which holds it (zero setpoints) and keeps running.
    The simulated fleet runs beside the flown one (both are light: ten agents at 20 Hz)."""
    n, seconds = 5, 9.0
    starts = np.array([[3.0, 3.0], [6.0, 3.0], [3.0, 6.0], [6.0, 6.0], [4.5, 8.0]])
    reference = _simulated_fleet(fleets, starts, seconds)
    udp = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    pub = [f"tcp://127.0.0.1:{free_port()}" for _ in range(n)]
    relay = UdpRelay(udp[1])  # copter 1 reaches its agent through a relay that can be cut
    copters = [
        MavsdkCopter(relay.port if i == 1 else udp[i], system_id=i + 1, start=starts[i]) for i in range(n)
    ]
    procs = []
    try:
        for i in range(n):
            # lost after 1.5 s without a heartbeat (the default 3 s would only make the test wait)
            body = {"kind": "mavlink", "connect": f"udpin:127.0.0.1:{udp[i]}", "heartbeat_timeout": 1.5}
            peers = {"kind": "direct", "bind": pub[i], "roster": pub}
            procs.append(start_agent(_config(i, body, peers), log_level="INFO"))
        started = lambda: all(c.setpoints for c in copters) or any(p.poll() is not None for p in procs)  # noqa: E731
        wait_until(started, 60.0, "every copter's first setpoint")
        assert all(p.poll() is None for p in procs), [agent_output(p) for p in procs]
        time.sleep(seconds)  # real time: the copters fly while the agents run
        flown = np.array([c.state()[0] for c in copters])
        reference.join(60.0)
        simulated = reference.sim.world.x.copy()
        ed_sim, ed_flown = _energy_distance(simulated), _energy_distance(flown)
        print(f"\nenergy distance after {seconds:g} s: simulator bodies {ed_sim:.4f}, "
              f"MAVSDK copters {ed_flown:.4f} (start {_energy_distance(starts):.4f})")  # fmt: skip
        assert ed_flown <= 1.1 * ed_sim + 0.02, (ed_sim, ed_flown)

        # SIGKILL agent 0: no setpoint after it is dead; the copter stops by its own timeout
        procs[0].kill()
        procs[0].wait(timeout=10)
        dead = time.monotonic()
        c0 = copters[0]
        wait_until(lambda: c0.stopped_at is not None, 10.0, "copter 0 to come to rest")
        last = c0.setpoints[-1][0]
        assert last <= dead + 0.5, last - dead  # nothing from a dead agent (datagrams in flight aside)
        brake = 3.0 / c0.accel  # from full speed
        assert c0.stopped_at - last <= c0.timeout + brake + 0.5, c0.stopped_at - last

        # copter 1 falls silent: its agent reports it lost and holds it
        relay.cut()
        wait_until(
            lambda: "vehicle lost" in agent_output(procs[1]), 15.0, "agent 1 to report its copter lost"
        )
        lost = time.monotonic()
        wait_until(lambda: sum(t > lost for t, _, _ in copters[1].setpoints) >= 10, 10.0, "holds")
        after = [v for t, v, _ in copters[1].setpoints if t > lost]
        assert not np.any(after), after[-3:]  # holding: every setpoint since is zero
        assert procs[1].poll() is None
    finally:
        stop_all(procs)
        relay.close()
        for c in copters:
            c.close()


def test_the_geofence_keeps_setpoints_that_would_leave_the_fence_from_being_sent():
    """A copter standing inside a no-go zone of the agent's map (blown there, say): every step
    out of it would cross the zone, so every setpoint the law asks for is refused by the fence
    (counted, logged) and the copter is only ever told to hold."""
    port = free_port(socket.SOCK_DGRAM)
    copter = MavsdkCopter(port, system_id=3, start=[20.0, 20.0])
    body = {"kind": "mavlink", "connect": f"udpin:127.0.0.1:{port}", "fence_horizon": 1.0}
    peers = {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []}
    target = dict(TARGET, zones=[{"kind": "disk", "center": [20.0, 20.0], "radius": 6.0}])
    proc = start_agent(_config(0, body, peers, mass=1.0, target=target), log_level="INFO")
    try:
        wait_until(lambda: len(copter.setpoints) > 40 or proc.poll() is not None, 60.0, "setpoints")
        assert proc.poll() is None, agent_output(proc)
        assert all(not np.any(v) for _, v, _ in copter.setpoints), copter.setpoints[:5]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        out = agent_output(proc)
        assert "refused by the geofence" in out, out
        fenced = int(out.split("'fenced': ")[1].split(",")[0])
        assert fenced > 20, out
    finally:
        stop_all([proc])
        copter.close()


def _run_agent(cfg: dict, env: dict | None = None, timeout: float = 60.0):
    import json
    import subprocess

    cmd = [sys.executable, "-m", "swarmcover.cli.main", "agent", "--json", json.dumps(cfg)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def test_a_missing_extra_a_silent_vehicle_and_an_unreachable_one_are_named_errors(tmp_path):
    """Each ends the agent before it runs, with exit status 2 and a message that names what to do
    or what did not answer: pymavlink not installed (the extra named), a vehicle that never
    sends a heartbeat (the endpoint and the time waited), a TCP vehicle that refuses."""
    peers = {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []}
    # an install without the extra: a pymavlink that cannot be imported, first on the path
    shim = tmp_path / "shim" / "pymavlink"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("raise ImportError('pymavlink is not installed (test shim)')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(shim.parent), os.environ.get("PYTHONPATH", "")]))
    udp = free_port(socket.SOCK_DGRAM)
    body = {"kind": "mavlink", "connect": f"udpin:127.0.0.1:{udp}", "connect_timeout": 1.0}
    r = _run_agent(_config(0, body, peers), env)
    assert r.returncode == 2 and "pip install 'swarmcover[mavlink]'" in r.stderr, r.stderr[-2000:]
    # nothing at the other end: no heartbeat within connect_timeout
    r = _run_agent(_config(0, body, peers))
    assert r.returncode == 2 and "no HEARTBEAT from a vehicle at" in r.stderr and "within 1 s" in r.stderr, (
        r.stderr[-2000:]
    )
    # a TCP endpoint nobody listens on
    body = {
        "kind": "mavlink",
        "connect": f"tcp:127.0.0.1:{free_port()}",
        "connect_timeout": 1.0,
    }
    r = _run_agent(_config(0, body, peers))
    assert r.returncode == 2 and "mavlink:" in r.stderr, r.stderr[-2000:]


def test_arm_true_arms_through_the_autopilots_action_server_and_arm_false_never_does():
    """``arm = true``: the agent arms the copter once it answers (MAVSDK's action server takes the
    MAV_CMD_COMPONENT_ARM_DISARM and reports it), then flies it; the default never arms."""
    for arm in (True, False):
        port = free_port(socket.SOCK_DGRAM)
        copter = MavsdkCopter(port, system_id=4, start=[4.0, 4.0])
        body = {"kind": "mavlink", "connect": f"udpin:127.0.0.1:{port}", "arm": arm}
        peers = {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []}
        proc = start_agent(_config(0, body, peers, mass=1.0), log_level="INFO")
        try:
            wait_until(lambda: len(copter.setpoints) > 30 or proc.poll() is not None, 60.0, "setpoints")  # noqa: B023
            assert proc.poll() is None, agent_output(proc)
            assert copter.armed == ([True] if arm else []), (arm, copter.armed, copter.commands)
        finally:
            stop_all([proc])
            copter.close()
