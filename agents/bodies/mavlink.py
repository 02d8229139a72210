"""A MAVLink vehicle (PX4, ArduPilot, or anything that speaks MAVLink 2 as an autopilot) as an
agent's body, over pymavlink (the ``mavlink`` extra).

- **In**: the vehicle's ``HEARTBEAT`` (alive), its position and velocity from
  ``LOCAL_POSITION_NED`` (``x`` north, ``y`` east, metres from the vehicle's local origin) or, with
  ``geo_origin = [lat, lon]``, from ``GLOBAL_POSITION_INT`` (metres east and north of that point,
  equirectangular: good to a few centimetres over a few kilometres).
- **Out**: our own ``HEARTBEAT`` once a second (an onboard controller), and velocity setpoints
  as ``SET_POSITION_TARGET_LOCAL_NED`` in ``MAV_FRAME_LOCAL_NED`` with the velocity-only type
  mask (position, acceleration, yaw and yaw rate ignored; vertical velocity 0: altitude held).
  A hold is a zero-velocity setpoint (the vehicle stays in its mode and holds position).
- **Arming** only when the config says ``arm = true``: the mode that takes setpoints (``GUIDED``
  on ArduPilot, ``OFFBOARD`` on PX4, as the vehicle's heartbeat names its autopilot), then arm.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable

import numpy as np

from .vehicle import BodyError, Telemetry, Vehicle

__all__ = ["TYPE_MASK_VELOCITY", "MavlinkVehicle"]

log = logging.getLogger("swarmcover.agent.mavlink")

# POSITION_TARGET_TYPEMASK: ignore x, y, z (1, 2, 4), ax, ay, az (64, 128, 256), yaw (1024), yaw rate (2048)
TYPE_MASK_VELOCITY = 1 | 2 | 4 | 64 | 128 | 256 | 1024 | 2048
_EARTH_RADIUS = 6_371_008.8  # metres (mean)


class MavlinkVehicle(Vehicle):
    """One vehicle at ``connect`` (pymavlink's strings: ``udpin:HOST:PORT``, ``udpout:HOST:PORT``,
    ``tcp:HOST:PORT``, or a serial device with ``baud``)."""

    def __init__(
        self,
        connect: str,
        dim: int = 2,
        baud: int = 57600,
        system_id: int = 245,
        geo_origin: tuple[float, float] | None = None,
    ) -> None:
        os.environ.setdefault("MAVLINK20", "1")  # MAVLink 2 framing (before pymavlink is imported)
        try:
            from pymavlink import mavutil
        except ImportError:
            raise BodyError(
                "body 'mavlink' needs pymavlink: install the extra, pip install 'swarmcover[mavlink]'"
            ) from None
        self.mavutil, self.endpoint, self.dim = mavutil, connect, int(dim)
        self.baud, self.system_id, self.geo_origin = int(baud), int(system_id), geo_origin
        self.conn = None
        self.target = (0, 0)
        self._heard = -math.inf
        self._next_heartbeat = 0.0
        self._readings: list[Telemetry] = []

    def connect(self, timeout: float, should_stop: Callable[[], bool]) -> None:
        mavutil = self.mavutil
        try:
            self.conn = mavutil.mavlink_connection(
                self.endpoint, baud=self.baud, source_system=self.system_id,
                source_component=mavutil.mavlink.MAV_COMP_ID_ONBOARD_COMPUTER, autoreconnect=True,
            )  # fmt: skip
        except Exception as exc:  # pymavlink raises whatever its transport does (OSError, SerialException)
            raise BodyError(f"mavlink: cannot open {self.endpoint!r}: {exc}") from None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not should_stop():
            self.service(time.monotonic())  # say who we are: a udpout vehicle needs to hear us first
            self._pump(0.1)
            if self._heard > -math.inf:
                log.info("vehicle %d/%d answered at %s", *self.target, self.endpoint)
                return
        if should_stop():
            return
        raise BodyError(f"mavlink: no HEARTBEAT from a vehicle at {self.endpoint!r} within {timeout:g} s")

    def fds(self) -> list:
        fd = getattr(self.conn, "fd", None)
        return [fd] if fd is not None and fd >= 0 else []

    def _pump(self, block: float = 0.0) -> None:
        """Take every message waiting (waiting up to ``block`` s for the first)."""
        msg = self.conn.recv_match(blocking=block > 0, timeout=block or None)
        for _ in range(10_000):
            if msg is None:
                return
            self._take(msg)
            msg = self.conn.recv_match(blocking=False)

    def _take(self, msg) -> None:
        kind = msg.get_type()
        if kind == "BAD_DATA":
            return
        src = (msg.get_srcSystem(), msg.get_srcComponent())
        if kind == "HEARTBEAT":
            if msg.type in (
                self.mavutil.mavlink.MAV_TYPE_GCS,
                self.mavutil.mavlink.MAV_TYPE_ONBOARD_CONTROLLER,
            ):
                return  # another controller, not the vehicle
            if self._heard == -math.inf:
                self.target = src
                self.conn.target_system, self.conn.target_component = src  # pymavlink's commands go there
            if src == self.target:
                self._heard = time.monotonic()
                self.autopilot = msg.autopilot
            return
        if src != self.target:
            return
        if kind == "LOCAL_POSITION_NED" and self.geo_origin is None:
            # NED to our frame: x east, y north
            en = np.array([msg.y, msg.x], dtype=np.float64)[: self.dim]
            ven = np.array([msg.vy, msg.vx], dtype=np.float64)[: self.dim]
            self._readings.append(Telemetry(en, ven))
        elif kind == "GLOBAL_POSITION_INT" and self.geo_origin is not None:
            lat0, lon0 = self.geo_origin
            lat, lon = msg.lat * 1e-7, msg.lon * 1e-7
            east = math.radians(lon - lon0) * math.cos(math.radians(lat0)) * _EARTH_RADIUS
            north = math.radians(lat - lat0) * _EARTH_RADIUS
            ven = np.array([msg.vy, msg.vx], dtype=np.float64)[: self.dim] * 0.01  # cm/s
            self._readings.append(Telemetry(np.array([east, north])[: self.dim], ven))

    def read(self) -> list[Telemetry]:
        self._pump()
        out, self._readings = self._readings, []
        return out

    def last_heard(self) -> float:
        return self._heard

    def setpoint(self, velocity: np.ndarray) -> None:
        if self.conn is None:  # never connected (or closed): nobody to tell
            return
        v = np.zeros(2)
        v[: len(velocity)] = velocity
        mav = self.mavutil.mavlink
        # velocity (east, north) -> NED (north, east, down = 0)
        self.conn.mav.set_position_target_local_ned_send(
            0, self.target[0], self.target[1], mav.MAV_FRAME_LOCAL_NED, TYPE_MASK_VELOCITY,
            0.0, 0.0, 0.0, float(v[1]), float(v[0]), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
        )  # fmt: skip

    def service(self, now: float) -> None:
        if self.conn is not None and now >= self._next_heartbeat:
            self._next_heartbeat = now + 1.0
            mav = self.mavutil.mavlink
            self.conn.mav.heartbeat_send(mav.MAV_TYPE_ONBOARD_CONTROLLER, mav.MAV_AUTOPILOT_INVALID, 0, 0,
                                         mav.MAV_STATE_ACTIVE)  # fmt: skip

    def arm(self) -> None:
        mav = self.mavutil.mavlink
        modes = {mav.MAV_AUTOPILOT_PX4: "OFFBOARD", mav.MAV_AUTOPILOT_ARDUPILOTMEGA: "GUIDED"}
        mode = modes.get(getattr(self, "autopilot", None))
        for _ in range(10):  # PX4 takes OFFBOARD only while setpoints stream
            self.hold()
        if mode is None:  # a generic autopilot names no modes: it takes setpoints as it is, or not at all
            log.warning("the vehicle's autopilot is neither PX4 nor ArduPilot: arming without a mode change")
        else:
            try:
                self.conn.set_mode(mode)
            except (KeyError, ValueError, AttributeError) as exc:
                raise BodyError(f"mavlink: cannot enter mode {mode}: {exc}") from None
        self.conn.arducopter_arm()  # MAV_CMD_COMPONENT_ARM_DISARM, for any autopilot
        log.warning("asked the vehicle to arm%s", f" in {mode}" if mode else "")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
