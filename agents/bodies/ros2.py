"""A ROS 2 robot as an agent's body, spoken to over DDS directly with Eclipse Cyclone DDS (the
``ros2`` extra): no ROS installation, and a real ROS 2 node on ``rmw_cyclonedds_cpp`` (or any
RMW that speaks DDS with ROS 2's conventions) sees an ordinary node.

ROS 2's wire conventions, as the RMW uses them: a ROS topic ``/<ns>/cmd_vel`` is the DDS topic
``rt/<ns>/cmd_vel``; a message type ``pkg/msg/Name`` is the DDS type ``pkg::msg::dds_::Name_``,
serialised as XCDR1 with the ROS IDL's field order. QoS: reliable, volatile, keep last 10 (ROS
2's default for topics).

- **Out**: ``geometry_msgs/msg/Twist`` on ``rt/<ns>/cmd_vel``: ``linear.x`` east and ``linear.y``
  north (the robot's odometry frame taken as the domain's axes), everything else 0 (a hold is a
  zero Twist). A differential-drive robot takes ``linear.x`` along its heading only; put a
  holonomic controller (or ``twist_mux`` with a converter) in front of such a robot.
- **In**: ``nav_msgs/msg/Odometry`` on ``rt/<ns>/odom`` (``pose.pose.position`` and
  ``twist.twist.linear``), or ``geometry_msgs/msg/PoseStamped`` on ``rt/<ns>/pose``. ROS has no
  heartbeat: the robot is alive while its odometry keeps coming.

The DDS listener runs in Cyclone's thread; it rings a socket pair that the agent's poll watches,
so odometry wakes the agent at once.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from collections.abc import Callable

import numpy as np

from .vehicle import BodyError, Telemetry, Vehicle

__all__ = ["Ros2Vehicle", "ros2_types", "topic_name"]

log = logging.getLogger("swarmcover.agent.ros2")


def topic_name(namespace: str, name: str) -> str:
    """The DDS topic of ROS 2 topic ``/<namespace>/<name>`` (``rt/`` prefix, no leading slash)."""
    parts = [p for p in namespace.split("/") if p] + [name]
    return "rt/" + "/".join(parts)


def ros2_types() -> dict:
    """The ROS 2 message types as Cyclone DDS IDL structs (:mod:`swarmcover.agents.bodies.ros2_msgs`):
    ``Twist``, ``Odometry``, ``PoseStamped`` and the structs they hold; :class:`BodyError` naming
    the extra when cyclonedds is not installed."""
    try:
        from . import ros2_msgs
    except ImportError:
        raise BodyError(
            "body 'ros2' needs cyclonedds: install the extra, pip install 'swarmcover[ros2]'"
        ) from None
    return {name: getattr(ros2_msgs, name) for name in ros2_msgs.__all__}


def ros2_qos():
    """ROS 2's default QoS for topics: reliable, volatile, keep last 10."""
    from cyclonedds.core import Policy, Qos

    return Qos(Policy.Reliability.Reliable(max_blocking_time=100_000_000), Policy.History.KeepLast(10),
               Policy.Durability.Volatile)  # fmt: skip


class Ros2Vehicle(Vehicle):
    """A ROS 2 robot in namespace ``namespace`` on DDS domain ``domain_id``."""

    def __init__(self, namespace: str, dim: int = 2, domain_id: int = 0, odometry: str = "odom") -> None:
        self.types = ros2_types()
        self.namespace, self.dim, self.domain_id, self.odometry = (
            namespace,
            int(dim),
            int(domain_id),
            odometry,
        )
        self._heard = -math.inf
        self._bell_r, self._bell_w = socket.socketpair()
        self._bell_r.setblocking(False)
        self._bell_w.setblocking(False)
        self.participant = None

    def connect(self, timeout: float, should_stop: Callable[[], bool]) -> None:
        from cyclonedds.core import Listener
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        t = self.types
        qos = ros2_qos()
        try:
            self.participant = DomainParticipant(self.domain_id)
        except Exception as exc:  # cyclonedds raises DDSException on a bad CYCLONEDDS_URI, no interface
            raise BodyError(f"ros2: cannot join DDS domain {self.domain_id}: {exc}") from None
        cmd = Topic(self.participant, topic_name(self.namespace, "cmd_vel"), t["Twist"], qos=qos)
        self.writer = DataWriter(self.participant, cmd, qos=qos)
        kind, name = (t["Odometry"], "odom") if self.odometry == "odom" else (t["PoseStamped"], "pose")
        self.sample_type = kind
        self.in_topic = topic_name(self.namespace, name)
        topic = Topic(self.participant, self.in_topic, kind, qos=qos)
        self.reader = DataReader(
            self.participant, topic, qos=qos, listener=Listener(on_data_available=self._ring)
        )
        self._pending: list[Telemetry] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not should_stop():
            self._take()
            if self._pending:
                log.info("robot answered on %s", self.in_topic)
                return
            time.sleep(0.05)
        if should_stop():
            return
        what = "Odometry" if self.odometry == "odom" else "PoseStamped"
        raise BodyError(
            f"ros2: no {what} on {self.in_topic!r} (DDS domain {self.domain_id}) within {timeout:g} s"
        )

    def _ring(self, _reader) -> None:  # Cyclone's thread
        try:
            self._bell_w.send(b"\0")
        except (BlockingIOError, OSError):  # already rung (the buffer is full) or closing
            pass

    def fds(self) -> list:
        return [self._bell_r.fileno()]

    def _take(self) -> None:
        for sample in self.reader.take(N=100):
            if not isinstance(sample, self.sample_type):  # an InvalidSample: the writer went away
                continue
            if self.odometry == "odom":
                p, v = sample.pose.pose.position, sample.twist.twist.linear
                vel = np.array([v.x, v.y], dtype=np.float64)[: self.dim]
            else:
                p, vel = sample.pose.position, None
            self._pending.append(Telemetry(np.array([p.x, p.y], dtype=np.float64)[: self.dim], vel))
            self._heard = time.monotonic()

    def read(self) -> list[Telemetry]:
        try:
            while self._bell_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass
        self._take()
        out, self._pending = self._pending, []
        return out

    def last_heard(self) -> float:
        return self._heard

    def setpoint(self, velocity: np.ndarray) -> None:
        if getattr(self, "writer", None) is None:  # never connected: nobody to tell
            return
        t = self.types
        v = np.zeros(2)
        v[: len(velocity)] = velocity
        self.writer.write(t["Twist"](linear=t["Vector3"](float(v[0]), float(v[1]), 0.0)))

    def close(self) -> None:
        if getattr(self, "writer", None) is not None:  # the last hold delivered before the writer goes
            try:
                self.writer.wait_for_acks(500_000_000)  # nanoseconds
            except Exception as exc:  # cyclonedds' DDSException: a robot that never acknowledges
                log.warning("the last Twist was not acknowledged: %s", exc)
        self.participant = self.writer = self.reader = None  # Cyclone deletes them with the participant
        self._bell_r.close()
        self._bell_w.close()
