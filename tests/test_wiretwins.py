"""The msgspec twins of the per-tick messages (swarmcover/wiretwins.py) against the pydantic models
that define the protocol: what a twin accepts the model accepts, with the same values; a twin
encodes the model's bytes; an invalid command is refused with its problem named."""

import json
import math

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from swarmcover import wiretwins as twins
from swarmcover.protocol import (
    _ADAPTER,
    MAX_HEADER_BYTES,
    Beacon,
    BeaconPart,
    Command,
    Neighbors,
    Patch,
    PhaseInfo,
    ProtocolError,
    ScheduleReport,
    State,
    decode,
    decode_twin,
    encode,
)

pytestmark = pytest.mark.unit

ENV = {"agent_id": 7, "epoch": 123, "seq": 9, "t": 1.7e9}

_finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)
_vec = st.lists(_finite, min_size=1, max_size=3)


def _state_dict(draw) -> dict:
    d = draw(st.integers(1, 3))
    raw = {**ENV, "v": 1, "kind": "state", "position": draw(st.lists(_finite, min_size=d, max_size=d)),
           "world_time": draw(st.floats(0, 1e6)), "tick": draw(st.integers(0, 1 << 40))}  # fmt: skip
    if draw(st.booleans()):
        raw["dt"] = draw(st.floats(1e-3, 10.0))
    if draw(st.booleans()):
        raw["reply"] = draw(st.sampled_from(["command", "beacon"]))
    if draw(st.booleans()):
        raw["patch"] = {"eps": draw(st.floats(1e-3, 10.0)), "origin": [0.0] * d, "spacing": [0.1] * d,
                        "shape": [draw(st.integers(4, 12))] * d, "buffer": 0}  # fmt: skip
    if draw(st.booleans()):
        raw["neighbors"] = {"count": draw(st.integers(0, 50)), "buffer": 1 if "patch" in raw else 0,
                            "phase": draw(st.booleans())}  # fmt: skip
    return raw


@st.composite
def _states(draw):
    return _state_dict(draw)


# what a hostile or broken sender might put in a field instead
_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.sampled_from([0, -1, 1 << 31, (1 << 63) - 1, 1 << 63, 1e11, 1e12, 1.0000001e12, 1e400, -0.0, 1.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.floats(-10, 10), max_size=4),
    st.lists(st.integers(-5, 300), max_size=4),
    st.dictionaries(st.sampled_from(["eps", "count", "x", "buffer", "phase"]), st.integers(0, 9), max_size=3),
)


def _model_view(header: bytes) -> dict | None:
    try:
        return _ADAPTER.validate_json(header).model_dump()
    except ValidationError:
        return None


def _twin_view(header: bytes) -> dict | None:
    msg = twins.read(header, twins.State)
    return None if msg is None else msgspec.to_builtins(msg)


@settings(max_examples=300)
@given(_states())
def test_the_state_twin_reads_every_valid_state_as_the_model_does(raw):
    header = json.dumps(raw).encode()
    assert _model_view(header) is not None
    assert _twin_view(header) == _model_view(header)


@settings(max_examples=1500)
@given(_states(), st.data())
def test_what_the_state_twin_accepts_the_model_accepts_with_the_same_values(raw, data):
    """One field replaced by junk, removed, or an unknown one added (at the top or in a nested
    object): wherever the twin accepts, the model accepts and reads the same values; the twin
    refusing more than the model costs only the model's slower parse, never a wrong message."""
    target = raw
    nested = [k for k in ("patch", "neighbors") if k in raw]
    if nested and data.draw(st.booleans()):
        target = raw[data.draw(st.sampled_from(nested))]
    how = data.draw(st.sampled_from(["replace", "remove", "add"]))
    key = data.draw(st.sampled_from(sorted(target)))
    if how == "replace":
        target[key] = data.draw(_junk)
    elif how == "remove":
        del target[key]
    else:
        target[data.draw(st.sampled_from(["extra", "Kind", "tick ", key + "_"]))] = 1
    header = json.dumps(raw).encode()
    twin = _twin_view(header)
    if twin is not None:
        assert twin == _model_view(header)


