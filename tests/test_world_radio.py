"""The simulator's pure parts: world kinematics, the radio model, the config."""

import numpy as np
import pytest

from swarmcover.domain import Box, Disk
from swarmcover.simulator.config import load_sim_config
from swarmcover.simulator.radio import Radio
from swarmcover.simulator.world import Status, World

pytestmark = pytest.mark.unit

BOX = Box([(0, 1), (0, 1)])


def test_bodies_cannot_enter_zones_and_slide_along_walls():
    w = World([0, 1], [[0.3, 0.5], [0.5, 0.999]], BOX, speed_limit=1.0, zones=[Disk((0.5, 0.5), 0.1)])
    w.connected[:] = True
    for _ in range(50):
        w.set_command(0, np.array([1.0, 0.05]), 0.0)  # straight into the disk
        w.set_command(1, np.array([0.3, 1.0]), 0.0)  # into the top wall, at an angle
        w.step(0.01, 0.0, None)
        assert np.hypot(*(w.x[0] - 0.5)) >= 0.1
    assert w.x[1, 1] == 1.0 and w.x[1, 0] > 0.6  # slid along the wall


def test_failed_bodies_drift_with_the_wind_and_live_ones_obey():
    wind = lambda x: np.broadcast_to([0.1, 0.0], x.shape)  # noqa: E731
    w = World([0, 1], [[0.2, 0.2], [0.2, 0.6]], BOX, speed_limit=1.0, wind=wind)
    w.connected[:] = True
    w.failed[0] = True
    w.set_command(0, np.array([0.0, 0.5]), 0.0)
    w.set_command(1, np.array([0.0, 0.5]), 0.0)
    w.step(1.0, 0.0, None)
    assert np.allclose(w.x, [[0.3, 0.2], [0.3, 1.0]])
    assert list(w.status()) == [Status.FAILED, Status.LIVE]


def test_stale_commands_are_not_applied_in_real_time():
    w = World([0], [[0.5, 0.5]], BOX, speed_limit=1.0)
    w.connected[:] = True
    w.set_command(0, np.array([0.1, 0.0]), wall_now=10.0)
    w.step(1.0, wall_now=10.2, command_ttl=0.5)
    w.step(1.0, wall_now=11.0, command_ttl=0.5)
    assert np.allclose(w.x, [[0.6, 0.5]]) and w.status()[0] == Status.STALE


def test_radio_range_loss_latency_and_blackout(rng):
    pos = np.array([[0.0, 0.0], [0.05, 0.0], [0.5, 0.0], [0.0, 0.06]])
    radio = Radio(range(4), 2, 0.1, loss=0.3, latency=0.2, jitter=0.1, blackouts=[Disk((0.0, 0.06), 0.005)],
                  rng=rng)  # fmt: skip
    radio.update(np.arange(4), pos)
    for k in range(2000):
        radio.send(0, pos[0], t=1000.0 + k, mass=0.25, now=1.0)
    assert len(radio.collect(1, 1.19)) == 0  # nothing before the latency
    c = radio.counters
    assert c.dropped_blackout == 2000  # 3 is in a blackout; 2 is out of range
    assert abs(c.dropped_loss / 2000 - 0.3) < 0.04
    rows = radio.collect(1, 1.31)
    # one row: the newest beacon that arrived (every other copy was replaced by a newer one or,
    # arriving after a newer one by jitter, discarded)
    assert rows.shape == (1, 7) and rows[0, 0] == 0 and 1000 <= rows[0, 1] < 3000
    # [id, t, position, mass, phase epoch, phase age]: these beacons carried no phase (epoch -1)
    assert np.array_equal(rows[0, 2:4], pos[0]) and rows[0, 4] == 0.25 and list(rows[0, 5:]) == [-1.0, 0.0]
    assert c.delivered == 1 and c.superseded == 2000 - c.dropped_loss - 1
    assert len(radio.collect(1, 5.0)) == 0  # collected once
    assert len(radio.collect(2, 5.0)) == 0 and len(radio.collect(3, 5.0)) == 0
    assert set(radio.last_heard(0)) == {1} and 1.2 <= radio.last_heard(0)[1] <= 1.3


