"""The agent's decisions in process: schedule phases, loss detection, the drift estimate, the
service objective, and the lockstep ``cover`` they are cross-checked against."""

import math

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.coverage import cover
from swarmcover.domain import Box
from swarmcover.policy import REACH_MARGIN, AgentPolicy, DriftEstimator, LossWatch
from swarmcover.schedule import CoverageSchedule, PhaseClock, Stage
from swarmcover.simulator.world import World

pytestmark = pytest.mark.unit

SCHED = CoverageSchedule((Stage(0.3, 0.3, 2.0), Stage(0.2, 0.2, 1.0), Stage(0.1, 0.1, 0.0)))
AFTER = CoverageSchedule((Stage(0.15, 0.15, 1.0), Stage(0.1, 0.1, 0.0)))


def test_phase_clock_follows_its_schedule_and_restarts_on_the_after_losses_one():
    c = PhaseClock(SCHED, AFTER)
    c.begin(5.0)
    assert [c.stage_index(t) for t in (5.0, 6.9, 7.0, 7.99, 8.0, 100.0)] == [0, 0, 1, 1, 2, 2]
    c.begin(6.0)  # a phase is held: begin does nothing
    assert c.phase.start == 5.0 and c.cause == "start"
    p = c.restart(9.0)
    assert (
        p.epoch == 1
        and c.cause == "losses"
        and c.stage(9.5) == AFTER.stages[0]
        and c.stage(10.0) == AFTER.stages[1]
    )
    assert c.restart(9.5).epoch == 2


def test_phase_adoption_rules():
    c = PhaseClock(SCHED, AFTER)
    c.begin(10.0)
    assert c.hear(0, 3.0, 10.0) and c.phase.start == 7.0 and c.cause == "neighbours"  # same epoch, earlier
    assert not c.hear(0, 1.0, 10.0) and c.phase.start == 7.0  # same epoch, later: kept
    assert c.hear(2, 0.5, 11.0) and c.phase.epoch == 2 and c.phase.start == 10.5  # higher epoch
    assert not c.hear(1, 50.0, 11.0) and c.phase.epoch == 2  # lower epoch, however old
    for bad in ((-1, 1.0), (3, -1.0), (3, math.nan), (3, math.inf), (1 << 40, 1.0)):
        assert not c.hear(*bad, 11.0) and c.phase.epoch == 2
    # arrays: -1 (no phase given) ignored; only the one furthest ahead matters
    assert c.hear_many(np.array([-1.0, 3.0, 3.0, 1.0]), np.array([9.0, 0.2, 0.7, 9.0]), 12.0)
    assert c.phase.epoch == 3 and c.phase.start == pytest.approx(11.3)
    assert not c.hear_many(np.array([-1.0]), np.array([0.0]), 12.0)


@pytest.mark.parametrize("path", ["c", "python"])
def test_hear_many_takes_the_phase_furthest_ahead_as_the_array_rule_says(path, rng, c_kernel, monkeypatch):
    """``hear_many`` (the C pass, or one pass over Python floats where C was not built) against the
    rule written with arrays: of the valid rows (epoch an integer in [0, max_epoch], age finite and
    >= 0) the highest epoch and, of its rows, the largest age is heard; junk rows (NaN, inf,
    negative, too high) never count. The rows are strided columns, as an agent passes them."""
    from swarmcover import schedule

    if path == "c" and not c_kernel:
        pytest.skip("the C hot path was not built")
    if path == "python":
        monkeypatch.setattr(schedule, "_phase_top", None)
    junk = [math.nan, math.inf, -math.inf, -1.0, -0.5, float(1 << 40)]
    for _ in range(300):
        k = int(rng.integers(1, 12))
        epochs = rng.integers(-1, 4, size=k).astype(float)
        ages = rng.uniform(0.0, 5.0, size=k)
        for arr in (epochs, ages):
            bad = rng.random(k) < 0.15
            arr[bad] = rng.choice(junk, size=int(bad.sum()))
        rows = np.column_stack([rng.random(k), epochs, ages])  # relayed rows' columns: strided views
        epochs, ages = rows[:, 1], rows[:, 2]
        ok = (epochs >= 0) & (epochs <= PhaseClock(SCHED, AFTER).max_epoch) & np.isfinite(ages) & (ages >= 0)
        c, ref = PhaseClock(SCHED, AFTER), PhaseClock(SCHED, AFTER)
        c.begin(10.0)
        ref.begin(10.0)
        want = False
        if ok.any():
            top = epochs[ok].max()
            want = ref.hear(int(top), float(ages[ok][epochs[ok] == top].max()), 12.0)
        assert c.hear_many(epochs, ages, 12.0) is want
        assert c.phase == ref.phase and c.deferred == ref.deferred


