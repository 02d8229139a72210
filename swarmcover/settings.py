"""Settings that more than one config takes, each with one name and one default.

The scenario's ``[simulator]``, ``[render]`` and ``[agents]`` sections (``launcher/scenario.py``)
and the simulator's and the agent's own configs (``simulator/config.py``, ``swarmcover/agentspec.py``)
derive from these models, so a key means the same and defaults the same wherever it is written,
and the launcher hands each part down whole (every field of one of these), never a key picked
by hand. ``docs/scenarios.md`` lists them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .configfile import NonNegative, Positive, Strict

__all__ = ["AgentTimes", "RenderSettings", "SimulatorTimes"]


class SimulatorTimes(Strict):
    """The simulator's wall-clock limits and metrics period (wall seconds, except
    ``metrics_every``, world seconds)."""

    failure_timeout_wall: Positive = 1.0
    command_ttl_wall: Positive = 0.5
    wait_for_agents_wall: NonNegative = 180.0
    lockstep_timeout_wall: Positive = 1.0
    metrics_every: Positive = 1.0
    drift_when_failed: bool = True


class RenderSettings(Strict):
    """How the world is drawn (the live window, saved frames, ``final.png``)."""

    width: Annotated[int, Field(ge=64, le=4096)] = 900
    fps: Positive = 20.0
    trails: Annotated[int, Field(ge=0, le=1000)] = 0
    links: bool = True
    blobs: Literal["none", "outline", "fill"] = "none"
    frame_every: Positive = 1.0  # world seconds between saved frames


class AgentTimes(Strict):
    """An agent's timeouts (wall seconds), its neighbour table's size and its kernel."""

    beacon_ttl: Positive = 0.5
    forget_after: Positive = 2.0
    state_timeout: Positive = 1.0
    max_neighbors: Annotated[int, Field(ge=1, le=65536)] = 1024
    kernel: Literal["auto", "c", "numpy", "numba"] = "auto"

    @model_validator(mode="after")
    def _forget_after_ttl(self) -> AgentTimes:
        if self.forget_after < self.beacon_ttl:
            raise ValueError("forget_after must be >= beacon_ttl")
        return self
