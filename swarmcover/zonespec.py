"""No-go zones as configuration: the one model the scenario, the simulator and an agent with a
map of its own read (``kind = "disk" | "rect"``), each building a :class:`~swarmcover.domain.Zone`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .configfile import Strict
from .domain import Disk, Rectangle, Zone

__all__ = ["DiskZone", "RectZone", "Region"]


class DiskZone(Strict):
    """A disk (an interval in 1-D) of ``center`` and ``radius``."""

    kind: Literal["disk"] = "disk"
    center: list[float] = Field(min_length=1, max_length=2)
    radius: Annotated[float, Field(gt=0.0, allow_inf_nan=False)]

    def zone(self) -> Zone:
        return Disk(tuple(self.center), self.radius)


class RectZone(Strict):
    """An axis-aligned box ``[lo, hi]``."""

    kind: Literal["rect"] = "rect"
    lo: list[float] = Field(min_length=1, max_length=2)
    hi: list[float] = Field(min_length=1, max_length=2)

    def zone(self) -> Zone:
        return Rectangle(tuple(self.lo), tuple(self.hi))


Region = Annotated[DiskZone | RectZone, Field(discriminator="kind")]
