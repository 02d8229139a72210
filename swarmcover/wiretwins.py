r"""Twins of the per-tick wire messages in msgspec: a state decoded, a command or beacon encoded.

Every tick an agent decodes one state and encodes one command, and the simulator does both for
every agent. With a hundred processes on a core, each tick starts with cold caches, and pydantic's
JSON validation and serialisation (the models of :mod:`swarmcover.messages`) cost 90 to 190 µs
then (``benchmarks/tick_cost.py``); msgspec does the same strict checks touching much less memory
(about 40 to 60 µs cold).

The models in :mod:`swarmcover.messages` stay the protocol's definition. Each struct here is made
from one of them by :func:`twin`: the same fields in the same order, the same defaults and the
same constraints (``ge``, ``gt``, ``le``, ``lt``, ``min_length``, ``max_length``, literals,
nested models, no unknown fields), except that ``kind`` is required, as the discriminated union
of :data:`~swarmcover.messages.Message` requires it. Encoded, a twin gives the bytes its model's
``model_dump_json`` gives (a test checks both ways on generated messages). A twin does not check
its values when built, so :func:`header` checks what it encoded by decoding it again, which costs
far less than building the model did.

Decoding is strict: where a twin refuses a header, :func:`swarmcover.protocol.decode` parses it
with the models, which say why (or find another kind of message).
"""

from __future__ import annotations

import json
import types
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from . import messages
from .configfile import describe_validation_error
from .messages import MAX_HEADER_BYTES, ProtocolError

__all__ = [
    "Beacon",
    "BeaconPart",
    "Command",
    "Neighbors",
    "Patch",
    "PhaseInfo",
    "ScheduleReport",
    "State",
    "Struct",
    "header",
    "read",
    "twin",
]

Struct = msgspec.Struct  # every twin's base

_I64_MAX = (1 << 63) - 1
_MODELS: dict[type, type[BaseModel]] = {}  # each twin's model
# annotated-types' constraint classes (pydantic's metadata), by name: the attribute each holds
_BOUNDS = {"Ge": "ge", "Gt": "gt", "Le": "le", "Lt": "lt", "MinLen": "min_length", "MaxLen": "max_length"}


def _constraints(base: Any, metadata: list) -> dict[str, Any]:
    """msgspec ``Meta`` keywords for a field's annotated-types ``metadata``."""
    out: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, FieldInfo):  # Field(...) inside Annotated: its own metadata
            out.update(_constraints(base, m.metadata))
            continue
        key = _BOUNDS.get(type(m).__name__)
        if key is None:
            raise TypeError(f"no msgspec twin for the constraint {m!r}")
        value = getattr(m, key)
        if base is int and key == "lt" and value - 1 <= _I64_MAX < value:
            key, value = "le", value - 1  # msgspec's integer bounds must fit int64: the same set
        out[key] = value
    return out


def _type(tp: Any, metadata: list | None = None) -> Any:
    """The msgspec type for a pydantic field type ``tp`` with constraints ``metadata``."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *extra = get_args(tp)
        return _type(base, [*(metadata or []), *extra])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        out = twin(tp)
    elif origin in (Union, types.UnionType):
        out = Union[tuple(_type(a) for a in get_args(tp))]  # noqa: UP007 (built from a tuple)
    elif origin is list:
        out = list[_type(get_args(tp)[0])]
    elif origin is Literal or tp in (int, float, str, bool, type(None)):
        out = tp
    else:
        raise TypeError(f"no msgspec twin for the type {tp!r}")
    kw = _constraints(tp, metadata or [])
    return Annotated[out, msgspec.Meta(**kw)] if kw else out


@cache
def twin(model: type[BaseModel]) -> type[msgspec.Struct]:
    """The msgspec struct of pydantic ``model``: its fields in order, with their defaults and
    constraints, no unknown fields, frozen; ``kind`` is required."""
    fields: list[tuple] = []
    for name, f in model.model_fields.items():
        tp = _type(f.annotation, list(f.metadata))
        fields.append((name, tp) if f.is_required() or name == "kind" else (name, tp, f.default))
    out = msgspec.defstruct(
        model.__name__, fields, kw_only=True, frozen=True, forbid_unknown_fields=True, module=__name__
    )
    _MODELS[out] = model
    return out


State = twin(messages.State)
Patch = twin(messages.Patch)
Neighbors = twin(messages.Neighbors)
Command = twin(messages.Command)
Beacon = twin(messages.Beacon)
BeaconPart = twin(messages.BeaconPart)
PhaseInfo = twin(messages.PhaseInfo)
ScheduleReport = twin(messages.ScheduleReport)

_ENCODER = msgspec.json.Encoder()


@cache
def _decoder(kind: type[msgspec.Struct]) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(kind)


def read(header: bytes, kind: type[msgspec.Struct]) -> Any:
    """Header ``header`` as twin ``kind`` (:data:`State`, :data:`Command`), or None where the twin
    refuses it (another kind, or not valid: :func:`swarmcover.protocol.decode` then says which)."""
    try:
        return _decoder(kind).decode(header)
    except msgspec.DecodeError:  # ValidationError included
        return None


def header(msg: msgspec.Struct) -> bytes:
    """``msg`` (a twin) as a header, checked as the receiver will check it; :class:`ProtocolError`
    names what is invalid (a NaN velocity, an age out of range)."""
    out = _ENCODER.encode(msg)
    if len(out) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(out)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        back = _decoder(type(msg)).decode(out)
    except msgspec.DecodeError:
        back = None
    if back != msg:  # refused, or changed: NaN and infinity encode as null, which an optional reads as None
        raise ProtocolError(f"invalid {msg.kind}: {_why(msg)}")
    return out


def _why(msg: msgspec.Struct) -> str:
    """What the model of twin ``msg`` finds wrong with its values (a slow path: only for a refusal)."""
    raw = json.dumps(msgspec.to_builtins(msg))  # NaN and infinity as json writes them, which pydantic names
    try:
        _MODELS[type(msg)].model_validate_json(raw)
    except ValidationError as exc:
        return describe_validation_error(exc)
    return "a value that JSON cannot carry"  # pragma: no cover - the model refuses whatever the twin does
