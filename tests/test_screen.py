"""The peer screen (agents/screen.py): impossible beacons and quarantine, in process."""

import numpy as np
import pytest

from swarmcover.agents.screen import JUMP_FACTOR, PeerScreen
from swarmcover.domain import Box

pytestmark = pytest.mark.unit


def test_positions_outside_the_domain_or_faster_than_a_robot_are_impossible():
    s = PeerScreen(Box([(0.0, 1.0), (0.0, 1.0)]), speed_limit=0.5, slack=0.1)
    assert s.why_impossible(np.array([1.2, 0.5]), 0.0, None) == "outside the domain"
    assert s.why_impossible(np.array([1.0, 0.0]), 0.0, None) is None  # on the wall is inside
    last = (np.array([0.2, 0.2]), 1.0)
    reach = JUMP_FACTOR * 0.5 * (0.4 + 0.1)  # 0.4 s after the last one, plus the slack
    assert s.why_impossible(np.array([0.2 + 0.99 * reach, 0.2]), 1.4, last) is None
    why = s.why_impossible(np.array([0.2 + 1.01 * reach, 0.2]), 1.4, last)
    assert why == "moved faster than the speed limit"


def test_repeat_offenders_are_quarantined_for_a_while_and_the_table_of_them_is_bounded():
    s = PeerScreen(Box([(0.0, 1.0)]), 1.0, 0.1, strikes=3, window=10.0, quarantine=5.0, capacity=2)
    assert not s.strike(7, 0.0) and not s.strike(7, 1.0)
    assert s.strike(7, 2.0) and s.quarantined(7, 3.0)
    assert not s.quarantined(7, 7.1)  # it served its time
    assert not s.strike(8, 0.0) and not s.strike(8, 20.0) and not s.strike(8, 21.0)  # strikes age out
    for a in range(100, 110):  # a flood of fake ids: at most `capacity` tracked
        for t in range(3):
            s.strike(a, 30.0 + t)
    assert len(s._marks) <= 2 and len(s._until) <= 2


def test_a_position_inside_a_no_go_zone_is_impossible_its_edge_is_not():
    """Solid zones of the agent's own map (issue 22): a robot cannot stand inside one."""
    from swarmcover.domain import Disk, Rectangle

    zones = [Disk((0.5, 0.5), 0.1), Rectangle((0.0, 0.8), (0.2, 1.0))]
    s = PeerScreen(Box([(0.0, 1.0), (0.0, 1.0)]), speed_limit=0.5, slack=0.1, zones=zones)
    assert s.why_impossible(np.array([0.52, 0.5]), 0.0, None) == "inside a no-go zone"
    assert s.why_impossible(np.array([0.1, 0.9]), 0.0, None) == "inside a no-go zone"
    assert s.why_impossible(np.array([0.6, 0.5]), 0.0, None) is None  # on the disk's edge
    assert s.why_impossible(np.array([0.2, 0.9]), 0.0, None) is None  # on the rectangle's edge
    assert s.why_impossible(np.array([0.7, 0.7]), 0.0, None) is None


def test_an_agent_config_takes_the_scenarios_zone_tables():
    from swarmcover.agentspec import AgentConfig

    cfg = AgentConfig.model_validate(
        {"agent_id": 1, "bounds": [[0, 1], [0, 1]], "eps": 0.05, "mass": 0.1, "speed_limit": 0.1,
         "insecure": True, "target": {"zones": [{"kind": "disk", "center": [0.5, 0.5], "radius": 0.1},
                                                {"kind": "rect", "lo": [0, 0.8], "hi": [0.2, 1]}]}}
    )  # fmt: skip
    assert [type(z.zone()).__name__ for z in cfg.target.zones] == ["Disk", "Rectangle"]
    with pytest.raises(ValueError, match="radius"):
        AgentConfig.model_validate(
            {"agent_id": 1, "bounds": [[0, 1]], "eps": 0.05, "mass": 0.1, "speed_limit": 0.1,
             "insecure": True, "target": {"zones": [{"kind": "disk", "center": [0.5], "radius": -1}]}}
        )  # fmt: skip
