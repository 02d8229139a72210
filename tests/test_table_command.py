"""An agent's usual command in one C call (``AgentPolicy.table_command``) against the path it
replaces: the neighbour table's live rows selected and capped as ``Hearing.live`` does, then the
policy's ``velocity`` chain (law, separation barrier, drift, speed limit); None only where a
neighbour coincides with the agent."""

from __future__ import annotations

import numpy as np
import pytest

import swarmcover.policy as policy
from swarmcover.domain import Box
from swarmcover.law import BlobLaw
from swarmcover.policy import AgentPolicy
from swarmcover.schedule import CoverageSchedule, Stage
from swarmcover.targets import GaussianMixture

pytestmark = pytest.mark.unit

SIDE, EPS, MASS = 4.0, 0.3, 0.02


def _field(boundary: str):
    target = GaussianMixture([[1.5, 2.0], [3.0, 1.0]], [0.6, 0.4], bounds=[(0.0, SIDE), (0.0, SIDE)])
    f = BlobLaw(target, EPS, MASS, boundary=boundary).field
    return f.coef, f.origin, f.spacing


def _slow(p: AgentPolicy, x, heard, pos, mass, since, cap, field, stage):
    """Hearing.live's selection and cap, then the policy's chain."""
    k = np.flatnonzero(heard >= since)
    ids, lp, lm = k, pos[k], mass[k]
    over = lm > cap * (1.0 + 1e-9)
    if over.any():
        lm = np.minimum(lm, cap)
    return len(k), int(over.sum()), p.velocity(x, ids, lp, lm, field, stage, 0.0)


@pytest.mark.parametrize("boundary", ["reflect", "free"])
def test_one_call_command_equals_the_selected_rows_through_the_chain(rng, c_kernel, boundary):
    if not c_kernel:
        pytest.skip("the C hot path was not built")
    field, stage = _field(boundary), Stage(EPS, None, 0.0)
    seen = {"fast": 0, "barrier": 0, "coincident": 0, "capped": 0, "drift": 0, "empty": 0}
    for trial in range(300):
        r_min = [None, 0.05, 0.3][trial % 3]
        p = AgentPolicy(agent_id=0, box=Box([(0.0, SIDE), (0.0, SIDE)]), mass=MASS, speed_limit=0.5,
                        schedule=CoverageSchedule.fixed(EPS), boundary=boundary, r_min=r_min, kernel="c",
                        wind_tau=1.0 if trial % 4 == 0 else 0.0)  # fmt: skip
        if trial % 4 == 0:  # a wind estimate the chain subtracts
            p.drift.est = rng.normal(size=2) * 0.1
            seen["drift"] += p.drift.estimate is not None
        n = int(rng.integers(0, 40))
        x = rng.uniform(0.0, SIDE, size=2) if trial % 5 else rng.uniform(0.0, 0.2, size=2)  # near a corner
        pos = np.clip(x + rng.normal(size=(n, 2)) * 0.5, 0.0, SIDE)
        heard = rng.choice([-np.inf, 5.0, 9.5, 10.0], size=n)  # free slots, stale, live (since 9.0)
        mass = np.full(n, MASS)
        if trial % 3 == 1 and n:
            mass[rng.integers(0, n)] = MASS * rng.choice([1.5, 1 + 1e-10])  # claims above the fleet's
        if trial % 7 == 2 and n:  # a neighbour on top of the agent, or just off it
            pos[rng.integers(0, n)] = x + rng.choice([0.0, 1e-13, 0.01])
        want = _slow(p, x, heard, pos, mass, 9.0, MASS, field, stage)
        got = p.table_command(x, heard, pos, mass, 9.0, MASS, field, stage, 0.0)
        live_r = np.linalg.norm(pos[heard >= 9.0] - x, axis=1)
        if got is None:  # only where a live neighbour coincides (the numpy path's tie-break)
            assert r_min is not None and (live_r < 1e-9 * r_min).any()
            seen["coincident"] += 1
            continue
        seen["barrier"] += r_min is not None and bool((live_r < p.sep.radius).any())
        seen["fast"] += 1
        seen["capped"] += got[1] > 0
        seen["empty"] += got[0] == 0
        assert got[:2] == want[:2]
        np.testing.assert_allclose(got[2], want[2], rtol=1e-12, atol=1e-15)
    assert min(seen.values()) > 0, seen  # every case was tried


def test_one_call_command_steps_aside_where_it_does_not_apply(rng, monkeypatch):
    """Another kernel, a planned path, or no C extension: None (the caller takes the chain)."""
    field, stage = _field("reflect"), Stage(EPS, None, 0.0)
    heard, pos, mass = np.array([10.0]), np.array([[1.0, 1.0]]), np.array([MASS])
    x = np.array([1.2, 1.0])
    p = AgentPolicy(agent_id=0, box=Box([(0.0, SIDE), (0.0, SIDE)]), mass=MASS, speed_limit=0.5,
                    schedule=CoverageSchedule.fixed(EPS), kernel="numpy")  # fmt: skip
    assert p.table_command(x, heard, pos, mass, 9.0, MASS, field, stage) is None
    from swarmcover.tracking import PathTracker

    p.kernel = "c"
    p.follow(PathTracker([0.0, 10.0], [[1.2, 1.0], [2.0, 2.0]], 1))
    assert p.table_command(x, heard, pos, mass, 9.0, MASS, field, stage, t=5.0) is None
    monkeypatch.setattr(policy, "_c_command", None)
    assert p.table_command(x, heard, pos, mass, 9.0, MASS, field, stage, t=20.0) is None


def test_one_call_command_names_a_bad_argument(c_kernel):
    """The C call checks what it is handed (a ValueError naming the argument), as velocity() does."""
    if not c_kernel:
        pytest.skip("the C hot path was not built")
    from swarmcover._hotpath import command

    coef, origin, spacing = _field("free")
    x, heard, pos, mass = np.array([1.0, 1.0]), np.array([10.0]), np.array([[1.5, 1.0]]), np.array([MASS])
    args = [x, heard, pos, mass, 9.0, MASS, coef, origin, spacing, MASS, EPS, None, None, 3.0, None, 1.0, 0.5]
    args.append(None)  # no drift
    assert command(*args)[0] == 1
    bad_ones = [(2, np.zeros((2, 2)), "pos"), (3, np.zeros(3), "mass"), (14, (0.1, 0.2), "sep"),
                (17, np.zeros(3), "drift"), (11, np.zeros(2), "walls"), (10, 0.0, "eps")]  # fmt: skip
    for at, bad, what in bad_ones:
        wrong = list(args)
        wrong[at] = bad
        with pytest.raises(ValueError, match=what):
            command(*wrong)
