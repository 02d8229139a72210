"""What every vehicle body shares, as configuration: one model for the agent's ``body`` table
(``swarmcover/agentspec.py``) and the scenario's ``[vehicles]`` section (``launcher/vehicles.py``), so
each key has one name and one default (``docs/bodies.md``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .configfile import Positive, Strict

__all__ = ["GeoPoint", "VehicleSettings"]


#: ``[lat, lon]`` in degrees
GeoPoint = tuple[Annotated[float, Field(ge=-90.0, le=90.0)], Annotated[float, Field(ge=-180.0, le=180.0)]]


class VehicleSettings(Strict):
    """The vehicle's metric frame (``x`` east, ``y`` north, metres) sits at ``origin`` in the
    domain (default: the domain's lower corner) and one domain unit is ``scale`` metres; the
    geofence looks ``fence_horizon`` seconds ahead; a vehicle silent for ``heartbeat_timeout`` s
    is lost; one that never answers within ``connect_timeout`` s stops its agent with an error;
    ``arm`` (off by default: a person arms) arms it and enters the mode that takes setpoints."""

    origin: list[Annotated[float, Field(allow_inf_nan=False)]] | None = Field(default=None, max_length=2)
    scale: Positive = 1.0
    arm: bool = False
    fence_horizon: Positive = 1.0
    heartbeat_timeout: Positive = 3.0
    connect_timeout: Positive = 30.0
