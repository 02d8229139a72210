r"""The wire protocol's message models (``docs/protocol.md``): one pydantic model a kind, strict.

Every header carries the envelope ``v`` (protocol version), ``kind``, ``agent_id``, ``epoch``,
``seq`` and ``t``; unknown fields, NaN/inf, wrong types (no coercion), out-of-range numbers and
oversized strings or lists are rejected. :mod:`swarmcover.protocol` encodes and decodes them (and
re-exports every name here).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_NEIGHBOR_ROWS",
    "MAX_PATCH_NODES",
    "MAX_PATH_NODES",
    "VERSION",
    "Beacon",
    "BeaconPart",
    "Bye",
    "Command",
    "Counters",
    "Hello",
    "Message",
    "Neighbors",
    "Patch",
    "Path",
    "PhaseInfo",
    "ProtocolError",
    "ScheduleReport",
    "State",
    "Stats",
    "StatsRequest",
]

VERSION = 1
#: largest header (frame 0) accepted, bytes
MAX_HEADER_BYTES = 16 * 1024
#: largest buffer frame accepted, bytes
MAX_FRAME_BYTES = 1 << 20
#: largest patch, nodes per axis
MAX_PATCH_NODES = 256
#: most beacons one state may carry
MAX_NEIGHBOR_ROWS = 8192
#: most time nodes in a planned path
MAX_PATH_NODES = 256

_U31 = Annotated[int, Field(ge=0, lt=1 << 31)]
_U63 = Annotated[int, Field(ge=0, lt=1 << 63)]
_Time = Annotated[float, Field(ge=0.0, le=1e11)]
_Coord = Annotated[float, Field(ge=-1e12, le=1e12)]
_Vec = Annotated[list[_Coord], Field(min_length=1, max_length=3)]
_Text = Annotated[str, Field(max_length=200)]
_Eps = Annotated[float, Field(gt=0.0, le=1e12)]
_Smoothing = Annotated[float, Field(ge=0.0, le=1e12)]


class ProtocolError(ValueError):
    """A message that does not follow the protocol; the text says what is wrong."""


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class _Envelope(_Model):
    v: Annotated[int, Field(ge=VERSION, le=VERSION)] = VERSION  # an int: strict refuses true and 1.0
    agent_id: _U31
    epoch: _U63
    seq: _U63
    t: _Time


class Counters(_Model):
    """An agent's message counters."""

    messages_in: _U63 = 0
    messages_out: _U63 = 0
    stale: _U63 = 0
    rejected: _U63 = 0
    commands: _U63 = 0
    failsafe: _U63 = 0
    dropped: _U63 = 0  # messages this agent could not queue (a full send queue: the high-water mark)
    mass_capped: _U63 = 0  # neighbour-ticks whose claimed mass was above the fleet's, used at the fleet's
    impossible: _U63 = 0  # peers' direct beacons refused as physically impossible
    quarantined: _U63 = 0  # times a peer was quarantined for sending them
    epochs_deferred: _U63 = 0  # beacons whose later restart was held off (the current one still annealing)
    links_reset: _U63 = 0  # direct peer links closed and made again: the process grew past its memory budget
    fenced: _U63 = 0  # vehicle bodies: setpoints not sent because the geofence refused them (a hold instead)
    vehicle_lost: _U63 = 0  # vehicle bodies: times the vehicle fell silent (no heartbeat)
    telemetry_rejected: _U63 = 0  # vehicle bodies: telemetry readings refused (non-finite, wrong dimension)


class Hello(_Envelope):
    """An agent announces itself to its body and peers (first message of an epoch); ``eps`` and
    ``smoothing`` (optional) are what it wants its first patch sensed for."""

    kind: Literal["hello"] = "hello"
    name: _Text = ""
    rate_hz: Annotated[float, Field(gt=0.0, le=1000.0)]
    eps: _Eps | None = None
    smoothing: _Smoothing | None = None


class PhaseInfo(_Model):
    """Which coverage schedule a sender is in (see :mod:`swarmcover.schedule`): ``epoch`` 0 is the
    initial schedule, ``k >= 1`` the ``k``-th restart after losses; ``age`` is the time since that
    phase began on the sender's clock (world seconds), so that clocks need not agree."""

    epoch: _U31
    age: _Time


class Bye(_Envelope):
    """An agent leaves (on SIGTERM/SIGINT), with its final counters."""

    kind: Literal["bye"] = "bye"
    reason: _Text = ""
    counters: Counters


class Beacon(_Envelope):
    """An agent's position, sent to its peers every control period; also its heartbeat."""

    kind: Literal["beacon"] = "beacon"
    position: _Vec
    mass: Annotated[float, Field(gt=0.0, le=1.0)]
    phase: PhaseInfo | None = None


class Patch(_Model):
    r"""A sensed patch of the field: cubic B-spline coefficients of :math:`(W, \partial_1 W, ...)`
    on a regular grid; node ``k`` (a multi-index) sits at ``origin + k * spacing``.
    The coefficients travel as raw buffer ``buffer`` (little-endian float64, C order,
    shape ``shape + [d + 1]``)."""

    eps: _Eps
    smoothing: _Smoothing | None = None
    origin: _Vec
    spacing: Annotated[list[Annotated[float, Field(gt=0.0, le=1e12)]], Field(min_length=1, max_length=3)]
    shape: Annotated[list[Annotated[int, Field(ge=4, le=MAX_PATCH_NODES)]], Field(min_length=1, max_length=3)]
    buffer: Annotated[int, Field(ge=0, le=7)] = 0
    dtype: Literal["<f8"] = "<f8"


