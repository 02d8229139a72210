"""The vehicle seam in process: config checks, frames, the geofence's rule, ROS 2 topic names."""

import re

import numpy as np
import pytest

from swarmcover.agentspec import AgentConfig

pytestmark = pytest.mark.unit

BASE = {"agent_id": 1, "bounds": [[0, 100], [0, 50]], "eps": 5.0, "mass": 0.5, "speed_limit": 2.0,
        "insecure": True, "peers": {"kind": "direct", "bind": "tcp://127.0.0.1:7000"}}  # fmt: skip


def _cfg(**over):
    return AgentConfig.model_validate({**BASE, **over})


def test_a_vehicle_body_needs_an_on_board_map_and_an_origin_of_the_domains_dimension():
    with pytest.raises(ValueError, match="mavlink body sends no field patches"):
        _cfg(body={"kind": "mavlink", "connect": "udpin:0.0.0.0:14550"})
    with pytest.raises(ValueError, match=r"body\.origin has 1 coordinates for a 2-D domain"):
        _cfg(body={"kind": "ros2", "origin": [3.0]}, target={})
    with pytest.raises(ValueError, match="connect"):
        _cfg(body={"kind": "mavlink"}, target={})
    with pytest.raises(ValueError, match="namespace"):
        _cfg(body={"kind": "ros2", "namespace": "robot 1; rm"}, target={})
    cfg = _cfg(body={"kind": "mavlink", "connect": "tcp:10.0.0.2:5760", "geo_origin": [47.4, 8.5]}, target={})
    assert cfg.body.arm is False and cfg.body.scale == 1.0  # never armed unless asked


def test_frames_and_the_geofence_rule():
    """Metric (east, north) to domain through origin and scale; a setpoint is allowed only when
    the way ahead for the horizon stays in the domain and out of the zones."""
    from swarmcover.agents.bodies.vehicle import VehicleLink
    from swarmcover.domain import Box, Disk

    box, zones = Box([(0, 100), (0, 50)]), [Disk((50.0, 25.0), 5.0)]
    link = VehicleLink(None, 1, box, zones, origin=[10.0, 20.0], scale=2.0, fence_horizon=2.0)
    assert np.allclose(link.to_domain(np.array([4.0, -6.0])), [12.0, 17.0])
    x = np.array([40.0, 25.0])
    assert link.allowed(x, np.array([0.0, 1.0]))
    assert not link.allowed(x, np.array([3.0, 0.0]))  # 6 units east in 2 s: into the disk
    assert not link.allowed(np.array([99.0, 10.0]), np.array([1.0, 0.0]))  # out of the domain
    with pytest.raises(ValueError, match="scale"):
        VehicleLink(None, 1, Box([(0, 1)]), scale=0.0)


def test_ros2_topic_names_follow_the_rmw_convention():
    from swarmcover.agents.bodies.ros2 import topic_name

    assert topic_name("", "cmd_vel") == "rt/cmd_vel"
    assert topic_name("robot1", "odom") == "rt/robot1/odom"
    assert topic_name("/fleet/robot1/", "cmd_vel") == "rt/fleet/robot1/cmd_vel"


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ('failures=[{t = 1.0, kind = "fail", ids = [0]}]', "failures act on the agents' processes only"),
        ("random_failures.rate=0.1", "random_failures need the simulator"),
        ('control.clock="lockstep"', "vehicles move in real time"),
        ('deploy.plan="transport"', "a planned deployment needs the simulator"),
        ("vehicles.origin=[1.0]", "vehicles.origin has 1 coordinates"),
        ('vehicles.body="boat"', "vehicles.body"),
    ],
)
def test_a_vehicle_scenario_refuses_what_needs_a_simulator(override, says):
    from pathlib import Path

    from swarmcover.launcher.scenario import load_scenario

    path = Path(__file__).resolve().parents[1] / "launch" / "copters.toml"
    with pytest.raises(ValueError, match=re.escape(says)):
        load_scenario(path, [override])
