"""Agent processes over real ZeroMQ sockets on loopback, against a harness standing in for the simulator."""

import math
import signal
import time

import numpy as np
import pytest
from harness import Harness, agent_config, start_agent, stop_all, terminate_and_wait

import swarmcover as sc
from swarmcover.protocol import Beacon, encode

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


def test_lockstep_velocities_equal_the_vectorised_law(fleet, rng):
    harness, law, procs = fleet
    ids = list(range(N))
    _start(harness, law, procs, ids)
    x = 0.2 + 0.6 * rng.random((N, 2))
    harness.step(x, ids)  # first tick: agents learn each other's positions from the relayed beacons
    got = harness.step(x, ids)
    want = law.velocities(x, method="pairwise")
    for aid in ids:
        assert np.allclose(got[aid], want[aid], rtol=1e-9, atol=1e-12 * np.abs(want).max())
    stats = harness.request_stats(ids)
    assert all(s.neighbors == N - 1 and s.counters.rejected == 0 for s in stats.values())


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


def test_sigterm_says_bye_and_exits_within_a_second(fleet):
    harness, law, procs = fleet
    _start(harness, law, procs, [0, 1])
    took = terminate_and_wait(procs[0], signal.SIGTERM)
    assert took < 1.0 and procs[0].returncode == 0
    took = terminate_and_wait(procs[1], signal.SIGINT)
    assert took < 1.0 and procs[1].returncode == 0


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
    replay = [b for b in harness.captured_beacons if Beacon.model_validate_json(b[0]).agent_id == 1][0]
    before = harness.request_stats([0])[0].counters.rejected
    harness.send_raw(0, replay)
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 1)
    forged = Beacon(agent_id=0, epoch=1, seq=1, t=time.time(), position=[0.5, 0.5], mass=0.1)
    harness.send_raw(0, encode(forged))  # claims to be the agent itself
    harness.wait_for(lambda: harness.request_stats([0])[0].counters.rejected == before + 2)
    assert math.isfinite(harness.step(x, ids)[0][0])