def test_a_peer_claiming_ever_higher_epochs_restarts_an_agent_at_most_once_per_annealing():
    c = PhaseClock(SCHED, AFTER)  # holdoff: AFTER's stages but the last, 1.0
    assert c.holdoff == pytest.approx(1.0)
    c.begin(0.0)
    assert c.hear(1, 0.0, 5.0) and (c.phase.epoch, c.phase.start) == (1, 5.0)  # the first: never held off
    adopted, t = [], 5.0
    for k in range(2, 202):  # a liar's beacon every 0.05 s, each claiming a newer restart
        t += 0.05
        if c.hear(k, 0.0, t):
            adopted.append(round(t, 2))
    # 10 s of lies: one restart taken up per second (each after the last had annealed), not 200
    assert len(adopted) in (9, 10) and np.all(np.diff([5.0, *adopted]) >= 1.0 - 1e-9), adopted
    assert c.deferred == 200 - len(adopted)
    assert c.stage(t) == AFTER.stages[0] and c.stage(c.phase.start + 1.0) == AFTER.stages[-1]
    # the same epoch started earlier is still taken at once (agents settling on the first restart)
    assert c.hear(c.phase.epoch, 2.0, t) and c.phase.start == pytest.approx(t - 2.0)
    # an agent's own restart is not held off; no holdoff at all with holdoff=0
    held = c.phase.epoch
    assert c.restart(t).epoch == held + 1
    free = PhaseClock(SCHED, AFTER, holdoff=0.0)
    free.begin(0.0)
    assert all(free.hear(k, 0.0, 1.0 + 0.01 * k) for k in range(1, 50)) and free.deferred == 0
    with pytest.raises(ValueError, match="holdoff"):
        PhaseClock(SCHED, AFTER, holdoff=-1.0)


def test_a_late_joiner_takes_up_the_stage_its_neighbours_are_in():
    fleet, late = PhaseClock(SCHED), PhaseClock(SCHED)
    fleet.begin(0.0)
    late.begin(2.5)  # joins at t = 2.5, when the fleet is in stage 1
    assert late.stage_index(2.5) == 0
    assert late.hear(0, fleet.age(2.5), 2.5) and late.stage_index(2.5) == fleet.stage_index(2.5) == 1
    # two agents that restarted for the same losses, a moment apart, settle on the earlier start
    a, b = PhaseClock(SCHED, AFTER), PhaseClock(SCHED, AFTER)
    a.begin(0.0), b.begin(0.0)
    a.restart(20.0), b.restart(20.3)
    assert b.hear(1, a.age(20.4), 20.4) and b.phase.start == pytest.approx(20.0)
    assert not a.hear(1, b.age(20.4), 20.4) and a.phase.start == 20.0


def test_loss_watch_counts_only_near_peers_silent_since_the_phase_began():
    w = LossWatch(2)
    w.reset(since=10.0)
    x = np.zeros(2)
    far = np.array([[5.0, 0.0]])
    assert not w.forgotten(far, np.array([11.0]), x, radius=1.0)  # out of the radius
    assert not w.forgotten(np.array([[0.5, 0.0]]), np.array([9.0]), x, radius=1.0)  # silent before the phase
    assert not w.forgotten(np.array([[0.5, 0.0]]), np.array([11.0]), x, radius=1.0) and w.count == 1
    assert w.forgotten(np.array([[0.0, -0.9]]), np.array([12.0]), x, radius=1.0) and w.count == 2
    assert not LossWatch(0).forgotten(np.zeros((3, 2)), np.full(3, 99.0), x, 1.0)  # 0: never
    with pytest.raises(ValueError):
        LossWatch(-1)


