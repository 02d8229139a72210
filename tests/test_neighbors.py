"""The agent's neighbour table: epochs, sequences, relayed rows, TTL, capacity."""

import numpy as np
import pytest

from swarmcover.agents.neighbors import SILENT_TICKS, NeighborTable, Verdict
from swarmcover.protocol import Beacon

pytestmark = pytest.mark.unit


def _b(a, epoch, seq, x, t=1.7e9):
    return Beacon(agent_id=a, epoch=epoch, seq=seq, t=t, position=[x, 0.0], mass=0.1)


def test_direct_beacons_follow_epochs_and_sequences():
    tab = NeighborTable(0, 2, ttl=0.5, forget_after=2.0, capacity=8)
    assert tab.offer(_b(1, 5, 3, 0.1), now=0.0) == Verdict.ACCEPTED
    assert tab.offer(_b(1, 5, 3, 0.2), now=0.1) == Verdict.REPLAY
    assert tab.offer(_b(1, 4, 9, 0.2), now=0.1) == Verdict.OLD_EPOCH
    assert tab.offer(_b(1, 6, 1, 0.3), now=0.1) == Verdict.ACCEPTED  # restarted
    assert tab.offer(Beacon(agent_id=2, epoch=1, seq=1, t=1.0, position=[0.1], mass=0.1), 0.1) == (
        Verdict.WRONG_DIM
    )
    ids, pos, mass = tab.live(0.2)
    assert ids.tolist() == [1] and pos.tolist() == [[0.3, 0.0]] and mass.tolist() == [0.1]
    assert len(tab.live(0.7)[0]) == 0 and len(tab) == 1  # past the TTL: not live, still held
    assert tab.expire(2.2) == [1] and len(tab) == 0


def test_a_peer_is_forgotten_only_when_the_world_moved_on_without_it():
    """Lockstep on a loaded machine: 3 wall seconds pass within one tick. A peer silent that long
    in wall time, but not for SILENT_TICKS ticks, is kept; once the ticks pass it is forgotten.
    Ticks that start over (a new body) do not keep it."""
    tab = NeighborTable(0, 2, ttl=0.5, forget_after=2.0, capacity=8)
    tab.at_tick(0.0, 100)
    tab.offer(_b(1, 5, 1, 0.1), now=0.1)
    tab.offer(_b(2, 5, 1, 0.2), now=0.1)
    tab.at_tick(3.0, 101)  # the world stalled
    assert tab.expire(3.2) == [] and len(tab) == 2
    tab.offer(_b(2, 5, 2, 0.2), now=3.3)  # peer 2 speaks again
    for i in range(SILENT_TICKS - 2):  # ticks 102 .. 99 + SILENT_TICKS: one short of enough
        tab.at_tick(3.4 + 0.01 * i, 102 + i)
    assert tab.expire(3.5) == []
    tab.at_tick(3.6, 100 + SILENT_TICKS)
    assert tab.expire(3.7) == [1] and len(tab) == 1
    tab.at_tick(9.0, 3)  # a restarted body: its ticks start over
    assert tab.expire(9.1) == [2]


def test_relayed_rows_keep_the_newest_and_respect_capacity():
    tab = NeighborTable(0, 2, ttl=0.5, forget_after=2.0, capacity=3)
    ids, t = np.array([4, 5, 6]), np.array([10.0, 10.0, 10.0])
    pos, mass = np.arange(6.0).reshape(3, 2), np.full(3, 0.2)
    assert tab.offer_rows(ids, t, pos, mass, now=0.0) == {"accepted": 3, "older": 0, "full": 0, "own": 0}
    # an older copy (jitter) does not replace; a newer one does; a fourth peer finds the table full
    got = tab.offer_rows(np.array([4, 5, 7]), np.array([9.0, 11.0, 11.0]), pos + 100, mass, now=0.1)
    assert got == {"accepted": 1, "older": 1, "full": 1, "own": 0}
    ids_live, pos_live, _ = tab.live(0.2)
    assert dict(zip(ids_live.tolist(), pos_live[:, 0].tolist(), strict=True)) == {4: 0.0, 5: 102.0, 6: 4.0}
    # once 4 and 6 are stale (past the TTL), a new peer may take the stalest slot
    got = tab.offer_rows(np.array([7]), np.array([12.0]), np.array([[7.0, 7.0]]), np.array([0.2]), now=0.65)
    assert got["accepted"] == 1 and 7 in tab.live(0.65)[0].tolist()
    assert len(tab) == 3


