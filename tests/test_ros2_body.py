"""Issue 18: an agent process drives a ROS 2 robot over DDS (Cyclone DDS, no ROS installed), and
what it puts on the wire carries ROS 2's names, as another DDS participant discovers them."""

from __future__ import annotations

import signal
import sys
import time

import numpy as np
import pytest
from harness import agent_output, start_agent, stop_all, wait_until
from launching import free_port

pytestmark = pytest.mark.integration

pytest.importorskip("cyclonedds", reason="the ros2 body needs cyclonedds (the ros2 extra)")

from vehicles import Ros2Robot, use_loopback_dds  # noqa: E402

BOUNDS = [[0.0, 20.0], [0.0, 20.0]]


def _matched(entity, which: str, timeout: float = 20.0):
    """The first remote endpoint that ``entity`` (a reader: ``publication``; a writer:
    ``subscription``) has matched within ``timeout`` s, as DDS discovery announced it (its topic,
    type name and QoS)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        handles = getattr(entity, f"get_matched_{which}s")()
        if handles:
            return getattr(entity, f"get_matched_{which}_data")(handles[0])
        time.sleep(0.05)
    return None


def test_an_agent_drives_a_ros2_robot_over_dds_with_ros2_names(monkeypatch):
    """The robot (a DDS participant in this process) publishes Odometry on ``rt/robot7/odom`` and
    takes Twist on ``rt/robot7/cmd_vel``; the agent process drives it to the demand's peak. Seen
    from the DDS side: the agent's writer is on ``rt/robot7/cmd_vel`` with type
    ``geometry_msgs::msg::dds_::Twist_``, reliable, keep last 10, XCDR1; its reader on
    ``rt/robot7/odom`` with ``nav_msgs::msg::dds_::Odometry_``. SIGTERM leaves the robot holding (a
    zero Twist). (Read from what discovery announced to the robot's endpoints: reading the
    DCPSPublication built-in topic crashes cyclonedds-python 11.0.1 with ``realloc(): invalid
    pointer``.)"""
    from cyclonedds.core import Policy

    use_loopback_dds()
    monkeypatch.setenv("CYCLONEDDS_URI", __import__("os").environ["CYCLONEDDS_URI"])
    robot = Ros2Robot("robot7", start=[3.0, 3.0])
    cfg = {
        "agent_id": 7, "bounds": BOUNDS, "eps": 3.0, "mass": 1.0, "speed_limit": 1.5, "rate_hz": 20.0,
        "insecure": True, "body": {"kind": "ros2", "namespace": "robot7", "connect_timeout": 30.0},
        "peers": {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []},
        "target": {"means": [[14.0, 12.0]], "covs": [4.0]},
    }  # fmt: skip
    proc = start_agent(cfg, log_level="INFO")
    try:
        pub = _matched(robot.reader, "publication")
        sub = _matched(robot.writer, "subscription")
        assert pub is not None and sub is not None, agent_output(proc)
        assert pub.topic_name == "rt/robot7/cmd_vel" and sub.topic_name == "rt/robot7/odom"
        assert pub.type_name == "geometry_msgs::msg::dds_::Twist_", pub.type_name
        assert sub.type_name == "nav_msgs::msg::dds_::Odometry_", sub.type_name
        assert isinstance(pub.qos[Policy.Reliability], Policy.Reliability.Reliable), pub.qos
        assert pub.qos[Policy.History] == Policy.History.KeepLast(10), pub.qos
        assert pub.qos[Policy.DataRepresentation].use_cdrv0_representation, pub.qos  # XCDR1, as ROS 2
        wait_until(lambda: np.linalg.norm(robot.state()[0] - [14.0, 12.0]) < 1.5 or proc.poll() is not None,
                   60.0, "the robot to reach the demand's peak")  # fmt: skip
        assert proc.poll() is None, agent_output(proc)
        speeds = [float(np.linalg.norm(v)) for _, v, _ in robot.setpoints]
        assert max(speeds) <= 1.5 * (1 + 1e-9) and max(speeds) > 1.0
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert not np.any(robot.setpoints[-1][1]), (robot.setpoints[-1], agent_output(proc))  # left holding
    finally:
        stop_all([proc])
        robot.close()


def test_an_agent_with_no_robot_on_the_topic_stops_with_the_topic_named():
    """No odometry within ``connect_timeout``: exit status 2 and the topic and domain named."""
    import json
    import os
    import subprocess

    env = dict(os.environ)
    use_loopback_dds()
    env["CYCLONEDDS_URI"] = os.environ["CYCLONEDDS_URI"]
    cfg = {
        "agent_id": 1, "bounds": BOUNDS, "eps": 3.0, "mass": 1.0, "speed_limit": 1.5, "insecure": True,
        "body": {"kind": "ros2", "namespace": "nobody", "domain_id": 17, "connect_timeout": 1.0},
        "peers": {"kind": "direct", "bind": f"tcp://127.0.0.1:{free_port()}", "roster": []},
        "target": {"means": [[14.0, 12.0]], "covs": [4.0]},
    }  # fmt: skip
    cmd = [sys.executable, "-m", "swarmcover.cli.main", "agent", "--json", json.dumps(cfg)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "no Odometry on 'rt/nobody/odom' (DDS domain 17) within 1 s" in r.stderr, (
        r.stderr[-2000:]
    )
