"""``[law]``: the schedule, the objective and what the launcher hands the agents and the simulator."""

from pathlib import Path

import pytest

from swarmcover.agentspec import SimBody
from swarmcover.launcher.resolve import resolve
from swarmcover.launcher.scenario import Scenario

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
BASE = {
    "duration": 60.0,
    "domain": {"bounds": [[0.0, 10.0], [0.0, 6.0]]},
    "target": {"kind": "mixture", "means": [[3.0, 3.5], [7.5, 2.5]], "covs": [1.0, 1.5]},
    "fleet": {"size": 12},
}


def _resolve(control=None, **law):
    raw = {**BASE, "law": law, "control": control or {"speed_limit": 1.5}}
    return resolve(Scenario.model_validate(raw), ROOT / "launch" / "x.toml")


def test_the_default_is_an_annealed_schedule_that_ends_by_half_the_run():
    rs = _resolve()
    st = rs.schedule.stages
    assert len(st) == 6 and st[0].eps == pytest.approx(1.5) and st[-1].eps == pytest.approx(0.3 * rs.spacing)
    assert all(s.smoothing == s.eps for s in st) and rs.schedule.duration <= 30.0 + 1e-9
    assert rs.after_losses.stages[0].eps == pytest.approx(2.0 * rs.spacing)
    assert rs.eps == st[-1].eps and rs.drift_tau == pytest.approx(1.0)
    # a slow fleet cannot fit: relax stops at 2 relaxation times a stage
    slow = _resolve(control={"speed_limit": 0.4})
    assert slow.schedule.duration > 30.0
    cross = (10.0**2 + 6.0**2) ** 0.5 / 0.4
    relax = (slow.schedule.stages[1].duration * 0.4) / (0.5 * slow.schedule.stages[1].eps)
    assert slow.schedule.stages[0].duration > cross and relax == pytest.approx(2.0)
    # the simulator senses for every stage of both schedules
    served = {(p.eps, p.smoothing) for p in rs.sim.sensing} | {(rs.sim.eps, rs.sim.smoothing)}
    assert served >= {(s.eps, s.smoothing) for s in st + rs.after_losses.stages}
    cfg = rs.agent_config(3, SimBody(endpoint="tcp://127.0.0.1:1"))
    assert cfg.eps == st[-1].eps and len(cfg.schedule.stages) == 6 and cfg.schedule.restart_losses == 1
    assert [s.eps for s in cfg.schedule.after_losses] == [s.eps for s in rs.after_losses.stages]


def test_fixed_schedule_and_service_objective():
    rs = _resolve(schedule="fixed", smoothing=0.5)
    assert len(rs.schedule.stages) == 1 and rs.after_losses is None and rs.eps == pytest.approx(rs.spacing)
    assert rs.smoothing == 0.5
    cfg = rs.agent_config(0, SimBody(endpoint="tcp://127.0.0.1:1"))
    assert cfg.schedule.restart_losses == 0  # one eps for ever: nothing to restart
    rs = _resolve(objective="service")
    assert rs.sim.objective == "service" and rs.eps == pytest.approx(0.15 * rs.spacing)
    rs = _resolve(eps=0.4, start=2.0, stages=3, relax=4.0, drift_tau=0.0)
    assert [round(s.eps, 9) for s in rs.schedule.stages] == [2.0, round((2.0 * 0.4) ** 0.5, 9), 0.4]
    assert rs.drift_tau == 0.0


@pytest.mark.parametrize(
    "law, why",
    [
        ({"schedule": "fixed", "start": 2.0}, "`start` is the first eps of an annealed schedule"),
        ({"smoothing": 0.3}, "`smoothing` is for schedule = 'fixed'"),
        ({"objective": "nearest"}, "objective"),
        ({"stages": 0}, "stages"),
    ],
)
def test_bad_law_keys_are_named(law, why):
    with pytest.raises(ValueError, match=why):
        _resolve(**law)