def test_own_id_is_never_a_neighbour():
    tab = NeighborTable(3, 2, ttl=0.5, forget_after=2.0, capacity=4)
    assert tab.offer(_b(3, 1, 1, 0.5), now=0.0) == Verdict.OWN
    got = tab.offer_rows(np.array([2, 3]), np.array([1.0, 1.0]), np.zeros((2, 2)), np.full(2, 0.1), now=0.0)
    assert got == {"accepted": 1, "older": 0, "full": 0, "own": 1}
    # and once the others are held, a row with the own id still does not get in
    got = tab.offer_rows(np.array([2, 3]), np.array([2.0, 2.0]), np.ones((2, 2)), np.full(2, 0.1), now=0.1)
    assert got == {"accepted": 1, "older": 0, "full": 0, "own": 1}
    assert tab.live(0.1)[0].tolist() == [2] and len(tab) == 1


def test_offer_relayed_equals_offer_rows_step_by_step(c_kernel):
    """``offer_relayed`` (one C call on the usual tick where built) leaves the table exactly as
    ``offer_rows`` does, and says the same, over random ticks: held senders newer or older, new
    senders, the own id, a full table, expiry."""
    rng = np.random.default_rng(7)
    for d in (1, 2):
        fast = NeighborTable(0, d, ttl=0.5, forget_after=2.0, capacity=24)
        slow = NeighborTable(0, d, ttl=0.5, forget_after=2.0, capacity=24)
        t_sent = np.zeros(40)
        usual = 0
        for step in range(400):
            now = 0.05 * step
            pool = np.arange(0, 30) if rng.random() < 0.3 else np.arange(1, 20)  # sometimes new ids, own id
            ids = rng.choice(pool, size=int(rng.integers(0, 15)), replace=False)
            t_sent[ids] += rng.choice([1.0, -0.5], size=len(ids), p=[0.95, 0.05])  # jitter: some older
            rows = np.c_[ids, t_sent[ids], rng.random((len(ids), d)), rng.uniform(0.01, 1.0, len(ids))]
            was_clean = not fast._dirty
            got = fast.offer_relayed(rows, now)
            want = slow.offer_rows(ids.astype(np.int64), rows[:, 1], rows[:, 2 : 2 + d], rows[:, 2 + d], now)
            assert got == want, step
            usual += was_clean and got["accepted"] == len(ids) > 0
            for name in ("_ids", "_t", "_pos", "_mass", "_heard"):
                assert np.array_equal(getattr(fast, name), getattr(slow, name)), (step, name)
            if step % 37 == 0:
                assert fast.expire(now) == slow.expire(now)
        assert usual > 100  # the fast path had ticks to take


def test_offer_relayed_leaves_rows_that_are_not_ids_to_the_checked_path(c_kernel):
    """Rows the decoder would refuse (NaN, negative or too large an id) are left alone by the C
    update, which writes nothing (the agent only passes decoded rows; this guards the C code)."""
    tab = NeighborTable(0, 2, ttl=0.5, forget_after=2.0, capacity=4)
    ok = np.array([[1.0, 1.0, 0.1, 0.2, 0.5]])
    assert tab.offer_relayed(ok, 0.0)["accepted"] == 1
    tab._lookup(np.array([1]))  # the sorted index is current: the C update may run
    if not c_kernel:
        pytest.skip("the C hot path was not built")
    from swarmcover._hotpath import table_update

    arrays = (tab._sorted_ids, tab._sorted_slots, tab._t, tab._pos, tab._mass, tab._heard)
    for bad in (np.nan, -1.0, 2.0**40, 1.0 + 2.0**32):
        assert table_update(*arrays, np.array([[bad, 2.0, 0.3, 0.4, 0.5]]), 0.1) is False
        assert tab.live(0.1)[1].tolist() == [[0.1, 0.2]]  # nothing written
    assert table_update(*arrays, np.array([[1.0, 2.0, 0.3, 0.4, 0.5]]), 0.1) is True  # a real id is taken
    assert tab.live(0.1)[1].tolist() == [[0.3, 0.4]]
