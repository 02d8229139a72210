"""The seam between an agent and a real vehicle: :class:`Vehicle` is what a body for a new kind
of vehicle implements (one file: connect, read telemetry, send a velocity setpoint, hold, say
whether the vehicle is alive); :class:`VehicleLink` turns it into the agent's body link, so the
agent's loop and law are the same for every body.

Frames. A vehicle speaks metres in a local frame with ``x`` east and ``y`` north (east only in
1-D); the agent speaks its domain's units. ``origin`` is where the vehicle frame's origin lies in
the domain and ``scale`` how many metres one domain unit is:

.. math::

    p_{\\text{domain}} = o + p_{\\text{metric}} / s, \\qquad v_{\\text{metric}} = s\\, v_{\\text{domain}}.

The link makes a :class:`~swarmcover.protocol.State` of each telemetry reading (its own epoch,
sequence and tick, the world clock being this process's monotonic clock since the link
started), and a velocity setpoint of each :class:`~swarmcover.protocol.Command`, after the
**geofence**: a setpoint that would take the vehicle outside the domain or into a no-go zone
within ``fence_horizon`` seconds is not sent; the vehicle is told to hold instead (``fenced``).
A zero command (the agent's fail-safe) and the agent's ``bye`` are holds. A vehicle that stops
answering (no heartbeat for ``heartbeat_timeout``) is **lost**: the link logs it, stops making
states (the agent then fails safe, and its silence tells its peers) and sends holds.
"""

from __future__ import annotations

import logging
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from swarmcover.domain import Box, Zone
from swarmcover.protocol import Bye, Command, ProtocolError, State, decode, encode

__all__ = ["BodyError", "Telemetry", "Vehicle", "VehicleLink"]

log = logging.getLogger("swarmcover.agent.vehicle")


class BodyError(RuntimeError):
    """A body that cannot be used: a missing extra, a vehicle that never answered."""


@dataclass(frozen=True)
class Telemetry:
    """One reading: ``position`` (and ``velocity``, if known) in the vehicle's metric frame
    (``x`` east, ``y`` north, metres), ``shape (d,)``."""

    position: np.ndarray
    velocity: np.ndarray | None = None


class Vehicle(ABC):
    """What a body for one kind of vehicle implements (see ``docs/bodies.md``).

    All calls come from the agent's one thread; none may block for long (``connect`` excepted).
    """

    @abstractmethod
    def connect(self, timeout: float, should_stop: Callable[[], bool]) -> None:
        """Open the link and wait (at most ``timeout`` s, giving up when ``should_stop()``) until
        the vehicle answers; :class:`BodyError` naming the endpoint when it does not."""

    @abstractmethod
    def fds(self) -> list:
        """File descriptors (or sockets) that become readable when the vehicle sent something."""

    @abstractmethod
    def read(self) -> list[Telemetry]:
        """Telemetry received since the last call (non-blocking), oldest first."""

    @abstractmethod
    def last_heard(self) -> float:
        """``time.monotonic()`` of the vehicle's latest heartbeat (or message)."""

    @abstractmethod
    def setpoint(self, velocity: np.ndarray) -> None:
        """Send a velocity setpoint ``(d,)`` in the metric frame (metres per second)."""

    def hold(self) -> None:
        """Stop where it is (default: a zero velocity setpoint)."""
        self.setpoint(np.zeros(self.dim))

    def service(self, now: float) -> None:  # noqa: B027 - a hook: most vehicles need none
        """Called every loop of the agent: the place for heartbeats of our own."""

    def arm(self) -> None:  # noqa: B027 - only vehicles that can be armed override it
        """Arm and enter the mode that takes velocity setpoints (only when the config asks)."""

    @abstractmethod
    def close(self) -> None: ...

    dim: int = 2


