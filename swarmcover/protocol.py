r"""The wire protocol between agents, bodies (the simulator or hardware) and peers.

Pure: message models and their encoding, no sockets. ``docs/protocol.md`` specifies the same thing
for implementers in other languages.

A message is a ZeroMQ multipart message (or one UDP datagram holding only the header):

- frame 0: a UTF-8 JSON object, the *header*, validated strictly (unknown fields, NaN/inf, wrong
  types, out-of-range numbers and oversized strings or lists are rejected);
- frames 1..k: raw little-endian buffers referenced from the header by index (only
  :class:`State` uses one: the sensed field patch), checked against their declared dtype and shape.

Every header carries the envelope ``v`` (protocol version), ``kind``, ``agent_id``, ``epoch`` (random
per process start), ``seq`` (per sender and epoch, strictly increasing) and ``t`` (sender's wall
clock, seconds since the Unix epoch). Nothing is ever unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .configfile import describe_validation_error

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_PATCH_NODES",
    "VERSION",
    "Beacon",
    "Bye",
    "Command",
    "Counters",
    "Decoded",
    "Hello",
    "Message",
    "Patch",
    "ProtocolError",
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

_U31 = Annotated[int, Field(ge=0, lt=1 << 31)]
_U63 = Annotated[int, Field(ge=0, lt=1 << 63)]
_Time = Annotated[float, Field(ge=0.0, le=1e11)]
_Coord = Annotated[float, Field(ge=-1e12, le=1e12)]
_Vec = Annotated[list[_Coord], Field(min_length=1, max_length=3)]
_Text = Annotated[str, Field(max_length=200)]


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


class Hello(_Envelope):
    """An agent announces itself to its body and peers (first message of an epoch)."""

    kind: Literal["hello"] = "hello"
    name: _Text = ""
    rate_hz: Annotated[float, Field(gt=0.0, le=1000.0)]


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


class Patch(_Model):
    r"""A sensed patch of the field: cubic B-spline coefficients of :math:`(W, \partial_1 W, ...)`
    on a regular grid; node ``k`` (a multi-index) sits at ``origin + k * spacing``.
    The coefficients travel as raw buffer ``buffer`` (little-endian float64, C order,
    shape ``shape + [d + 1]``)."""

    eps: Annotated[float, Field(gt=0.0, le=1e12)]
    origin: _Vec
    spacing: Annotated[list[Annotated[float, Field(gt=0.0, le=1e12)]], Field(min_length=1, max_length=3)]
    shape: Annotated[list[Annotated[int, Field(ge=4, le=MAX_PATCH_NODES)]], Field(min_length=1, max_length=3)]
    buffer: Annotated[int, Field(ge=0, le=7)] = 0
    dtype: Literal["<f8"] = "<f8"


class State(_Envelope):
    """A body's state and sensing, to its agent (``agent_id`` is the agent it is for).

    ``reply="command"`` (default): answer with a command (and a beacon). ``reply="beacon"``: a
    sensing round of a lockstep tick: answer at once with a beacon of this position only; the
    command round for the same tick follows, so that every agent computes with its neighbours'
    positions of this tick."""

    kind: Literal["state"] = "state"
    position: _Vec
    world_time: _Time
    tick: _U63
    patch: Patch | None = None
    reply: Literal["command", "beacon"] = "command"


class Command(_Envelope):
    """An agent's velocity command to its body, answering state ``tick``; ``eps`` is the mollifier
    it wants its next patch sensed for."""

    kind: Literal["command"] = "command"
    velocity: _Vec
    tick: _U63
    eps: Annotated[float, Field(gt=0.0, le=1e12)]


class StatsRequest(_Envelope):
    """Ask an agent for its counters (``agent_id`` is the requester, 0 for an operator)."""

    kind: Literal["stats_request"] = "stats_request"


class Stats(_Envelope):
    """An agent's counters, in answer to :class:`StatsRequest`."""

    kind: Literal["stats"] = "stats"
    counters: Counters
    neighbors: _U31


Message = Annotated[
    Hello | Bye | Beacon | State | Command | StatsRequest | Stats, Field(discriminator="kind")
]
_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


@dataclass(frozen=True)
class Decoded:
    """A decoded message and its buffers (``patch`` for a :class:`State` with a patch)."""

    message: Hello | Bye | Beacon | State | Command | StatsRequest | Stats
    patch: np.ndarray | None = None


def encode(message: _Envelope, patch: np.ndarray | None = None) -> list[bytes]:
    """Encode a message as frames: ``[header]`` or ``[header, patch buffer]``."""
    header = message.model_dump_json().encode()
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    if patch is None:
        if isinstance(message, State) and message.patch is not None:
            raise ProtocolError("state declares a patch but no buffer was given")
        return [header]
    if not isinstance(message, State) or message.patch is None:
        raise ProtocolError("only a state with a declared patch carries a buffer")
    arr = np.ascontiguousarray(patch, dtype="<f8")
    want = (*message.patch.shape, len(message.patch.shape) + 1)
    if arr.shape != want:
        raise ProtocolError(f"patch buffer has shape {arr.shape}, header declares {want}")
    return [header, arr.tobytes()]


def decode(frames: list[bytes]) -> Decoded:
    """Validate and decode frames; raise :class:`ProtocolError` naming the problem."""
    if not frames or len(frames) > 2:
        raise ProtocolError(f"expected 1 or 2 frames, got {len(frames)}")
    header = frames[0]
    if len(header) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(header)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        raw = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("header must be a JSON object")
    if raw.get("v") != VERSION:
        raise ProtocolError(f"unsupported protocol version {raw.get('v')!r} (this side speaks {VERSION})")
    try:
        msg = _ADAPTER.validate_json(header)
    except ValidationError as exc:
        raise ProtocolError(
            f"invalid {raw.get('kind', 'message')!s:.40}: {describe_validation_error(exc)}"
        ) from None
    patch = None
    if isinstance(msg, State) and msg.patch is not None:
        p = msg.patch
        d = len(p.origin)
        if len(p.spacing) != d or len(p.shape) != d or len(msg.position) != d:
            raise ProtocolError("patch origin, spacing, shape and position must have the same dimension")
        if len(frames) != 2 or p.buffer != 0:
            raise ProtocolError("a state with a patch needs exactly one buffer frame, index 0")
        shape = (*p.shape, d + 1)
        size = int(np.prod(shape)) * 8
        if size > MAX_FRAME_BYTES or len(frames[1]) != size:
            raise ProtocolError(f"patch buffer is {len(frames[1])} bytes, shape {list(shape)} needs {size}")
        patch = np.frombuffer(frames[1], dtype="<f8").reshape(shape)
        if not np.all(np.isfinite(patch)):
            raise ProtocolError("patch buffer holds NaN or infinite values")
    elif len(frames) != 1:
        raise ProtocolError(f"a {msg.kind} message carries no buffers")
    return Decoded(msg, patch)
