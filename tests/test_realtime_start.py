"""How a real-time world starts, with real agent processes over real ZeroMQ on loopback: the
first round (every agent's first patch before the clock runs) and an agent that never answers."""

import pytest
from simfleet import lockstep, positions

pytestmark = pytest.mark.integration


def test_the_first_round_hands_out_every_patch_before_the_clock_starts(fleets, rng):
    """Before tick 1 every agent is sent the state of tick 0 with its patch and answers it; nobody
    moves, nothing is timed, and the first clocked states carry no patch but every neighbour (the
    answers' beacons reached the radio)."""
    import numpy as np

    n = 4
    x0 = positions(rng, n)
    cfg = lockstep(x0, 0.2, 0.5, tick=0.05, clock="realtime", duration=60.0, failure_timeout_wall=5.0)
    fleet = fleets(cfg, rate_hz=20.0)
    sim = fleet.sim
    sim.start()
    (first,) = [e for e in sim.events if e["kind"] == "first_round"]
    assert first["answered"] == first["agents"] == n and first["wall_s"] < 5.0, first
    assert sim.counts["patches_sent"] == n and sim.tick == 0
    assert (sim.sessions.cmd_tick == 0).all()  # every agent answered tick 0
    assert (sim.world.command == 0).all() and np.allclose(sim.world.x, x0)  # and moved nobody
    assert sim.fleet_metrics.counts["states_sent"] == 0  # not in the sense-to-command timing
    delivered = sim.radio.counters.delivered
    sim.advance(1)
    assert sim.counts["patches_sent"] == n  # tick 1: every agent already holds its patch
    # and hears every robot in radio range: tick 0's beacons, delivered with tick 1's states
    d = np.linalg.norm(np.array(x0)[:, None] - np.array(x0)[None], axis=-1)
    in_range = int((d <= sim.radio.range).sum()) - n
    assert in_range > 0 and sim.radio.counters.delivered - delivered >= in_range
    assert sim.fleet_metrics.counts["states_sent"] == n
    sim.finish()


def test_the_clock_starts_without_an_agent_that_never_answers(fleets, rng):
    """A roster member that says hello and never answers a state holds the first round up for
    ``failure_timeout_wall`` only; the world then runs with the others, and the silent one is
    detected as failed as in any tick."""
    import time

    import zmq

    from swarmcover.protocol import Hello, encode

    n = 3
    cfg = lockstep(positions(rng, n + 1), 0.2, 0.5, tick=0.05, clock="realtime", duration=60.0,
                   failure_timeout_wall=0.5, wait_for_agents_wall=60.0)  # fmt: skip
    fleet = fleets(cfg, start=list(range(n)), rate_hz=20.0)
    sim = fleet.sim
    ctx = zmq.Context()
    mute = ctx.socket(zmq.DEALER)
    try:
        mute.linger = 0
        mute.connect(sim.endpoint)
        mute.send_multipart(
            encode(Hello(agent_id=n, epoch=time.time_ns(), seq=1, t=time.time(), rate_hz=20.0))
        )
        t0 = time.monotonic()
        sim.start()
        (first,) = [e for e in sim.events if e["kind"] == "first_round"]
        assert (first["answered"], first["agents"]) == (n, n + 1), first
        assert 0.5 <= first["wall_s"] < 5.0 and time.monotonic() - t0 < 30.0
        deadline = time.monotonic() + 30
        while not any(e["kind"] == "detected_failure" for e in sim.events):
            assert time.monotonic() < deadline, "the mute agent was never detected"
            sim.advance(1)
        assert [e["agent_id"] for e in sim.events if e["kind"] == "detected_failure"] == [n]
        assert sim.fleet_metrics.answered_by[:n].min() >= 1  # the others ran
    finally:
        mute.close(linger=0)
        ctx.term()
    sim.finish()