def test_radio_latency_longer_than_the_beacon_period_still_delivers():
    """Copies in flight are not replaced by newer beacons before they arrive: with a latency of
    five beacon periods the receiver gets every beacon, five periods late."""
    radio = Radio([10, 11], 1, 1.0, latency=0.5)
    radio.update(np.array([10, 11]), np.array([[0.0], [0.5]]))
    got = []
    for k in range(20):
        now = 0.1 * k
        radio.send(10, np.array([0.0]), t=now, mass=0.5, now=now)
        got += radio.collect(11, now + 1e-9).tolist()
    assert [round(r[1], 6) for r in got] == [round(0.1 * k, 6) for k in range(15)]
    assert radio.counters.delivered == 15 and radio.counters.superseded == 0


def test_radio_forget_drops_copies_in_flight():
    radio = Radio([0, 1, 2], 1, 1.0, latency=0.5)
    radio.update(np.arange(3), np.array([[0.0], [0.1], [0.2]]))
    radio.send(0, np.array([0.0]), t=1.0, mass=0.1, now=0.0)
    radio.forget(1)
    assert len(radio.collect(1, 1.0)) == 0 and len(radio.collect(2, 1.0)) == 1


def test_sim_config_errors_name_the_key(tmp_path):
    base = (
        '{"bounds": [[0, 1], [0, 1]], "positions": [[0.5, 0.5]], "eps": 0.1, "speed_limit": 1, '
        '"insecure": true%s}'
    )
    with pytest.raises(ValueError, match="tickk"):
        load_sim_config(text=base % ', "tickk": 1')
    with pytest.raises(ValueError, match=r"radio\.loss"):
        load_sim_config(text=base % ', "radio": {"loss": 1.5}')
    with pytest.raises(ValueError, match="not in the roster"):
        load_sim_config(text=base % ', "failures": [{"t": 1, "kind": "fail", "ids": [7]}]')
    with pytest.raises(ValueError, match="exactly one of"):
        load_sim_config(text=base % ', "failures": [{"t": 1, "kind": "fail"}]')
    with pytest.raises(ValueError, match="`events` is now called `failures`"):  # a key renamed
        load_sim_config(text=base % ', "events": [{"t": 1, "kind": "fail", "ids": [0]}]')
    with pytest.raises(ValueError, match="not found"):
        load_sim_config(tmp_path / "missing.toml")
    f = tmp_path / "s.toml"
    f.write_text(
        'bounds = [[0, 1]]\npositions = [[0.5], [0.2]]\neps = 0.1\nspeed_limit = 1\nclock = "lockstep"\n'
        "insecure = true\n"
    )
    assert load_sim_config(f).roster == [0, 1]


@pytest.mark.parametrize("loss", [0.0, 0.3])
def test_radio_without_latency_delivers_as_the_queue_does(rng, loss):
    """Zero latency stores copies as they are sent; a latency too small to matter goes through
    the queue of copies in flight: the receivers get the same rows and the counters agree."""
    ids = list(range(30))
    radios = [Radio(ids, 2, 0.4, loss=loss, latency=lat, rng=np.random.default_rng(5)) for lat in (0.0, 1e-9)]
    for step in range(20):
        x = rng.random((30, 2))
        alive = rng.random(30) > 0.1
        senders = rng.permutation(30)[:20]
        for r in radios:
            r.update(np.flatnonzero(alive), x[alive])
            for k, s in enumerate(senders):  # two beacons from some senders: the older is superseded
                for rep in range(1 + (k % 3 == 0)):
                    t, now = step + 0.01 * rep, step + 0.001 * k
                    r.send(int(s), x[s], t=t, mass=0.1, now=now, can_send=alive[s])
        now = step + 0.5
        for rcv in rng.permutation(30)[:25]:
            a, b = (r.collect(int(rcv), now) for r in radios)
            assert np.array_equal(a[np.argsort(a[:, 0])], b[np.argsort(b[:, 0])])
    assert radios[0].counters == radios[1].counters and radios[0].counters.delivered > 1000


