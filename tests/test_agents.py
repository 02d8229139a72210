"""Agent processes over real ZeroMQ sockets on loopback, against a harness standing in for the simulator."""

import json
import math
import signal
import socket
import time

import numpy as np
import pytest
from harness import (
    Harness,
    agent_config,
    start_agent,
    stop_all,
    terminate_and_wait,
    udp_body_start,
    udp_body_tick,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmcover as sc
from swarmcover.protocol import Beacon, encode

pytestmark = pytest.mark.integration

N = 10


@pytest.fixture
def fleet():
    target = sc.GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.01, 0.02], bounds=[(0, 1), (0, 1)])
    law = sc.BlobLaw(target, 0.12, 1.0 / N)
    harness = Harness(law)
    procs = []
    try:
        yield harness, law, procs
    finally:
        stop_all(procs)
        harness.close()


def _start(harness, law, procs, ids, **over):
    for aid in ids:
        procs.append(start_agent(agent_config(aid, harness.endpoint, law, **over)))
    harness.wait_for(lambda: all(aid in harness.routes for aid in ids))


@pytest.mark.parametrize("batch", [False, True], ids=["beacon-messages", "relayed-in-states"])
def test_lockstep_velocities_equal_the_vectorised_law(fleet, rng, batch):
    """Every agent's command equals the fleet-wide law, whether the body relays each beacon as a
    message or all of them inside the next state (as the simulator does)."""
    harness, law, procs = fleet
    harness.batch = batch
    ids = list(range(N))
    # TTLs long enough that a loaded CI machine cannot age a beacon out between a tick and the stats
    _start(harness, law, procs, ids, beacon_ttl=5.0, forget_after=10.0, state_timeout=10.0)
    x = 0.2 + 0.6 * rng.random((N, 2))
    harness.step(x, ids)  # first tick: agents learn each other's positions from the relayed beacons
    got = harness.step(x, ids)
    want = law.velocities(x, method="pairwise")
    for aid in ids:
        assert np.allclose(got[aid], want[aid], rtol=1e-9, atol=1e-12 * np.abs(want).max())
    stats = harness.request_stats(ids)
    assert all(s.neighbors == N - 1 and s.counters.rejected == 0 for s in stats.values()), {
        a: (s.neighbors, s.counters) for a, s in stats.items()
    }


def test_states_without_a_patch_reuse_the_one_held_while_it_covers(fleet, rng):
    """A body sends a wider patch once; states without one are computed with it while it covers
    the agent's new position (same velocities as the fleet-wide law), and rejected once it does
    not."""
    harness, law, procs = fleet
    harness.batch = True
    ids = list(range(N))
    _start(harness, law, procs, ids, beacon_ttl=5.0, forget_after=10.0, state_timeout=10.0)
    x = 0.2 + 0.6 * rng.random((N, 2))
    harness.step(x, ids, margin=0.5)
    for _ in range(2):  # small moves: within the margin
        x = x + 0.01 * rng.standard_normal((N, 2))
        harness.step(x, ids, patch=False)  # the neighbours learn the new positions (their beacons)
        got = harness.step(x, ids, patch=False)
        want = law.velocities(x, method="pairwise")
        for aid in ids:
            assert np.allclose(got[aid], want[aid], rtol=1e-9, atol=1e-12 * np.abs(want).max())
    before = harness.request_stats([0])[0].counters.rejected
    far = x[0] + np.array([0.3, 0.0]) * np.sign(0.5 - x[0, 0])  # beyond what the held patch covers
    harness.send_state(0, far, patch=False)
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 1)


