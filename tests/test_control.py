"""Gain, separation and the controller: invariants and single-agent vs fleet cross-checks."""

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.control import Separation, gain_for, saturate

pytestmark = pytest.mark.unit


def test_separation_profile_is_a_barrier_with_compact_support():
    sep = Separation(r_min=1.0, speed=2.0, reach=2.0, cap=50.0)
    r = np.linspace(0.0, 3.0, 301)
    s = sep.strength(r)
    assert np.all(s[r >= 2.0] == 0.0)  # the law is untouched beyond reach * r_min
    assert np.all(s[(r > 1.0) & (r < 2.0)] > 0.0)
    assert np.all(np.diff(s[r > 1.0]) <= 0.0)  # monotone: closer means a harder push
    assert sep.strength(1.0 + 1e-9) == 50.0 and sep.strength(0.5) == 50.0  # capped barrier
    assert sep.strength(1.5) == pytest.approx(0.5**2 / (1.0 * 0.5))


def test_separation_is_antisymmetric_and_splits_coincident_agents(rng):
    sep = Separation(r_min=0.1, speed=1.0)
    x = rng.random((40, 2))
    x[5] = x[6]  # a coincident pair
    v = sep.velocities(x, ids=np.arange(100, 140))
    assert np.allclose(v.sum(axis=0), 0.0, atol=1e-9)  # pairwise forces cancel in total
    assert np.linalg.norm(v[5] - v[6]) > 1.0  # the pair is pushed apart, not left together
    # one agent's view equals the fleet's row
    for i in (0, 5, 6, 17):
        others = np.delete(np.arange(40), i)
        one = sep.velocity(x[i], x[others], own_id=100 + i, neighbor_ids=100 + others)
        assert np.allclose(one, v[i], atol=1e-12)


def test_controller_single_agent_matches_fleet(rng):
    target = sc.GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.01, 0.02], bounds=[(0, 1), (0, 1)])
    n = 60
    law = sc.BlobLaw(target, 0.08, 1.0 / n, target_smoothing=0.08)
    ctrl = sc.Controller.for_fleet(law, speed_limit=0.5, r_min=0.03)
    x = rng.random((n, 2))
    x[3] = x[4] + 0.001
    fleet = ctrl.commands(x, ids=np.arange(n), method="pairwise")
    for i in range(n):
        others = np.delete(np.arange(n), i)
        one = ctrl.command(x[i], x[others], own_id=i, neighbor_ids=others)
        assert np.allclose(one, fleet[i], rtol=1e-9, atol=1e-12)
    assert np.all(np.linalg.norm(fleet, axis=1) <= 0.5 * (1 + 1e-12))


def test_gain_rule_and_saturation():
    assert gain_for(0.2, 3.0, mismatch=0.5) == pytest.approx(1.2)
    v = np.array([[3.0, 4.0], [0.3, 0.4]])
    out = saturate(v, 1.0)
    assert np.allclose(out, [[0.6, 0.8], [0.3, 0.4]])
    with pytest.raises(ValueError, match="speed_limit"):
        gain_for(0.2, -1.0)
    with pytest.raises(ValueError, match="reach"):
        Separation(0.1, 1.0, reach=1.0)
    with pytest.raises(ValueError, match="r_min"):
        Separation(0.0, 1.0)


def test_separation_holds_against_a_huge_pull(rng):
    """Off the support w = 1/floor is huge; with the law saturated first, the barrier wins."""
    target = sc.GaussianMixture([[0.5, 0.5]], [0.0004], bounds=[(0, 1), (0, 1)], truncate=2.0)
    n = 30
    law = sc.BlobLaw(target, 0.05, 1.0 / n, target_smoothing=0.05)
    x0 = 0.5 + 0.3 * (rng.random((n, 2)) - 0.5)
    sep = Separation(0.02, 1.0)
    res = sc.flow(law, x0, 1.0, speed_limit=1.0, gain=gain_for(0.05, 1.0) * 100, separation=sep)
    dist = np.linalg.norm(res.x[:, None] - res.x[None], axis=2) + np.eye(n)
    assert dist.min() >= 0.02
    # and the fleet did gather on the tiny bump (the pull was real)
    assert np.median(np.linalg.norm(res.x - 0.5, axis=1)) < 0.1, res.n_steps


def test_clip_speed_equals_saturate_on_one_row(rng):
    from swarmcover.control import clip_speed, saturate

    for v in rng.normal(0.0, 2.0, (200, 2)):
        assert np.allclose(clip_speed(v, 1.0), saturate(v[None], 1.0)[0], rtol=1e-15, atol=0)


def test_one_agent_separation_equals_the_fleet_wide_one(rng):
    """``Separation.velocity`` for one agent (with its C shortcut when nobody is within reach, where
    built) equals its row of the fleet-wide ``velocities``, near and far from others."""
    from swarmcover.control import Separation

    sep = Separation(r_min=0.05, speed=1.0)
    for _ in range(50):
        x = rng.random((int(rng.integers(2, 30)), 2))
        ids = rng.permutation(1000)[: len(x)]
        want = sep.velocities(x, ids)
        for i in range(len(x)):
            got = sep.velocity(x[i], np.delete(x, i, axis=0), int(ids[i]), np.delete(ids, i))
            assert np.allclose(got, want[i], rtol=1e-12, atol=1e-12)