class Neighbors(_Model):
    r"""Beacons a body's radio delivered to the agent since its previous state, the newest per
    sender, relayed in the state instead of one message each. They travel as raw buffer
    ``buffer`` (little-endian float64, C order, shape ``(count, d + 3)``), one row per beacon:
    ``[agent_id, t, position_1 .. position_d, mass]`` (the beacon's sender, its ``t``, its
    ``position`` and ``mass``; the relay checked the sender's epoch and sequence). With ``phase``
    each row has two more columns, the beacon's ``phase.epoch`` (-1 where it gave none) and
    ``phase.age``: shape ``(count, d + 5)``."""

    count: Annotated[int, Field(ge=0, le=MAX_NEIGHBOR_ROWS)]
    buffer: Annotated[int, Field(ge=0, le=7)] = 1
    dtype: Literal["<f8"] = "<f8"
    phase: bool = False


class State(_Envelope):
    """A body's state and sensing, to its agent (``agent_id`` is the agent it is for).

    ``reply="command"`` (default): answer with a command (and a beacon). ``reply="beacon"``: a
    sensing round of a lockstep tick: answer at once with a beacon of this position only; the
    command round for the same tick follows, so that every agent computes with its neighbours'
    positions of this tick. ``dt`` (optional) is the body's tick, world seconds: the next state
    comes at ``world_time + dt``, which is when the patch asked for in the answer is for."""

    kind: Literal["state"] = "state"
    position: _Vec
    world_time: _Time
    dt: Annotated[float, Field(gt=0.0, le=1e6)] | None = None
    tick: _U63
    patch: Patch | None = None
    neighbors: Neighbors | None = None
    reply: Literal["command", "beacon"] = "command"


class BeaconPart(_Model):
    """A beacon riding on a command (to a body that carries the radio): what a :class:`Beacon`
    would say, one message fewer per tick."""

    position: _Vec
    mass: Annotated[float, Field(gt=0.0, le=1.0)]
    phase: PhaseInfo | None = None


class ScheduleReport(_Model):
    """Where an agent is in its coverage schedule (for the body's log): its phase, the ``stage``
    index it computed this command with, and why the phase last changed (``start``: its own first
    state; ``losses``: it detected lost neighbours and restarted; ``neighbours``: it took up a
    neighbour's phase)."""

    epoch: _U31
    age: _Time
    stage: Annotated[int, Field(ge=0, le=1023)]
    cause: Literal["start", "losses", "neighbours"]


class Command(_Envelope):
    """An agent's velocity command to its body, answering state ``tick``; ``eps`` and
    ``smoothing`` (optional) are what it wants its next patch sensed for; ``beacon`` (optional) is
    this tick's beacon, for a body whose radio relays it to the peers (the envelope's ``t`` is the
    beacon's); ``schedule`` (optional) where the agent is in its schedule."""

    kind: Literal["command"] = "command"
    velocity: _Vec
    tick: _U63
    eps: _Eps
    smoothing: _Smoothing | None = None
    beacon: BeaconPart | None = None
    schedule: ScheduleReport | None = None


class StatsRequest(_Envelope):
    """Ask an agent for its counters (``agent_id`` is the requester, 0 for an operator)."""

    kind: Literal["stats_request"] = "stats_request"


class Stats(_Envelope):
    """An agent's counters, in answer to :class:`StatsRequest`."""

    kind: Literal["stats"] = "stats"
    counters: Counters
    neighbors: _U31


class Path(_Envelope):
    """A planned path for agent ``agent_id``, from its body (or a planner speaking for it): the
    position ``points[j]`` at world time ``times[j]`` (the clock of :attr:`State.world_time`),
    straight lines at constant speed between nodes. The agent tracks it within its speed limit and
    switches to the coverage law after the last node; before ``times[0]`` it holds at ``points[0]``.
    ``plan`` numbers plans: a path with a higher number replaces the one held, the same number is a
    repeat (a body sends it again after every hello) and is ignored. An empty path (no nodes) ends
    the current one: the agent joins coverage at once."""

    kind: Literal["path"] = "path"
    plan: _U31
    times: Annotated[list[_Time], Field(max_length=MAX_PATH_NODES)]
    points: Annotated[list[_Vec], Field(max_length=MAX_PATH_NODES)]

    @model_validator(mode="after")
    def _nodes(self) -> Path:
        if len(self.times) != len(self.points):
            raise ValueError(f"{len(self.times)} times for {len(self.points)} points")
        if len(self.times) == 1:
            raise ValueError("a path needs at least two nodes (or none, to end the current one)")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError("times must be strictly increasing")
        if len({len(p) for p in self.points}) > 1:
            raise ValueError("every point must have the same dimension")
        return self


Message = Annotated[
    Hello | Bye | Beacon | State | Command | StatsRequest | Stats | Path, Field(discriminator="kind")
]
