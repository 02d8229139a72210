"""The simulator's metrics room in process: each command-state counts in the interval it was sent
in, so ``on_time`` stays a fraction of that interval's states however late answers come."""

import math
import os
import threading

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.domain import Box
from swarmcover.simulator.fleetmetrics import BACKGROUND_NICE, QUALITY, SERIES, FleetMetrics
from swarmcover.simulator.world import World

pytestmark = pytest.mark.unit


def _room(n=4):
    target = sc.Uniform([(0, 1), (0, 1)])
    world = World(
        list(range(n)), np.random.default_rng(1).random((n, 2)).tolist(), Box([(0, 1), (0, 1)]), 1.0
    )
    world.connected[:] = True
    counts: dict[str, int] = {}
    return FleetMetrics(n, 1.0, target, sc.BlobLaw(target, 0.2, 1 / n), counts), world, counts


def test_on_time_counts_each_state_in_its_own_interval():
    fm, world, counts = _room()
    for k in range(4):
        fm.state_sent(k, tick=1, wall=10.0)
    fm.answered(0, 10.05, period=0.1)  # on time
    fm.answered(1, 10.30, period=0.1)  # late
    assert fm.sample(world)  # interval 0 sampled with two answers still in flight
    assert fm.series["on_time"] == [0.25]
    for k in range(4):
        fm.state_sent(k, tick=2, wall=11.0)
    fm.answered(2, 11.08, period=0.1)  # on time, to the state it was sent in interval 1
    world.t = 1.0
    assert fm.sample(world)
    assert fm.series["on_time"] == [0.25, 0.25]
    fm.answered(3, 11.02, period=0.1)  # in flight when interval 1 was sampled: it updates that entry
    assert fm.series["on_time"] == [0.25, 0.5]
    assert all(0.0 <= v <= 1.0 for v in fm.series["on_time"] if not math.isnan(v))
    assert counts == {"states_sent": 8, "commands_answering": 4, "commands_on_time": 3}
    assert fm.states_to.tolist() == [2, 2, 2, 2] and fm.on_time_by.tolist() == [1, 0, 1, 1]


def test_samples_every_interval_with_every_series():
    fm, world, _ = _room()
    taken = []
    for t in np.arange(0.0, 3.01, 0.25):
        world.t = float(t)
        taken.append(fm.sample(world))
    assert sum(taken) == 4 and list(fm.series) == list(SERIES)
    assert fm.series["t"] == [0.0, 1.0, 2.0, 3.0] and fm.series["alive"] == [4] * 4
    assert all(v > 0 for v in fm.series["energy_distance"])
    t = fm.timing()
    assert t["states_sent"] == 0 and t["on_time_fraction"] is None and t["latency_ms_p99"] is None


def test_background_quality_numbers_equal_the_inline_ones_and_fill_in_their_own_rows():
    """Real time works the costly numbers out on a worker thread (the tick loop must not stall
    for them): each sample's row is there at once, its quality numbers come later, and they are
    the numbers the inline (lockstep) path gives for the same positions."""
    inline, world, _ = _room(6)
    bg = FleetMetrics(6, 1.0, inline.target, inline.law, {}, background=True)
    rng = np.random.default_rng(7)
    try:
        for t in range(5):
            world.t = float(t)
            world.x[:] = rng.random((6, 2))
            assert inline.sample(world) and bg.sample(world)
            assert bg.series["t"][-1] == t and bg.series["alive"][-1] == 6  # the row, at once
        world.x[:] = 0.5  # the world moves on: the worker reads the positions of its sample
        bg.flush()
        for name in QUALITY:
            assert bg.series[name] == inline.series[name], name
        assert bg.latest("energy_distance") == inline.series["energy_distance"][-1]
        # the worker runs below the simulator's priority (Linux: a thread's own nice value)
        nice = bg._pool.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
        assert nice == min(19, os.getpriority(os.PRIO_PROCESS, 0) + BACKGROUND_NICE)
    finally:
        bg.close()
    assert math.isnan(FleetMetrics(2, 1.0, inline.target, inline.law, {}).latest("lloyd_cost"))
