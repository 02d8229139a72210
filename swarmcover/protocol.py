r"""The wire protocol between agents, bodies (the simulator or hardware) and peers.

Pure: message models and their encoding, no sockets. ``docs/protocol.md`` specifies the same thing
for implementers in other languages.

A message is a ZeroMQ multipart message (or one UDP datagram holding only the header):

- frame 0: a UTF-8 JSON object, the *header*, validated strictly (unknown fields, NaN/inf, wrong
  types, out-of-range numbers and oversized strings or lists are rejected);
- frames 1..k: raw little-endian buffers referenced from the header by index (only :class:`State`
  uses them: the sensed field patch, and the beacons its radio delivered since the last state),
  checked against their declared dtype and shape.

Every header carries the envelope ``v`` (protocol version), ``kind``, ``agent_id``, ``epoch`` (random
per process start), ``seq`` (per sender and epoch, strictly increasing) and ``t`` (sender's wall
clock, seconds since the Unix epoch). Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from .configfile import describe_validation_error
from .kernels import hotpath

# the optional C check of relayed rows (one call; the numpy path below names what is wrong)
_rows_ok = hotpath("rows_ok")

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
    "Decoded",
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
    "decode",
    "encode",
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
    v: Literal[1] = VERSION
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
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


@dataclass(frozen=True)
class Decoded:
    """A decoded message and its buffers (``patch`` and ``neighbors`` for a :class:`State` that
    declares them; ``neighbors`` has shape ``(count, d + 3)``, or ``(count, d + 5)`` with phases)."""

    message: Hello | Bye | Beacon | State | Command | StatsRequest | Stats | Path
    patch: np.ndarray | None = None
    neighbors: np.ndarray | None = None


def _buffers(message: _Envelope) -> dict[str, int]:
    """The buffers a header declares: name -> frame index (0 for frame 1)."""
    if not isinstance(message, State):
        return {}
    out = {}
    if message.patch is not None:
        out["patch"] = message.patch.buffer
    if message.neighbors is not None:
        out["neighbors"] = message.neighbors.buffer
    return out


def encode(
    message: _Envelope, patch: np.ndarray | None = None, neighbors: np.ndarray | None = None
) -> list[bytes]:
    """Encode a message as frames: the header, then the buffers it declares (a state's ``patch``
    and ``neighbors``), each at the index its header gives."""
    header = message.model_dump_json().encode()
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    declared = _buffers(message)
    given = {k: v for k, v in (("patch", patch), ("neighbors", neighbors)) if v is not None}
    if set(declared) != set(given):
        raise ProtocolError(f"the header declares buffers {sorted(declared)}, given {sorted(given)}")
    if sorted(declared.values()) != list(range(len(declared))):
        raise ProtocolError(f"buffer indices {sorted(declared.values())} must be 0..{len(declared) - 1}")
    frames = [header] + [b""] * len(declared)
    d = len(message.position) if isinstance(message, State) else 0
    for name, arr in given.items():
        arr = np.ascontiguousarray(arr, dtype="<f8")
        if name == "patch":
            want = (*message.patch.shape, len(message.patch.shape) + 1)
        else:
            want = (message.neighbors.count, d + (5 if message.neighbors.phase else 3))
        if arr.shape != want:
            raise ProtocolError(f"{name} buffer has shape {arr.shape}, header declares {want}")
        frames[1 + declared[name]] = arr.tobytes()
    return frames


def _check_rows(rows: np.ndarray, d: int) -> None:
    """Neighbour rows: integer ids in [0, 2^31), times and coordinates in the envelope's ranges,
    masses in (0, 1]; with phase columns, epochs -1 or integers in [0, 2^31) and ages in
    [0, 1e11]; no NaN or infinity."""
    if not len(rows):
        return
    if _rows_ok is not None:
        if _rows_ok(rows, d):
            return
    elif _rows_pass(rows, d):
        return
    _name_bad_rows(rows, d)


def _rows_pass(rows: np.ndarray, d: int) -> bool:
    """The checks of :func:`_check_rows` in a few array operations (numpy twin of the C ``rows_ok``)."""
    lo, hi = rows.min(axis=0), rows.max(axis=0)  # NaN propagates into both: then no test passes
    ids = rows[:, 0]
    phased = rows.shape[1] == d + 5
    return bool(
        lo[0] >= 0
        and hi[0] < 1 << 31
        and lo[1] >= 0
        and hi[1] <= 1e11
        and lo[2 + d] > 0
        and hi[2 + d] <= 1
        and all(lo[2 + a] >= -1e12 and hi[2 + a] <= 1e12 for a in range(d))
        and np.array_equal(ids, np.floor(ids))
        and (
            not phased
            or (
                lo[3 + d] >= -1
                and hi[3 + d] < 1 << 31
                and lo[4 + d] >= 0
                and hi[4 + d] <= 1e11
                and np.array_equal(rows[:, 3 + d], np.floor(rows[:, 3 + d]))
            )
        )
    )


def _name_bad_rows(rows: np.ndarray, d: int) -> None:
    """Raise :class:`ProtocolError` naming what is wrong with rows that failed the checks."""
    if not np.all(np.isfinite(rows)):
        raise ProtocolError("neighbors buffer holds NaN or infinite values")
    ids, t, pos, mass = rows[:, 0], rows[:, 1], rows[:, 2 : 2 + d], rows[:, 2 + d]
    if np.any(ids != np.floor(ids)) or np.any(ids < 0) or np.any(ids >= 1 << 31):
        raise ProtocolError("neighbors: agent ids must be integers in [0, 2^31)")
    if np.any(t < 0) or np.any(t > 1e11):
        raise ProtocolError("neighbors: beacon times must lie in [0, 1e11]")
    if np.any(np.abs(pos) > 1e12):
        raise ProtocolError("neighbors: positions must lie within 1e12")
    if np.any(mass <= 0) or np.any(mass > 1):
        raise ProtocolError("neighbors: masses must lie in (0, 1]")
    if rows.shape[1] == d + 5:
        ep, age = rows[:, 3 + d], rows[:, 4 + d]
        if np.any(ep != np.floor(ep)) or np.any(ep < -1) or np.any(ep >= 1 << 31):
            raise ProtocolError("neighbors: phase epochs must be -1 or integers in [0, 2^31)")
        if np.any(age < 0) or np.any(age > 1e11):
            raise ProtocolError("neighbors: phase ages must lie in [0, 1e11]")
    raise ProtocolError("neighbors: invalid rows")  # pragma: no cover - every failure is named above


def _why_invalid(header: bytes, exc: ValidationError) -> ProtocolError:
    # The header failed the strict parse; parse it again only to say why. Anything the second
    # parser refuses is refused, never raised: ``json`` rejects integers of more than 4300 digits
    # (a plain ``ValueError``, which pydantic accepted above) and nesting past the recursion limit.
    try:
        raw = json.loads(header)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError included
        return ProtocolError(f"header is not JSON: {str(err)[:120]}")
    if not isinstance(raw, dict):
        return ProtocolError("header must be a JSON object")
    if raw.get("v") != VERSION:
        return ProtocolError(f"unsupported protocol version {raw.get('v')!r} (this side speaks {VERSION})")
    return ProtocolError(f"invalid {raw.get('kind', 'message')!s:.40}: {describe_validation_error(exc)}")


def decode(frames: list[bytes]) -> Decoded:
    """Validate and decode frames; raise :class:`ProtocolError` naming the problem."""
    if not frames or len(frames) > 3:
        raise ProtocolError(f"expected 1 to 3 frames, got {len(frames)}")
    header = frames[0]
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:  # one strict parse; only a message that fails it is parsed again, to say why
        msg = _ADAPTER.validate_json(header)
    except ValidationError as exc:
        raise _why_invalid(header, exc) from None
    declared = _buffers(msg)
    if len(frames) != 1 + len(declared):
        what = f"a {msg.kind} declaring {len(declared)} buffer(s)"
        raise ProtocolError(f"{what} needs {1 + len(declared)} frame(s), got {len(frames)}")
    if sorted(declared.values()) != list(range(len(declared))):
        raise ProtocolError(f"buffer indices {sorted(declared.values())} must be 0..{len(declared) - 1}")
    patch = neighbors = None
    if isinstance(msg, State) and msg.patch is not None:
        p = msg.patch
        d = len(p.origin)
        if len(p.spacing) != d or len(p.shape) != d or len(msg.position) != d:
            raise ProtocolError("patch origin, spacing, shape and position must have the same dimension")
        frame = frames[1 + p.buffer]
        shape = (*p.shape, d + 1)
        size = int(np.prod(shape)) * 8
        if size > MAX_FRAME_BYTES or len(frame) != size:
            raise ProtocolError(f"patch buffer is {len(frame)} bytes, shape {list(shape)} needs {size}")
        patch = np.frombuffer(frame, dtype="<f8").reshape(shape)
        if not np.all(np.isfinite(patch)):
            raise ProtocolError("patch buffer holds NaN or infinite values")
    if isinstance(msg, State) and msg.neighbors is not None:
        nb = msg.neighbors
        d = len(msg.position)
        frame = frames[1 + nb.buffer]
        width = d + (5 if nb.phase else 3)
        size = nb.count * width * 8
        if len(frame) != size:
            raise ProtocolError(
                f"neighbors buffer is {len(frame)} bytes, {nb.count} rows of {width} need {size}"
            )
        neighbors = np.frombuffer(frame, dtype="<f8").reshape(nb.count, width)
        _check_rows(neighbors, d)
    return Decoded(msg, patch, neighbors)