def test_the_documented_simulator_config_loads():
    """docs/simulator.md's example ``sim.toml`` is a valid simulator config (its keys are the code's)."""
    import re
    from pathlib import Path

    import tomllib

    from swarmcover.simulator.config import SimConfig

    text = (Path(__file__).resolve().parents[1] / "docs" / "simulator.md").read_text(encoding="utf-8")
    block = re.search(r"```toml\n(# sim\.toml.*?)```", text, re.S)
    assert block is not None, "docs/simulator.md lost its sim.toml example"
    cfg = SimConfig.model_validate(tomllib.loads(block.group(1)))
    assert cfg.failures and cfg.failures[0].fraction == 0.25 and cfg.radio.loss == 0.1


def _reference_radio(pos: np.ndarray, range_: float):
    """The radio's rule written out plainly: a beacon reaches every other robot within range of
    where it was sent; each receiver keeps the newest per sender until it collects it."""
    held: dict[tuple[int, int], tuple] = {}  # (receiver, sender) -> (t, position, mass), fresh

    def send(s: int, where: np.ndarray, t: float, mass: float) -> None:
        for r in range(len(pos)):
            if r != s and np.linalg.norm(pos[r] - where) <= range_:
                old = held.get((r, s))
                if old is None or t > old[0]:
                    held[(r, s)] = (t, tuple(where), mass)

    def collect(r: int) -> set:
        got = {(s, *v[:1], *v[1], v[2]) for (rr, s), v in held.items() if rr == r}
        for key in [k for k in held if k[0] == r]:
            del held[key]
        return got

    return send, collect


def test_batched_and_single_beacon_delivery_match_the_plain_rule(rng):
    """Beacons handed over one at a time (each read delivers one: the real-time case), in batches
    (a lockstep drain), from where the tick put their senders or from elsewhere, with a sender
    repeating itself within a batch: what every receiver collects equals the plain rule, copy for
    copy."""
    n, range_ = 60, 0.2
    pos = rng.random((n, 2))
    radio = Radio(range(n), 2, range_)
    radio.update(np.arange(n), pos)
    send, collect = _reference_radio(pos, range_)
    t = 0.0
    for _ in range(400):
        t += 0.01
        s = int(rng.integers(n))
        where = pos[s] if rng.random() < 0.8 else rng.random(2)  # mostly where the tick put it
        mass = float(rng.uniform(0.01, 1.0))
        radio.send(s, where, t=t, mass=mass, now=t)
        send(s, where, t, mass)
        if rng.random() < 0.3:  # a read now and then: batches of 1 to a dozen beacons
            r = int(rng.integers(n))
            rows = radio.collect(r, t)
            assert {(int(row[0]), row[1], row[2], row[3], row[4]) for row in rows} == collect(r)
    for r in range(n):
        rows = radio.collect(r, t)
        assert {(int(row[0]), row[1], row[2], row[3], row[4]) for row in rows} == collect(r)
    assert radio.counters.sent == 400


def test_a_copys_loss_and_jitter_do_not_depend_on_the_order_beacons_arrive_in(rng):
    """Two radios with one seed get the same beacons, each tick in another order (as commands reach
    a lockstep simulator): they lose the same copies and delay them alike, so the receivers collect
    the same rows. Loss and jitter keep their rates."""
    n = 40
    radios = [
        Radio(range(n), 2, 0.3, loss=0.4, latency=0.05, jitter=0.1, rng=np.random.default_rng(9))
        for _ in "ab"
    ]
    for step in range(15):
        x = rng.random((n, 2))
        for k, r in enumerate(radios):
            r.update(np.arange(n), x)
            order = np.arange(n) if k == 0 else rng.permutation(n)
            for s in order:
                r.send(int(s), x[s], t=float(step), mass=0.1, now=float(step))
        for rcv in range(n):
            a, b = (r.collect(rcv, step + 0.12) for r in radios)
            assert np.array_equal(a[np.argsort(a[:, 0])], b[np.argsort(b[:, 0])])
    c = radios[0].counters
    assert c == radios[1].counters
    copies = c.dropped_loss + c.delivered + c.superseded
    assert abs(c.dropped_loss / copies - 0.4) < 0.03, c
    for rcv in range(n):  # the last tick's copies all land
        radios[0].collect(rcv, 100.0)
    arrived = radios[0]._store_rows[:, :, 0][radios[0]._store_rows[:, :, 1] == 14.0] - 14.0
    assert 0.05 <= arrived.min() and arrived.max() < 0.15 and abs(arrived.mean() - 0.1) < 0.01
