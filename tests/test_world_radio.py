"""The simulator's pure parts: world kinematics, the radio model, the config."""

import numpy as np
import pytest

from simulator.config import load_sim_config
from simulator.radio import Radio
from simulator.world import Status, World
from swarmcover.domain import Box, Disk

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
    radio = Radio(0.1, loss=0.3, latency=0.2, jitter=0.1, blackouts=[Disk((0.0, 0.06), 0.005)], rng=rng)
    radio.update(np.arange(4), pos)
    for _ in range(2000):
        radio.send(0, pos[0], [b"x"], now=1.0)
    assert radio.due(1.19) == []  # nothing before the latency
    got = radio.due(1.31)
    c = radio.counters
    assert {d.receiver for d in got} == {1}  # 2 is out of range, 3 is in a blackout
    assert c.dropped_blackout == 2000
    assert abs(c.dropped_loss / 2000 - 0.3) < 0.04 and len(got) == 2000 - c.dropped_loss
    assert all(1.2 <= d.at <= 1.3 for d in got) and radio.last_delivery[(0, 1)] <= 1.3


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
        load_sim_config(text=base % ', "events": [{"t": 1, "kind": "fail", "ids": [7]}]')
    with pytest.raises(ValueError, match="exactly one of"):
        load_sim_config(text=base % ', "events": [{"t": 1, "kind": "fail"}]')
    with pytest.raises(ValueError, match="not found"):
        load_sim_config(tmp_path / "missing.toml")
    f = tmp_path / "s.toml"
    f.write_text(
        'bounds = [[0, 1]]\npositions = [[0.5], [0.2]]\neps = 0.1\nspeed_limit = 1\nclock = "lockstep"\n'
        "insecure = true\n"
    )
    assert load_sim_config(f).roster == [0, 1]