def test_the_twin_refuses_what_the_model_refuses():
    """Not vacuous: these headers, each wrong in one way, are refused by both."""
    good = {**ENV, "v": 1, "kind": "state", "position": [1.0, 2.0], "world_time": 1.0, "tick": 3}
    for over in [{"agent_id": 1 << 31}, {"epoch": 1 << 63}, {"tick": 1.0}, {"tick": True}, {"t": 1e400},
                 {"position": []}, {"position": [1, 2, 3, 4]}, {"position": [1e13]}, {"world_time": -1.0},
                 {"dt": 0.0}, {"reply": "bye"}, {"extra": 1}, {"kind": "beacon"}, {"patch": {"eps": 1}},
                 {"neighbors": {"count": -1}}, {"neighbors": {"count": 1, "dtype": ">f8"}}]:  # fmt: skip
        header = json.dumps({**good, **over}).encode()
        assert _model_view(header) is None, over
        assert _twin_view(header) is None, over
    no_kind = json.dumps({k: v for k, v in good.items() if k != "kind"}).encode()
    assert _model_view(no_kind) is None and _twin_view(no_kind) is None


def test_decode_state_gives_the_buffers_decode_gives(rng):
    patch = Patch(eps=0.1, origin=[0.0, -0.5], spacing=[0.02, 0.03], shape=[6, 5])
    rows = np.column_stack([np.arange(4) + 1.0, np.full(4, 1.7e9), rng.random((4, 2)), np.full(4, 0.25)])
    msg = State(**ENV, position=[0.1, 0.2], world_time=3.0, tick=4, patch=patch, neighbors=Neighbors(count=4))
    frames = encode(msg, rng.random((6, 5, 3)), rows)
    fast, full = decode_twin(frames, twins.State), decode(frames)
    assert msgspec.to_builtins(fast.message) == full.message.model_dump()
    assert np.array_equal(fast.patch, full.patch) and np.array_equal(fast.neighbors, full.neighbors)
    bad = rows.copy()
    bad[2, 4] = 2.0  # a mass above 1: refused by both, named
    for decoder in (lambda f: decode_twin(f, twins.State), decode):
        with pytest.raises(ProtocolError, match="masses"):
            decoder([frames[0], frames[1], bad.tobytes()])
        with pytest.raises(ProtocolError, match="needs 3 frame"):
            decoder(frames[:2])
    beacon = encode(Beacon(**ENV, position=[1.0], mass=0.5))
    assert decode_twin(beacon, twins.State) is None and decode(beacon).message.kind == "beacon"
    for frames in ([b"{"], [], [b"{}"] * 4, [b" " * (MAX_HEADER_BYTES + 1)]):
        assert decode_twin(frames, twins.State) is None


_floats = st.one_of(_finite, st.sampled_from([math.nan, math.inf, -math.inf, 1e13, -1e13, 0.0]))


@settings(max_examples=400)
@given(
    velocity=st.lists(_floats, min_size=0, max_size=4),
    age=st.one_of(st.floats(0, 1e3), st.sampled_from([-1.0, math.nan, 1e12])),
    stage=st.integers(-1, 1030),
    eps=st.one_of(st.floats(1e-3, 10), st.sampled_from([0.0, -1.0, math.inf])),
    smoothing=st.one_of(st.none(), st.floats(0, 1), st.just(math.nan)),
    with_beacon=st.booleans(),
    with_report=st.booleans(),
)
def test_a_command_twin_encodes_the_model_bytes_or_is_refused_as_the_model_is(
    velocity, age, stage, eps, smoothing, with_beacon, with_report
):
    """An agent's command, as its outbox builds it: the twin's header is the model's
    ``model_dump_json`` byte for byte, and where the model refuses the values (a NaN velocity, a
    negative age, a stage past 1023) :func:`twins.header` raises ProtocolError naming it."""
    parts = {"velocity": velocity, "tick": 4, "eps": eps, "smoothing": smoothing}
    twin_parts = dict(parts)
    try:
        phase = PhaseInfo(epoch=2, age=age) if with_beacon else None
        beacon = BeaconPart(position=[1.0, 2.0], mass=0.01, phase=phase) if with_beacon else None
        report = ScheduleReport(epoch=2, age=age, stage=stage, cause="losses") if with_report else None
        want = Command(**ENV, **parts, beacon=beacon, schedule=report).model_dump_json().encode()
    except ValidationError:
        want = None
    tphase = twins.PhaseInfo(epoch=2, age=age)
    twin_parts["beacon"] = (
        twins.BeaconPart(position=[1.0, 2.0], mass=0.01, phase=tphase) if with_beacon else None
    )
    twin_parts["schedule"] = (
        twins.ScheduleReport(epoch=2, age=age, stage=stage, cause="losses") if with_report else None
    )
    msg = twins.Command(**ENV, kind="command", **twin_parts)
    if want is None:
        with pytest.raises(ProtocolError, match="invalid command"):
            twins.header(msg)
    else:
        assert twins.header(msg) == want


