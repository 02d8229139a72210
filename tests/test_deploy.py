"""Planned deployments handed to the fleet: the path message, tracking, the launcher's plan, and a
launched fleet of agent processes that follows it and then covers."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from launching import processes_mentioning, summary_of

from swarmcover.domain import Box
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import Path as PathMsg
from swarmcover.protocol import ProtocolError, decode, encode
from swarmcover.schedule import CoverageSchedule
from swarmcover.simulator.config import SimConfig
from swarmcover.simulator.recording import load_recording
from swarmcover.tracking import PathTracker

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "launch" / "deploy.toml"


def _env(**kw):
    return {"agent_id": 3, "epoch": 1, "seq": 1, "t": time.time(), **kw}


# -- unit ---------------------------------------------------------------------------------------
@pytest.mark.unit
def test_tracker_follows_the_plan_and_closes_offsets():
    tr = PathTracker([0.0, 2.0, 4.0], [[0.0, 0.0], [2.0, 0.0], [2.0, 1.0]])
    np.testing.assert_allclose(tr.position(1.0), [1.0, 0.0])
    np.testing.assert_allclose(tr.position(-1.0), [0.0, 0.0])  # held before the first node
    np.testing.assert_allclose(tr.position(9.0), [2.0, 1.0])
    # on the path: the segment's own velocity (feed-forward)
    np.testing.assert_allclose(tr.velocity(0.5, tr.position(0.5), 0.1), [1.0, 0.0])
    # off it: aims at where the plan is one period ahead
    np.testing.assert_allclose(tr.velocity(0.5, [0.5, 0.2], 0.1), [(0.6 - 0.5) / 0.1, -2.0])
    assert not tr.done(3.9) and tr.done(4.0)
    with pytest.raises(ValueError, match="increasing"):
        PathTracker([0.0, 0.0], [[0, 0], [1, 1]])


@pytest.mark.unit
def test_policy_tracks_then_starts_its_schedule_at_the_paths_end():
    box = Box([(0, 10), (0, 10)])
    sched = CoverageSchedule.fixed(1.0)
    pol = AgentPolicy(agent_id=0, box=box, mass=0.5, speed_limit=1.0, schedule=sched, r_min=0.5)
    assert pol.follow(PathTracker([0.0, 5.0], [[1.0, 1.0], [4.0, 5.0]], plan=1))
    assert not pol.follow(PathTracker([0.0, 5.0], [[1.0, 1.0], [4.0, 5.0]], plan=1))  # a repeat
    pol.begin(1.0, 0.0)
    assert pol.clock.phase is None  # the schedule waits for the path's end
    field = (np.zeros((4, 4, 3)), np.zeros(2), np.ones(2))
    # a neighbour closer than r_min does not push a robot off its plan
    u = pol.velocity(np.array([1.6, 1.8]), np.array([1]), np.array([[1.7, 1.8]]), np.array([0.5]), field,
                     sched.stages[0], t=1.0, dt=0.1)  # fmt: skip
    np.testing.assert_allclose(u, [0.6, 0.8])  # the segment's velocity (speed 1: at the limit)
    pol.begin(5.0, 1.0)
    assert pol.clock.phase is not None and pol.clock.phase.start == 5.0
    assert not pol.on_path(5.0)


@pytest.mark.unit
def test_path_message_round_trip_and_hostile_paths():
    msg = PathMsg(**_env(), plan=2, times=[0.0, 1.5], points=[[0.0, 1.0], [2.0, 3.0]])
    back = decode(encode(msg)).message
    assert back == msg
    bad = {
        "not increasing": {"times": [1.0, 1.0], "points": [[0, 0], [1, 1]]},
        "lengths": {"times": [0.0, 1.0, 2.0], "points": [[0, 0], [1, 1]]},
        "one node": {"times": [0.0], "points": [[0, 0]]},
        "mixed dims": {"times": [0.0, 1.0], "points": [[0, 0], [1, 1, 1]]},
        "nan": {"times": [0.0, 1.0], "points": [[0, 0], [float("nan"), 1]]},
        "too many": {"times": [float(i) for i in range(300)], "points": [[0.0, 0.0]] * 300},
    }
    for body in bad.values():  # keys: what each case breaks
        header = json.dumps({"v": 1, "kind": "path", **_env(), "plan": 1, **body}).encode()
        with pytest.raises(ProtocolError, match="invalid path"):
            decode([header])


@pytest.mark.unit
def test_scenario_with_a_planned_deployment_resolves_to_paths():
    from swarmcover.launcher.resolve import resolve
    from swarmcover.launcher.scenario import load_scenario

    rs = resolve(load_scenario(DEPLOY, ["fleet.size=8"]), DEPLOY)
    paths = rs.sim.paths
    assert len(paths) == 8 and all(p.times[0] == 0.0 for p in paths)
    start = np.asarray(rs.sim.positions)
    np.testing.assert_allclose([p.points[0] for p in paths], start)
    # the plan keeps to speed_fraction of the speed limit and clears the zones
    pts = np.array([p.points for p in paths])
    dt = np.diff(paths[0].times)
    speed = np.linalg.norm(np.diff(pts, axis=1), axis=2) / dt
    assert speed.max() <= 0.8 * rs.speed_limit * (1 + 1e-9)
    for z in rs.target.zones:
        for t in np.linspace(0, 1, 51):
            seg = ((1 - t) * pts[:, :-1] + t * pts[:, 1:]).reshape(-1, 2)
            assert z.signed_distance(seg).min() > 0
    assert len(rs.schedule.stages) == 1  # after a plan: the final stage, no coarse ones
    none = resolve(load_scenario(DEPLOY, ["fleet.size=8", 'deploy.plan="none"']), DEPLOY)
    assert none.sim.paths == [] and len(none.schedule.stages) > 1


@pytest.mark.unit
def test_sim_config_refuses_paths_for_strangers():
    base = {"bounds": [(0, 1), (0, 1)], "positions": [[0.1, 0.1]], "eps": 0.1, "speed_limit": 1.0,
            "insecure": True}  # fmt: skip
    with pytest.raises(ValueError, match="not on the roster"):
        SimConfig.model_validate(
            {**base, "paths": [{"agent_id": 7, "times": [0, 1], "points": [[0, 0], [1, 1]]}]}
        )
    with pytest.raises(ValueError, match="dimension"):
        SimConfig.model_validate({**base, "paths": [{"agent_id": 0, "times": [0, 1], "points": [[0], [1]]}]})


# -- bad input through the launcher --------------------------------------------------------------
FENCED = """
[domain]
bounds = [[0.0, 20.0], [0.0, 12.0]]
[target]
kind = "mixture"
means = [[15.0, 6.0]]
covs = [1.0]
truncate = 2.0
[[target.zones]]
kind = "rect"
lo = [11.0, 2.0]
hi = [19.0, 2.5]
[[target.zones]]
kind = "rect"
lo = [11.0, 9.5]
hi = [19.0, 10.0]
[[target.zones]]
kind = "rect"
lo = [11.0, 2.0]
hi = [11.5, 10.0]
[[target.zones]]
kind = "rect"
lo = [18.5, 2.0]
hi = [19.0, 10.0]
[fleet]
size = 6
deploy = "depot"
center = [2.0, 2.0]
radius = 0.5
[deploy]
plan = "transport"
"""

NEAR_ZONE = """
[domain]
bounds = [[0.0, 10.0], [0.0, 6.0]]
[[target.zones]]
kind = "disk"
center = [5.0, 2.0]
radius = 0.9
[fleet]
size = 5
deploy = "line"
start = [1.0, 1.0]
end = [9.0, 1.0]
[deploy]
plan = "transport"
clearance = 0.5
"""


@pytest.mark.integration
@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (FENCED, r"bad\.toml: deploy: start \d+ cannot reach any of the target around the obstacles"),
        (NEAR_ZONE, r"bad\.toml: deploy: start \d+ at .* is within clearance 0\.5 of one"),
    ],
    ids=["target_fenced_off", "depot_within_clearance"],
)
def test_bad_deployment_is_named_before_anything_starts(body, pattern, tmp_path, launches):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    out = tmp_path / "run"
    rc, so, se = launches.run(str(path), "--headless", out=out, timeout=120)
    assert rc == 2, (so, se)
    assert re.search(pattern, se), se
    assert "Traceback" not in se and not out.exists()


# -- the fleet of processes ---------------------------------------------------------------------
@pytest.mark.integration
def test_launched_agents_track_their_planned_paths_then_cover(tmp_path, launches):
    out = tmp_path / "run"
    args = ("--headless", "--set", "fleet.size=8", "--set", "control.time_scale=20.0")
    rc, so, se = launches.run(str(DEPLOY), *args, "--duration", "40", out=out, timeout=240)
    assert rc == 0, (so[-3000:], se[-3000:])
    s = summary_of(out)
    assert s["final"]["planned"] and all(a["fate"] == "completed" for a in s["agents"])
    sim = json.loads((out / "scenario.json").read_text())["simulator"]
    plans = np.array([p["points"] for p in sim["paths"]])  # (n, K+1, d)
    times = np.asarray(sim["paths"][0]["times"])
    assert times[-1] < 40.0
    rec = load_recording(out / "recording")
    on_plan = (rec.t > 0.5) & (rec.t < times[-1] - 0.5)
    assert on_plan.sum() > 10
    for i in np.flatnonzero(on_plan)[::5]:
        want = np.stack([[np.interp(rec.t[i], times, plans[k, :, a]) for a in range(2)] for k in range(8)])
        # lockstep: each command reaches where the plan is one tick ahead
        np.testing.assert_allclose(rec.positions[i], want, atol=1e-6)
    # after the plan the coverage law moves them on, and the distance is the bodies' own
    after = rec.t > times[-1] + 1.0
    assert np.abs(rec.commands[after]).max() > 0
    steps = np.linalg.norm(np.diff(rec.positions, axis=0), axis=2).sum()
    assert s["final"]["distance_travelled"] == pytest.approx(steps, rel=0.02)
    # final.png draws the planned paths
    import pygame

    from swarmcover.simulator.render import PATH_COLOUR

    img = pygame.surfarray.array3d(pygame.image.load(str(out / "final.png")))
    assert np.all(img == np.array(PATH_COLOUR), axis=2).sum() > 100
    assert not processes_mentioning(str(out))


# -- one agent process against a stand-in body ---------------------------------------------------
@pytest.mark.integration
def test_an_agent_process_takes_its_path_from_its_body_only():
    from harness import Harness, agent_config, start_agent, stop_all

    import swarmcover as sc

    target = sc.GaussianMixture([[0.5, 0.5]], [0.02], bounds=[(0, 1), (0, 1)])
    law = sc.BlobLaw(target, 0.2, 1.0)
    harness = Harness(law)
    procs = []
    try:
        procs.append(start_agent(agent_config(0, harness.endpoint, law, speed_limit=10.0, rate_hz=10.0)))
        harness.wait_for(lambda: 0 in harness.routes)
        x = np.array([[0.1, 0.1]])
        free = harness.step(x, [0])[0]  # the coverage law's command

        def path(agent_id, points, plan=1):
            env = harness._env(agent_id)
            return encode(PathMsg(**env, plan=plan, times=[0.0, 1.0], points=points))

        # another agent's path and one leaving the domain are refused
        harness.send_raw(0, path(5, [[0.1, 0.1], [0.9, 0.1]]))
        harness.send_raw(0, path(0, [[0.1, 0.1], [1.9, 0.1]]))
        before = harness.request_stats([0])[0].counters.rejected
        assert before >= 2
        np.testing.assert_allclose(harness.step(x, [0])[0], free)
        # its own path: the command is the plan's velocity (0.8 per second; dt = 1 / rate_hz)
        harness.send_raw(0, path(0, [[0.1, 0.1], [0.9, 0.1]]))
        np.testing.assert_allclose(harness.step(x, [0])[0], [0.8, 0.0], atol=1e-9)
        # an empty path ends it: coverage again
        harness.send_raw(0, encode(PathMsg(**harness._env(0), plan=2, times=[], points=[])))
        np.testing.assert_allclose(harness.step(x, [0])[0], free)
    finally:
        stop_all(procs)
        harness.close()