def test_loss_watch_learns_the_radio_reach_and_measures_from_where_the_agent_was():
    """A peer that falls silent at the edge of the reach heard so far went out of range; one well
    inside it is lost. Both are measured from where the agent was when it last heard them."""
    w = LossWatch(1)
    w.reset(since=0.0)
    x = np.zeros(2)
    w.heard(x, np.array([[0.3, 0.0], [0.0, 1.0], [0.5, 0.5]]))  # the radio reaches 1.0
    assert w.reach == pytest.approx(1.0)
    w.heard(x, np.array([[0.2, 0.0]]))  # a nearer peer does not shrink it
    assert w.reach == pytest.approx(1.0)
    # last heard 0.98 away, within the law's radius (2.0): drifted out, not lost
    assert not w.forgotten(np.array([[0.98, 0.0]]), np.array([1.0]), x, radius=2.0) and w.count == 0
    # the agent moved 0.5 towards where the peer was since it last heard it: still out of range
    w.moved(np.zeros(2), wall=1.0)
    w.moved(np.array([0.5, 0.0]), wall=2.0)
    assert not w.forgotten(np.array([[0.97, 0.0]]), np.array([1.5]), np.array([0.5, 0.0]), radius=2.0)
    # well inside the reach when last heard: lost
    assert w.forgotten(np.array([[0.4, 0.0]]), np.array([1.5]), np.array([0.5, 0.0]), radius=2.0)
    # the law's radius still bounds it when the radio reaches farther
    v = LossWatch(1)
    v.heard(x, np.array([[5.0, 0.0]]))
    assert not v.forgotten(np.array([[1.5, 0.0]]), np.array([1.0]), x, radius=1.0)
    assert REACH_MARGIN < 1.0


def test_loss_watch_reach_is_the_same_with_and_without_the_c_call(rng, monkeypatch):
    """The reach is the farthest neighbour heard, whether the optional C call or its numpy twin
    measures it (from relayed rows: a column slice, not contiguous)."""
    import swarmcover.policy as policy

    rows = rng.normal(size=(50, 5)) * 3.0
    x = rng.normal(size=2)
    want = math.sqrt(float(np.max(np.sum((rows[:, 2:4] - x) ** 2, axis=1))))
    got = []
    for c in (policy._farthest2, None):
        monkeypatch.setattr(policy, "_farthest2", c)
        w = LossWatch(1)
        w.heard(x, rows[:, 2:4])
        w.heard(x, rows[:0, 2:4])  # nobody heard: the reach stays
        got.append(w.reach)
    assert got[0] == pytest.approx(want, rel=1e-14) and got[1] == pytest.approx(want, rel=1e-14)


def _policy(**over) -> AgentPolicy:
    kw = dict(agent_id=0, box=Box([(0.0, 1.0), (0.0, 1.0)]), mass=0.1, speed_limit=1.0, schedule=SCHED,
              after_losses=AFTER)  # fmt: skip
    kw.update(over)
    return AgentPolicy(**kw)


def test_policy_restarts_once_for_one_loss_event_and_again_for_a_later_one():
    p = _policy(restart_losses=1)
    p.begin(0.0, wall=100.0)
    x = np.array([0.5, 0.5])
    gone = np.array([[0.55, 0.5]])
    assert p.forgotten(gone, np.array([105.0]), x, t=5.0, wall=107.0) and p.clock.phase.epoch == 1
    # a second neighbour lost in the same event (last heard before the restart) is the same loss
    assert not p.forgotten(gone, np.array([105.1]), x, t=5.1, wall=107.1) and p.clock.phase.epoch == 1
    # one heard after the restart began and then lost is a new loss
    assert p.forgotten(gone, np.array([108.0]), x, t=6.0, wall=110.0) and p.clock.phase.epoch == 2
    assert p.restarts == 2


def test_policy_knows_its_stages_and_asks_for_the_next_one():
    p = _policy()
    p.begin(0.0, 0.0)
    assert p.knows(0.2, 0.2) == SCHED.stages[1] and p.knows(0.15, None) == AFTER.stages[0]
    assert p.knows(0.2, 0.1) is None and p.knows(0.25, None) is None
    assert p.request(1.95, 0.1) == SCHED.stages[1]  # the stage of the next state, not this one
    assert p.request(1.95, None) == SCHED.stages[0]