def test_a_nan_velocity_is_named():
    msg = twins.Command(**ENV, kind="command", velocity=[math.nan, 0.0], tick=1, eps=0.1)
    with pytest.raises(ProtocolError, match=r"invalid command: velocity.0: .*finite"):
        twins.header(msg)


def test_twin_refuses_a_model_it_cannot_mirror():
    """A field type or constraint with no msgspec equivalent is an error, never a looser twin."""

    class Odd(BaseModel):
        table: dict[str, int]

    with pytest.raises(TypeError, match="no msgspec twin"):
        twins.twin(Odd)


def test_a_state_twin_encodes_the_frames_the_model_encodes(rng):
    """The simulator's states, as its outbox builds them: the same frames, buffers included."""
    coef = rng.random((6, 5, 3))
    # relayed rows: id, t, x, y, mass, phase epoch (-1: none given), phase age
    rows = np.column_stack([np.arange(3) + 1.0, np.full(3, 1.7e9), rng.random((3, 2)), np.full(3, 0.25),
                            np.full(3, -1.0), np.zeros(3)])  # fmt: skip
    common = {**ENV, "position": [0.1, 0.2], "world_time": 3.0, "dt": 0.1, "tick": 4}
    geometry = {
        "eps": 0.1,
        "smoothing": 0.02,
        "origin": [0.0, -0.5],
        "spacing": [0.02, 0.03],
        "shape": [6, 5],
    }
    model = State(**common, patch=Patch(**geometry), neighbors=Neighbors(count=3, buffer=1, phase=True))
    twin = twins.State(**common, kind="state", patch=twins.Patch(**geometry),
                       neighbors=twins.Neighbors(count=3, buffer=1, phase=True))  # fmt: skip
    assert encode(twin, coef, rows) == encode(model, coef, rows)
    with pytest.raises(ProtocolError, match="shape"):
        encode(twin, coef[:5], rows)
    bad = twins.State(**{**common, "world_time": -1.0}, kind="state", reply="beacon")
    with pytest.raises(ProtocolError, match="invalid state: world_time"):
        encode(bad)


@pytest.mark.parametrize(
    "header",
    [
        b"[" * 8000 + b"]" * 8000,
        b'{"position":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"agent_id":' + b"9" * 5000 + b"}",
        b"\xff\xfe{}",
        b'{"kind":"state","neighbors":{"count":1e999}}',
    ],
    ids=["deep-array", "deep-field", "huge-int", "not-utf8", "inf-count"],
)
def test_hostile_headers_are_left_to_the_models(header):
    """Deep nesting, huge numbers, bytes that are not UTF-8: the twins return None (the models
    then say why), never another exception."""
    for twin in (twins.State, twins.Command):
        assert decode_twin([header], twin) is None
    with pytest.raises(ProtocolError):
        decode([header])


@given(st.binary(max_size=256))
def test_random_bytes_never_get_past_a_twin(data):
    for twin in (twins.State, twins.Command):
        assert decode_twin([data], twin) is None