class VehicleLink:
    """A :class:`Vehicle` as the agent's body link (``poll_items``/``receive``/``send``/``close``).

    Parameters
    ----------
    vehicle : Vehicle
    agent_id : int
    box : Box
        The domain (and the geofence's outer edge).
    zones : sequence of Zone
        No-go zones the geofence keeps the vehicle out of.
    origin : sequence of float, shape (d,)
    scale : float
        Metres per domain unit.
    fence_horizon : float
        Seconds a setpoint is checked ahead.
    heartbeat_timeout, connect_timeout : float
        Seconds.
    arm : bool
        Arm and switch mode after connecting (default off: a person does it).
    """

    def __init__(
        self,
        vehicle: Vehicle,
        agent_id: int,
        box: Box,
        zones: Sequence[Zone] = (),
        origin: Sequence[float] | None = None,
        scale: float = 1.0,
        fence_horizon: float = 1.0,
        heartbeat_timeout: float = 3.0,
        connect_timeout: float = 30.0,
        arm: bool = False,
    ) -> None:
        self.vehicle, self.agent_id, self.box, self.zones = vehicle, agent_id, box, tuple(zones)
        self.dim = box.dim
        self.origin = np.zeros(self.dim) if origin is None else np.asarray(origin, dtype=np.float64)
        if self.origin.shape != (self.dim,) or not np.all(np.isfinite(self.origin)):
            raise ValueError(f"body origin must be {self.dim} finite numbers, got {origin!r}")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"body scale must be > 0 (metres per domain unit), got {scale!r}")
        self.scale, self.horizon = float(scale), float(fence_horizon)
        self.heartbeat_timeout, self.connect_timeout, self.want_arm = heartbeat_timeout, connect_timeout, arm
        self.epoch, self.seq, self.t0 = time.time_ns(), 0, time.monotonic()
        self.lost = False
        self.last: np.ndarray | None = None  # the latest position (domain), for the fence
        self.counts = {"fenced": 0, "vehicle_lost": 0, "telemetry_rejected": 0}

    # ------------------------------------------------------------------ the agent's side
    def start(self, should_stop: Callable[[], bool]) -> None:
        """Connect (blocking, bounded by ``connect_timeout``), then arm if asked."""
        self.vehicle.connect(self.connect_timeout, should_stop)
        self.t0 = time.monotonic()
        if self.want_arm:
            self.vehicle.arm()

    def poll_items(self) -> list:
        return self.vehicle.fds()

    def world_time(self) -> float:
        """The states' clock: seconds since the link started (real time)."""
        return time.monotonic() - self.t0

    def to_domain(self, p: np.ndarray) -> np.ndarray:
        return self.origin + np.asarray(p, dtype=np.float64) / self.scale

    def allowed(self, x: np.ndarray, v: np.ndarray) -> bool:
        """Whether a vehicle at ``x`` (domain) may be given the velocity ``v`` (domain units/s):
        where it would be after ``fence_horizon`` s, and every point of the way, is in the
        domain and out of the zones (the way is checked at a few points)."""
        for f in np.linspace(0.0, 1.0, 5)[1:]:
            p = (x + f * self.horizon * v)[None]
            if not self.box.contains(p)[0]:
                return False
            if any(z.contains(p)[0] for z in self.zones):
                return False
        return True

    def receive(self) -> list[list[bytes]]:
        """The newest telemetry reading as a state (older ones are superseded); none while the
        vehicle is lost."""
        readings = self.vehicle.read()
        if self.lost or not readings:
            return []
        good = [r for r in readings if np.all(np.isfinite(r.position)) and r.position.shape == (self.dim,)]
        self.counts["telemetry_rejected"] += len(readings) - len(good)
        if len(good) < len(readings):
            log.warning("%d telemetry readings rejected (non-finite or of another dimension)",
                        len(readings) - len(good))  # fmt: skip
        if not good:
            return []
        self.seq += 1
        self.last = self.to_domain(good[-1].position)
        st = State(agent_id=self.agent_id, epoch=self.epoch, seq=self.seq, t=time.time(),
                   position=self.last.tolist(), world_time=self.world_time(), tick=self.seq)  # fmt: skip
        return [encode(st)]

    def send(self, frames: list[bytes]) -> bool:
        """A command becomes a setpoint (after the fence); a zero command or a bye, a hold."""
        try:
            msg = decode(frames).message
        except ProtocolError:  # pragma: no cover - the agent encodes what it sends
            return False
        if isinstance(msg, Bye):
            self.vehicle.hold()
        elif isinstance(msg, Command):
            v = np.asarray(msg.velocity, dtype=np.float64)
            if self.lost or not np.any(v):  # lost: the agent fails safe, and the vehicle holds
                self.vehicle.hold()
            elif self.last is not None and not self.allowed(self.last, v):
                self.counts["fenced"] += 1
                log.warning(
                    "setpoint %s at %s refused by the geofence: holding", v.tolist(), self.last.tolist()
                )
                self.vehicle.hold()
            else:
                self.vehicle.setpoint(v * self.scale)
        return True

    def service(self, now: float) -> None:
        """Heartbeats of our own, and the vehicle's: lost after ``heartbeat_timeout`` of silence."""
        self.vehicle.service(now)
        silent = now - self.vehicle.last_heard() > self.heartbeat_timeout
        if silent and not self.lost:
            self.lost = True
            self.counts["vehicle_lost"] += 1
            log.error("vehicle lost: no heartbeat for %.1f s; holding, no states until it is back",
                      self.heartbeat_timeout)  # fmt: skip
            self.vehicle.hold()
        elif not silent and self.lost:
            self.lost = False
            log.warning("vehicle back")

    def close(self) -> None:
        self.vehicle.close()
