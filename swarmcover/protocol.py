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

import numpy as np
from pydantic import TypeAdapter, ValidationError

from . import messages, wiretwins
from .configfile import describe_validation_error
from .kernels import hotpath
from .messages import *  # noqa: F403 (every message model is this module's too)
from .messages import MAX_FRAME_BYTES, MAX_HEADER_BYTES, VERSION, Message, ProtocolError, _Envelope

# the optional C check of relayed rows (one call; the numpy path below names what is wrong)
_rows_ok = hotpath("rows_ok")

__all__ = ["Decoded", "decode", "decode_twin", "encode", *messages.__all__]

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Message)


@dataclass(frozen=True)
class Decoded:
    """A decoded message and its buffers (``patch`` and ``neighbors`` for a :class:`State` that
    declares them; ``neighbors`` has shape ``(count, d + 3)``, or ``(count, d + 5)`` with phases)."""

    message: Message
    patch: np.ndarray | None = None
    neighbors: np.ndarray | None = None


def _buffers(message) -> dict[str, int]:
    """The buffers a header (a model or its twin) declares: name -> frame index (0 for frame 1)."""
    if message.kind != "state":
        return {}
    out = {}
    if message.patch is not None:
        out["patch"] = message.patch.buffer
    if message.neighbors is not None:
        out["neighbors"] = message.neighbors.buffer
    return out


def encode(
    message: _Envelope | wiretwins.Struct,
    patch: np.ndarray | None = None,
    neighbors: np.ndarray | None = None,
) -> list[bytes]:
    """Encode a message (a model, or its :mod:`~swarmcover.wiretwins` struct, checked as the
    model would be) as frames: the header, then the buffers it declares (a state's ``patch`` and
    ``neighbors``), each at the index its header gives."""
    if isinstance(message, wiretwins.Struct):
        header = wiretwins.header(message)
    else:
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
    d = len(message.position) if message.kind == "state" else 0
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
    if type(raw.get("v")) is not int or raw["v"] != VERSION:  # true and 1.0 equal 1 in Python
        return ProtocolError(f"unsupported protocol version {raw.get('v')!r} (this side speaks {VERSION})")
    return ProtocolError(f"invalid {raw.get('kind', 'message')!s:.40}: {describe_validation_error(exc)}")


def decode(frames: list[bytes]) -> Decoded:
    """Validate and decode frames; raise :class:`ProtocolError` naming the problem."""
    _check_frames(frames)
    header = frames[0]
    try:  # one strict parse; only a message that fails it is parsed again, to say why
        msg = _ADAPTER.validate_json(header)
    except ValidationError as exc:
        raise _why_invalid(header, exc) from None
    return _with_buffers(msg, frames)


def decode_twin(frames: list[bytes], twin: type) -> Decoded | None:
    """A message of one kind, decoded as :func:`decode` would, into ``twin``, its model's
    :mod:`~swarmcover.wiretwins` struct (the same fields, cheaper: what every tick receives, an
    agent's state, the simulator's commands); None where the frames hold anything else, valid or
    not (:func:`decode` then decodes them or says why). Buffers that do not match the header raise
    :class:`ProtocolError`, as in :func:`decode`."""
    if not frames or len(frames) > 3 or len(frames[0]) > MAX_HEADER_BYTES:
        return None
    msg = wiretwins.read(frames[0], twin)
    return None if msg is None else _with_buffers(msg, frames)


def _check_frames(frames: list[bytes]) -> None:
    if not frames or len(frames) > 3:
        raise ProtocolError(f"expected 1 to 3 frames, got {len(frames)}")
    if len(frames[0]) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(frames[0])} bytes exceeds {MAX_HEADER_BYTES}")


def _with_buffers(msg, frames: list[bytes]) -> Decoded:
    """``msg`` (a model or its twin) with the buffers its header declares, checked."""
    declared = _buffers(msg)
    if len(frames) != 1 + len(declared):
        what = f"a {msg.kind} declaring {len(declared)} buffer(s)"
        raise ProtocolError(f"{what} needs {1 + len(declared)} frame(s), got {len(frames)}")
    if sorted(declared.values()) != list(range(len(declared))):
        raise ProtocolError(f"buffer indices {sorted(declared.values())} must be 0..{len(declared) - 1}")
    if msg.kind != "state":
        return Decoded(msg)
    patch = neighbors = None
    if msg.patch is not None:
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
    if msg.neighbors is not None:
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