def test_drift_estimate_cancels_a_steady_wind_in_a_simulated_world():
    """A world (the simulator's kinematics) with wind pushes a robot that holds its place; with the
    estimate it holds within a small fraction of what it drifts without it."""
    box = Box([(0.0, 10.0), (0.0, 10.0)])
    wind = np.array([0.3, -0.2])
    ends = {}
    for tau in (0.0, 1.0):
        world = World([0], np.array([[5.0, 5.0]]), box, 1.0, wind=lambda x: np.broadcast_to(wind, x.shape))
        world.connected[:] = True
        est = DriftEstimator(2, 1.0, tau, box)
        home = np.array([5.0, 5.0])
        for tick in range(400):
            x = world.x[0].copy()
            est.observe(tick, world.t, x)
            u = np.clip(2.0 * (home - x), -1, 1)  # a law that holds x at home
            d = est.estimate
            u = u if d is None else sc.control.clip_speed(u - d, 1.0)
            est.commanded(tick, world.t, x, u)
            world.set_command(0, u, 0.0)
            world.step(0.1, 0.0, None)
        ends[tau] = float(np.linalg.norm(world.x[0] - home))
        if tau:
            assert np.allclose(est.est, wind, atol=1e-3)
    assert ends[0.0] > 0.1 and ends[1.0] < 0.01 * ends[0.0]


def test_drift_estimate_ignores_walls_and_is_none_without_wind():
    box = Box([(0.0, 1.0), (0.0, 1.0)])
    est = DriftEstimator(2, 1.0, 1.0, box)
    # on the west wall, commanded west, did not move: not wind
    est.commanded(0, 0.0, np.array([0.0, 0.5]), np.array([-1.0, 0.0]))
    est.observe(1, 0.1, np.array([0.0, 0.5]))
    assert est.estimate is None
    est.commanded(1, 0.1, np.array([0.3, 0.5]), np.array([0.2, 0.1]))
    est.observe(2, 0.2, np.array([0.3, 0.5]) + 0.1 * np.array([0.2, 0.1]))  # moved as commanded
    assert est.estimate is None
    est.commanded(2, 0.2, np.array([0.3, 0.5]), np.array([0.2, 0.1]))
    est.observe(4, 0.4, np.array([0.9, 0.9]))  # a tick was skipped: nothing to learn
    assert est.estimate is None
    assert DriftEstimator(2, 1.0, 0.0, box).estimate is None


def test_service_target_is_the_normalised_power():
    t = sc.GaussianMixture([[0.5, 0.5]], [0.02], bounds=[(0, 1), (0, 1)])
    s = t.for_service()
    axes, cell = s.box.grid(512)
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    assert float(s.pdf(grid).sum()) * cell == pytest.approx(1.0, rel=1e-3)  # a density
    p = np.array([[0.5, 0.5], [0.7, 0.6], [0.1, 0.9]])
    ratio = s.pdf(p) / t.pdf(p) ** 0.5  # d = 2: power d/(d+2) = 1/2
    assert np.allclose(ratio, ratio[0], rtol=1e-9)
    u = sc.Uniform([(0, 2), (0, 1)])
    assert np.allclose(u.for_service().pdf(p), 0.5)


def test_cover_fixed_step_is_the_tick_loop_of_the_stage_in_force():
    """``cover(fixed_step=)`` takes explicit ticks and switches stages at tick starts, as the
    lockstep world does; with one stage it equals ``flow(fixed_step=)`` (walls away)."""
    t = sc.GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.01, 0.02], bounds=[(0, 1), (0, 1)])
    rng = np.random.default_rng(3)
    x0 = 0.3 + 0.4 * rng.random((8, 2))
    one = CoverageSchedule.fixed(0.15, 0.0)
    a = cover(t, x0, 0.5, schedule=one, t_end=1.0, fixed_step=0.05).x
    law = sc.BlobLaw(t, 0.15, 1 / 8)
    b = sc.flow(law, x0, 1.0, speed_limit=0.5, gain=sc.gain_for(0.15, 0.5), fixed_step=0.05).x
    assert np.allclose(a, b, atol=1e-12)
    seen = []
    cover(t, x0, 0.5, schedule=SCHED, t_end=3.5, fixed_step=0.5, callback=lambda tt, x: seen.append(tt))
    assert seen == pytest.approx([0.5 * k for k in range(1, 8)])
    with pytest.raises(ValueError, match="objective"):
        cover(t, x0, 0.5, schedule=one, t_end=0.1, objective="nearest")
