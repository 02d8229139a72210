"""The simulator's faults room in process: who a failure event picks (the one rule the simulator
and the launcher share), injected and detected failures, and the seeded draws."""

import numpy as np
import pytest

from swarmcover.domain import Box
from swarmcover.simulator.config import FailureEvent, RandomFailure
from swarmcover.simulator.faults import FailureSchedule, Faults, select
from swarmcover.simulator.radio import Radio
from swarmcover.simulator.world import Status, World

pytestmark = pytest.mark.unit

IDS = np.arange(10)
X = np.column_stack([np.linspace(0.05, 0.95, 10), np.full(10, 0.5)])


def _faults(events=(), rate=0.0, seed=3):
    world = World(list(IDS), X.tolist(), Box([(0, 1), (0, 1)]), speed_limit=1.0)
    world.connected[:] = True
    radio = Radio(list(IDS), 2, 0.2, rng=np.random.default_rng(0))
    seen = []
    f = Faults(world, radio, list(events), RandomFailure(rate=rate), np.random.default_rng(seed),
               lambda kind, a=None, **d: seen.append((kind, a, d)))  # fmt: skip
    return f, world, seen


def test_select_by_ids_fraction_and_region_among_the_candidates(rng):
    by_ids = FailureEvent(t=0, kind="fail", ids=[1, 3, 99])
    assert select(by_ids, IDS, IDS, X, rng) == [1, 3]  # 99 is not a candidate
    assert select(by_ids, [3, 4], IDS, X, rng) == [3]
    frac = FailureEvent(t=0, kind="fail", fraction=0.3)
    got = select(frac, IDS, IDS, X, rng)
    assert len(got) == 3 and got == sorted(got) and set(got) <= set(IDS)
    assert select(frac, [], IDS, X, rng) == [] and select(frac, [7], IDS, X, rng) == []  # round(0.3) = 0
    west = FailureEvent(t=0, kind="fail", region={"kind": "rect", "lo": [0, 0], "hi": [0.5, 1]})
    assert select(west, IDS, IDS, X, rng) == [0, 1, 2, 3, 4]
    assert select(west, [2, 8], IDS, X, rng) == [2]


def test_the_same_seed_picks_the_same_robots_whatever_else_draws():
    frac = FailureEvent(t=0, kind="fail", fraction=0.5)
    a = select(frac, IDS, IDS, X, np.random.default_rng(11))
    other = np.random.default_rng()  # a live view's key draws from its own generator
    other.random(100)
    assert select(frac, IDS, IDS, X, np.random.default_rng(11)) == a


def test_inject_and_revive_write_the_world_status():
    f, world, seen = _faults()
    assert f.inject("fail", [2]) == [2] and f.inject("fail", [2]) == []  # once
    f.inject("radio_fail", [4])
    f.inject("body_fail", [5])
    st = world.status()
    assert st[2] == Status.FAILED and st[4] == Status.RADIO_FAILED and st[5] == Status.BODY_FAILED
    assert Status.alive(st).sum() == 9  # the radio and body failures are alive controllers
    f.inject("revive", [2, 4, 5])
    assert (world.status() == Status.LIVE).all()
    assert [s[0] for s in seen] == ["injected_fail", "injected_radio_fail", "injected_body_fail"] + [
        "injected_revive"
    ] * 3
    with pytest.raises(ValueError, match="unknown failure kind 'explode'"):
        f.inject("explode", [1])


def test_detected_is_silence_and_a_hello_clears_it():
    f, world, seen = _faults()
    last = np.zeros(10)
    last[6] = -5.0  # silent for 5 s
    f.detect(0.0, last, timeout=1.0)
    assert world.failed.tolist() == [k == 6 for k in range(10)] and seen[-1][:2] == ("detected_failure", 6)
    f.detect(0.0, last, timeout=1.0)  # once
    assert len(seen) == 1
    f.clear_detected(6)
    assert not world.failed.any()
    answered = np.zeros(10, dtype=bool)
    answered[6] = True  # lockstep: it answered this tick, so it is not silent
    f.detect(0.0, last, timeout=1.0, answered=answered)
    assert not world.failed.any()


def test_schedule_and_random_dropouts_are_due_once_and_seeded():
    events = [FailureEvent(t=2.0, kind="fail", ids=[1]), FailureEvent(t=1.0, kind="fail", fraction=0.2)]
    sch = FailureSchedule(events)
    assert sch.due(0.5) == [] and [e.t for e in sch.due(2.0)] == [1.0, 2.0] and sch.due(9.0) == []

    def lost(seed):
        f, world, _ = _faults(events, rate=0.5, seed=seed)
        for t in np.arange(0.0, 3.0, 0.1):
            f.due(t, 0.1, f.inject)
        return world.failed.copy()

    a, b = lost(4), lost(4)
    assert (a == b).all() and a[1] and a.sum() >= 3  # the scheduled ones and some random ones