def test_sigkill_rejoin_and_old_epoch_rejected(fleet, rng):
    harness, law, procs = fleet
    ids = list(range(N))
    _start(harness, law, procs, ids, beacon_ttl=0.3, forget_after=0.6, rate_hz=50.0)
    x = 0.2 + 0.6 * rng.random((N, 2))
    harness.step(x, ids)
    harness.step(x, ids)
    old_beacons = [b for b in harness.captured_beacons if Beacon.model_validate_json(b[0]).agent_id == 3]
    procs[3].kill()
    procs[3].wait(timeout=5)
    killed_at = time.monotonic()
    others = [a for a in ids if a != 3]
    del harness.routes[3]
    # keep stepping the survivors; each must drop agent 3 within TTL + one period
    while time.monotonic() - killed_at < 0.3 + 0.02 + 0.05:
        harness.step(x, others)
    stats = harness.request_stats(others)
    assert all(s.neighbors == N - 2 for s in stats.values())
    # a new process with the same id (a new epoch) is accepted ...
    procs.append(start_agent(agent_config(3, harness.endpoint, law, beacon_ttl=0.3, forget_after=0.6)))
    harness.wait_for(lambda: 3 in harness.routes)
    harness.step(x, ids)
    harness.step(x, ids)
    assert all(s.neighbors == N - 1 for s in harness.request_stats(ids).values())
    # ... and a replayed beacon of the old epoch is rejected by its peers
    before = harness.request_stats([0])[0].counters.rejected
    harness.send_raw(0, old_beacons[-1])
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 1)


def test_sigterm_and_sigint_say_bye_and_exit_cleanly(fleet):
    harness, law, procs = fleet
    _start(harness, law, procs, [0, 1])
    harness.step(np.array([[0.4, 0.5], [0.6, 0.5]]), [0, 1])  # each answers a state before it stops
    for aid, sig in ((0, signal.SIGTERM), (1, signal.SIGINT)):
        took = terminate_and_wait(procs[aid], sig)
        print(f"\nagent {aid}: {sig.name} to exit {took:.3f} s")
        assert procs[aid].returncode == 0
        harness.wait_for(lambda a=aid: a in harness.byes)
        assert harness.byes[aid].counters.commands >= 1  # its final counters ride on the bye


def test_failsafe_commands_zero_without_state(fleet):
    harness, law, procs = fleet
    _start(harness, law, procs, [0], state_timeout=0.2, rate_hz=20.0)
    harness.commands.clear()
    harness.wait_for(lambda: 0 in harness.commands, timeout=5.0)
    assert np.all(np.array(harness.commands[0].velocity) == 0.0)
    assert harness.request_stats([0])[0].counters.failsafe >= 1


def test_replayed_beacon_from_a_live_peer_is_rejected(fleet, rng):
    harness, law, procs = fleet
    ids = [0, 1]
    _start(harness, law, procs, ids)
    x = 0.2 + 0.6 * rng.random((2, 2))
    harness.step(x, ids)
    harness.step(x, ids)
    replay = next(b for b in harness.captured_beacons if Beacon.model_validate_json(b[0]).agent_id == 1)
    before = harness.request_stats([0])[0].counters.rejected
    harness.send_raw(0, replay)
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 1)
    forged = Beacon(agent_id=0, epoch=1, seq=1, t=time.time(), position=[0.5, 0.5], mass=0.1)
    harness.send_raw(0, encode(forged))  # claims to be the agent itself
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 2)
    assert math.isfinite(harness.step(x, ids)[0][0])


@pytest.fixture(scope="module")
def fuzz_target():
    target = sc.Uniform([(0, 1), (0, 1)])
    law = sc.BlobLaw(target, 0.2, 0.5)
    harness = Harness(law)
    procs = []
    try:
        _start(harness, law, procs, [0])
        yield harness, procs[0]
    finally:
        stop_all(procs)
        harness.close()


_junk_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.lists(st.binary(max_size=512), min_size=1, max_size=3),
        _junk_json.map(lambda j: [json.dumps(j).encode()]),
        _junk_json.map(
            lambda j: [json.dumps({"v": 1, "kind": "beacon", "agent_id": 2, "payload": j}).encode()]
        ),
    )
)
def test_hostile_messages_are_rejected_and_counted(fuzz_target, frames):
    harness, proc = fuzz_target
    before = harness.request_stats([0])[0].counters
    harness.send_raw(0, frames)
    after = harness.request_stats([0])[0].counters
    assert proc.poll() is None  # still running
    assert after.rejected == before.rejected + 1
    assert after.messages_in == before.messages_in + 2  # the junk and the stats request


