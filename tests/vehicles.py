"""Vehicles for the body tests, built on real implementations of their protocols.

- :class:`MavsdkCopter`: a multicopter whose autopilot side is MAVSDK (the ``mavsdk`` package's C
  library, a MAVLink implementation other than ours) in this process: MAVSDK sends its HEARTBEAT
  as an autopilot, its telemetry server publishes ``LOCAL_POSITION_NED``, its action server
  answers arming commands, and its direct-MAVLink server hands us every
  ``SET_POSITION_TARGET_LOCAL_NED`` and ``COMMAND_LONG`` that arrives.
  The dynamics are ArduCopter GUIDED's in miniature: the velocity tracks the latest setpoint with
  an acceleration limit, and a setpoint older than ``setpoint_timeout`` (3 s, as GUIDED's velocity
  control) counts as zero.
- :class:`UdpRelay`: a UDP relay between a vehicle and an agent whose vehicle-to-agent direction
  can be cut (the vehicle falls silent but still hears the agent).
- :class:`Ros2Robot`: a ROS 2 robot as Cyclone DDS sees one, in this process: it takes
  ``geometry_msgs/msg/Twist`` on ``rt/<ns>/cmd_vel`` and publishes ``nav_msgs/msg/Odometry`` on
  ``rt/<ns>/odom``, with the same velocity-tracking dynamics.

Every one runs a thread at ``rate`` Hz and must be closed (the tests do it in ``finally``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time

import numpy as np

#: Cyclone DDS on loopback only, discovery by unicast (no multicast needed on the test machine)
CYCLONEDDS_LOOPBACK = (
    "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/></Interfaces>"
    "<AllowMulticast>false</AllowMulticast></General><Discovery><ParticipantIndex>auto</ParticipantIndex>"
    "<MaxAutoParticipantIndex>60</MaxAutoParticipantIndex><Peers><Peer address='127.0.0.1'/></Peers>"
    "</Discovery></Domain></CycloneDDS>"
)


class _Dynamics:
    """Velocity tracking with an acceleration limit; setpoints older than the timeout are zero.
    Positions and velocities ``(2,)`` as (east, north), metres."""

    def __init__(self, start, accel: float, setpoint_timeout: float) -> None:
        self.p = np.asarray(start, dtype=np.float64).copy()
        self.v = np.zeros(2)
        self.accel, self.timeout = float(accel), float(setpoint_timeout)
        self.want, self.want_at = np.zeros(2), -math.inf
        self.lock = threading.Lock()
        self.setpoints: list[tuple[float, np.ndarray, np.ndarray]] = []  # (received, v (e, n), p then)
        self.stopped_at: float | None = None  # when it came to rest after its last setpoint
        self.stepped_at = time.monotonic()

    def command(self, v_en) -> None:
        with self.lock:
            now = time.monotonic()
            self.want, self.want_at = np.asarray(v_en, dtype=np.float64), now
            self.setpoints.append((now, self.want.copy(), self.p.copy()))

    def step(self) -> None:
        """Advance to now: the vehicle moves in real time, however late this thread was woken
        (a loaded machine delays the thread, not the vehicle)."""
        with self.lock:
            now = time.monotonic()
            dt = min(0.5, now - self.stepped_at)
            self.stepped_at = now
            want = self.want if now - self.want_at <= self.timeout else np.zeros(2)
            dv = want - self.v
            n = float(np.linalg.norm(dv))
            if n > self.accel * dt:
                dv *= self.accel * dt / n
            self.v += dv
            self.p += self.v * dt
            resting = not np.any(want) and float(np.linalg.norm(self.v)) < 1e-3
            if resting and self.stopped_at is None:
                self.stopped_at = now
            elif not resting:
                self.stopped_at = None

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return self.p.copy(), self.v.copy()


class MavsdkCopter(_Dynamics):
    """A MAVSDK autopilot (system ``system_id``) sending to ``udpout://127.0.0.1:port`` (the
    agent listens there with ``udpin``), starting at ``start`` (east, north)."""

    def __init__(self, port: int, system_id: int, start, accel: float = 6.0, setpoint_timeout: float = 3.0,
                 rate: float = 50.0, telemetry: float = 20.0) -> None:  # fmt: skip
        super().__init__(start, accel, setpoint_timeout)
        from mavsdk import ComponentType, Configuration, Mavsdk
        from mavsdk.plugins.action_server import ActionServer
        from mavsdk.plugins.mavlink_direct_server import MavlinkDirectServer
        from mavsdk.plugins.telemetry_server import TelemetryServer

        conf = Configuration.create_with_component_type(ComponentType.AUTOPILOT)
        conf.system_id = system_id
        self.mavsdk = Mavsdk(conf)
        self.mavsdk.add_any_connection(f"udpout://127.0.0.1:{port}")
        server = self.mavsdk.server_component()
        self.telemetry = TelemetryServer(server)
        self.direct = MavlinkDirectServer(server)
        self.action = ActionServer(server)  # arming: MAVSDK's own handling of the command
        self.action.set_armable(True, True)
        self.armed: list[bool] = []
        self.action.subscribe_arm_disarm(lambda result, arm, _: self.armed.append(bool(arm.arm)))
        self.raw_setpoints: list[dict] = []
        self.commands: list[dict] = []
        self.direct.subscribe_message("SET_POSITION_TARGET_LOCAL_NED", self._on_setpoint)
        self.direct.subscribe_message(
            "COMMAND_LONG", lambda m, _: self.commands.append(json.loads(m.fields_json))
        )
        self.rate, self.every = rate, max(1, round(rate / telemetry))
        self.nan_next = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_setpoint(self, msg, _user) -> None:  # MAVSDK's thread
        f = json.loads(msg.fields_json)
        self.raw_setpoints.append(f)
        self.command([f["vy"], f["vx"]])  # NED (north, east) -> (east, north)

    def _run(self) -> None:
        import mavsdk.plugins.telemetry_server as ts

        dt, k = 1.0 / self.rate, 0
        while not self.stop.wait(dt):
            self.step()
            k += 1
            if k % self.every:
                continue
            p, v = self.state()
            if self.nan_next:  # one malformed reading, as a broken estimator would send
                self.nan_next, p = False, np.array([math.nan, math.nan])
            pv = ts.PositionVelocityNed(ts.PositionNed(float(p[1]), float(p[0]), -10.0),
                                        ts.VelocityNed(float(v[1]), float(v[0]), 0.0))  # fmt: skip
            try:
                self.telemetry.publish_position_velocity_ned(pv)
            except Exception:  # MAVSDK reports a send it could not make; the next one retries
                pass

    def close(self) -> None:
        """The vehicle goes: no heartbeat, no telemetry, nothing heard."""
        self.stop.set()
        self.thread.join(timeout=5)
        self.mavsdk.destroy()


class UdpRelay:
    """``vehicle -> relay.port -> agent_port`` and back; :meth:`cut` silences the vehicle's
    direction (the agent still reaches the vehicle)."""

    def __init__(self, agent_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port, self.agent = self.sock.getsockname()[1], ("127.0.0.1", agent_port)
        self.vehicle: tuple[str, int] | None = None
        self.silenced = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def cut(self) -> None:
        self.silenced.set()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except (TimeoutError, OSError):
                continue
            if addr == self.agent:
                if self.vehicle is not None:
                    self.sock.sendto(data, self.vehicle)
            else:
                self.vehicle = addr
                if not self.silenced.is_set():
                    self.sock.sendto(data, self.agent)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


class Ros2Robot(_Dynamics):
    """A ROS 2 robot in namespace ``ns`` on DDS domain ``domain_id`` (Cyclone DDS in this
    process, ``CYCLONEDDS_URI`` as the caller set it)."""

    def __init__(self, ns: str, start, domain_id: int = 0, accel: float = 6.0, setpoint_timeout: float = 0.5,
                 rate: float = 50.0) -> None:  # fmt: skip
        super().__init__(start, accel, setpoint_timeout)
        from cyclonedds.core import Listener
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic

        from swarmcover.agents.bodies.ros2 import ros2_qos, ros2_types, topic_name

        self.types = t = ros2_types()
        qos = ros2_qos()
        self.participant = DomainParticipant(domain_id)
        cmd = Topic(self.participant, topic_name(ns, "cmd_vel"), t["Twist"], qos=qos)
        odom = Topic(self.participant, topic_name(ns, "odom"), t["Odometry"], qos=qos)
        self.reader = DataReader(self.participant, cmd, qos=qos,
                                 listener=Listener(on_data_available=self._on_twist))  # fmt: skip
        self.writer = DataWriter(self.participant, odom, qos=qos)
        self.rate = rate
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_twist(self, reader) -> None:
        for s in reader.take(N=100):
            if isinstance(s, self.types["Twist"]):  # not an InvalidSample (a writer gone)
                self.command([s.linear.x, s.linear.y])

    def _run(self) -> None:
        t = self.types
        dt = 1.0 / self.rate
        while not self.stop.wait(dt):
            self.step()
            p, v = self.state()
            pose = t["Pose"](position=t["Point"](float(p[0]), float(p[1]), 0.0))
            twist = t["Twist"](linear=t["Vector3"](float(v[0]), float(v[1]), 0.0))
            odom = t["Odometry"](header=t["Header"](frame_id="odom"), child_frame_id="base_link",
                                 pose=t["PoseWithCovariance"](pose=pose),
                                 twist=t["TwistWithCovariance"](twist=twist))  # fmt: skip
            self.writer.write(odom)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.participant = None


def use_loopback_dds() -> None:
    """Cyclone DDS for this process and the agents it starts: loopback, unicast discovery."""
    os.environ["CYCLONEDDS_URI"] = CYCLONEDDS_LOOPBACK
