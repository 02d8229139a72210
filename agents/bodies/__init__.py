"""An agent's bodies: what it reads its position from and sends its velocity to.

``open_body(cfg, ctx)`` makes the link for ``cfg.body.kind``: ``"sim"`` (the simulator, over
ZeroMQ), ``"udp"`` (our JSON headers over UDP), ``"mavlink"`` (a MAVLink vehicle, the
``mavlink`` extra) or ``"ros2"`` (a ROS 2 robot over DDS, the ``ros2`` extra). A vehicle body is
a :class:`~swarmcover.agents.bodies.vehicle.Vehicle` (one file each) behind the same
:class:`~swarmcover.agents.bodies.vehicle.VehicleLink`; ``docs/bodies.md`` shows how to add one.
"""

from __future__ import annotations

from .vehicle import BodyError, Telemetry, Vehicle, VehicleLink

__all__ = ["BodyError", "Telemetry", "Vehicle", "VehicleLink", "open_vehicle"]


def open_vehicle(cfg) -> VehicleLink:
    """The :class:`VehicleLink` for an agent config whose body is a vehicle (``mavlink``,
    ``ros2``); :class:`BodyError` naming the extra when its library is not installed. Nothing
    is connected yet (:meth:`VehicleLink.start` does, from the agent's loop)."""
    from swarmcover.domain import Box

    body = cfg.body
    if body.kind == "mavlink":
        from .mavlink import MavlinkVehicle

        vehicle: Vehicle = MavlinkVehicle(body.connect, cfg.dim, body.baud, body.system_id, body.geo_origin)
    elif body.kind == "ros2":
        from .ros2 import Ros2Vehicle

        vehicle = Ros2Vehicle(body.namespace, cfg.dim, body.domain_id, body.odometry)
    else:
        raise ValueError(f"body {body.kind!r} is not a vehicle")
    box = Box(cfg.bounds)
    zones = [] if cfg.target is None else [z.zone() for z in cfg.target.zones]
    origin = body.origin if body.origin is not None else box.lo.tolist()
    return VehicleLink(vehicle, cfg.agent_id, box, zones, origin, body.scale, body.fence_horizon,
                       body.heartbeat_timeout, body.connect_timeout, body.arm)  # fmt: skip