@pytest.mark.parametrize("security", ["insecure", "curve"])
def test_direct_mode_fleet_converges_without_a_simulator(security, rng, tmp_path):
    """5 agents, UDP bodies that are simple integrators run here, beacons PUB/SUB between agents
    (plaintext, or CURVE: each agent's PUB admits only the roster's keys, one SUB per peer)."""
    n, dt, speed = 5, 0.02, 0.5
    mixture = {"means": [[0.6, 0.6]], "covs": [0.02], "smoothing": 0.2}
    target = sc.GaussianMixture([[0.6, 0.6]], [0.02], bounds=[(0, 1), (0, 1)])
    body = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    body.bind(("127.0.0.1", 0))
    body.settimeout(0.2)
    # ports held together while chosen, so none is handed out twice (or is the body's)
    held = [socket.socket(socket.AF_INET, k) for k in [socket.SOCK_DGRAM] * n + [socket.SOCK_STREAM] * n]
    for h in held:
        h.bind(("127.0.0.1", 0))
    udp_ports = [h.getsockname()[1] for h in held[:n]]
    pub = [f"tcp://127.0.0.1:{h.getsockname()[1]}" for h in held[n:]]
    for h in held:
        h.close()
    procs = []
    security_cfg: dict = {"insecure": True}
    roster: list = pub
    if security == "curve":
        from swarmcover.launcher.keys import make_keys

        keys = make_keys(tmp_path / "keys", list(range(n)))
        roster = [
            {"agent_id": a, "endpoint": pub[a], "public_key": str(keys.agent_public(a))} for a in range(n)
        ]
    try:
        for i in range(n):
            if security == "curve":
                security_cfg = {"curve": {"secret_key": str(keys.agent_secret(i))}}
            cfg = {
                "agent_id": i, "bounds": [[0, 1], [0, 1]], "eps": 0.2, "mass": 1 / n, "speed_limit": speed,
                "r_min": 0.05, "rate_hz": 200.0, "state_timeout": 5.0,
                "body": {"kind": "udp", "listen": f"127.0.0.1:{udp_ports[i]}"},
                "peers": {"kind": "direct", "bind": pub[i], "roster": roster}, "target": mixture,
                **security_cfg,
            }  # fmt: skip
            procs.append(start_agent(cfg))
        x = 0.05 + 0.1 * rng.random((n, 2))
        start_dist = sc.metrics.energy_distance(x, target)
        epoch = time.time_ns()
        _, seq = udp_body_start(body, udp_ports, x, dt, epoch, 0, procs)
        for tick in range(2, 400):
            v, _, seq = udp_body_tick(body, udp_ports, x, tick, dt, epoch, seq, 1.0)
            x = np.clip(x + dt * v, 0, 1)
        assert np.all(np.linalg.norm(v, axis=1) <= speed * (1 + 1e-9))
        end_dist = sc.metrics.energy_distance(x, target)
        assert end_dist < 0.4 * start_dist
        assert np.linalg.norm(x.mean(axis=0) - [0.6, 0.6]) < 0.1
        d = np.linalg.norm(x[:, None] - x[None], axis=2) + np.eye(n)
        assert d.min() >= 0.05  # spread out, not a clump
    finally:
        body.close()
        stop_all(procs)


def test_commands_are_rate_limited_under_a_flood_of_states(fleet):
    """States four times faster than rate_hz get at most rate_hz commands a second (a burst of 2)."""
    harness, law, procs = fleet
    rate = 20.0
    _start(harness, law, procs, [0], rate_hz=rate, state_timeout=5.0)
    x = np.array([[0.5, 0.5]])
    harness.step(x, [0])  # the agent holds its patch and has answered once
    sent = 0
    start = time.monotonic()
    while time.monotonic() - start < 1.0:  # a new tick every 5 ms
        harness.tick += 1
        harness.send_state(0, x[0], patch=False)
        sent += 1
        harness.pump(0.005)
    took = time.monotonic() - start
    commands = harness.request_stats([0])[0].counters.commands
    assert sent > 2 * rate * took  # the flood really outran the rate
    assert 2 <= commands <= 1 + rate * (took + 0.1) + 2, (commands, took)
