"""The wire protocol: round trips, strict rejection, and fuzzing of the decoder."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmcover.protocol import (
    MAX_HEADER_BYTES,
    Beacon,
    Bye,
    Command,
    Counters,
    Hello,
    Neighbors,
    Patch,
    ProtocolError,
    State,
    Stats,
    StatsRequest,
    decode,
    encode,
)

pytestmark = pytest.mark.unit

ENV = {"agent_id": 7, "epoch": 123, "seq": 9, "t": 1.7e9}


def _valid():
    patch = Patch(eps=0.1, origin=[0.0, -0.5], spacing=[0.02, 0.03], shape=[6, 5])
    return [
        (Hello(**ENV, name="balloon-7", rate_hz=10.0), None),
        (Bye(**ENV, reason="stopped", counters=Counters(messages_in=3)), None),
        (Beacon(**ENV, position=[1.5, -2.0], mass=0.01), None),
        (
            State(**ENV, position=[0.1, 0.2], world_time=3.0, tick=4, patch=patch),
            np.arange(90.0).reshape(6, 5, 3),
        ),
        (State(**ENV, position=[0.1], world_time=3.0, tick=4), None),
        (Command(**ENV, velocity=[0.0, 1.0], tick=4, eps=0.1), None),
        (StatsRequest(**ENV), None),
        (Stats(**ENV, counters=Counters(), neighbors=4), None),
    ]


@pytest.mark.parametrize(("msg", "patch"), _valid())
def test_round_trip(msg, patch):
    dec = decode(encode(msg, patch))
    assert dec.message == msg
    if patch is None:
        assert dec.patch is None
    else:
        assert np.array_equal(dec.patch, patch)


def _header(**over):
    raw = json.loads(Beacon(**ENV, position=[1.0, 2.0], mass=0.1).model_dump_json())
    raw.update(over)
    return json.dumps(raw).encode()


@pytest.mark.parametrize(
    ("header", "why"),
    [
        (_header(v=2), "version"),
        (_header(v=True), "version True"),  # equal to 1 in Python, not the integer 1 on the wire
        (_header(v=1.0), "version 1.0"),
        (_header(extra=1), "extra"),
        (_header(position=[float("nan"), 1.0]), "finite"),
        (_header(position=[1e300, 1.0]), "less than"),
        (_header(position=[1.0] * 4), "at most 3"),
        (_header(mass="0.1"), "valid number"),
        (_header(agent_id=-1), "greater than"),
        (_header(kind="launch_missiles"), "does not match"),
        (b"[]", "JSON object"),
        (b"\x00\x01", "not JSON"),
        (b"[" * 8000 + b"]" * 8000, "not JSON"),
        (b" " * (MAX_HEADER_BYTES + 1), "exceeds"),
    ],
)
def test_rejections_name_the_problem(header, why):
    with pytest.raises(ProtocolError, match=why):
        decode([header])


def test_patch_buffer_checked():
    msg, patch = _valid()[3]
    frames = encode(msg, patch)
    with pytest.raises(ProtocolError, match="bytes"):
        decode([frames[0], frames[1][:-8]])
    bad = patch.copy()
    bad[0, 0, 0] = math.inf
    with pytest.raises(ProtocolError, match="NaN or infinite"):
        decode([frames[0], bad.tobytes()])
    with pytest.raises(ProtocolError, match="needs 2 frame"):
        decode([frames[0]])
    with pytest.raises(ProtocolError, match="needs 1 frame"):
        decode([encode(Beacon(**ENV, position=[1.0], mass=0.1))[0], b"x"])


def _rows(k, rng):
    """Relayed beacons: [id, t, x, y, mass]."""
    return np.column_stack(
        [np.arange(k) + 100.0, 1.7e9 + rng.random(k), rng.random((k, 2)), np.full(k, 0.01)]
    )


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_state_relays_neighbours_beside_its_patch(order, rng):
    """A state carries the beacons its radio delivered as a second buffer, at either index."""
    msg, patch = _valid()[3]
    rows = _rows(5, rng)
    p = msg.patch.model_copy(update={"buffer": order[0]})
    st_ = msg.model_copy(update={"patch": p, "neighbors": Neighbors(count=5, buffer=order[1])})
    frames = encode(st_, patch, rows)
    assert len(frames) == 3 and len(frames[1 + order[1]]) == rows.nbytes
    dec = decode(frames)
    assert dec.message == st_ and np.array_equal(dec.patch, patch) and np.array_equal(dec.neighbors, rows)
    # without a patch: neighbours alone, buffer 0
    alone = State(**ENV, position=[0.1, 0.2], world_time=3.0, tick=4, neighbors=Neighbors(count=5, buffer=0))
    assert np.array_equal(decode(encode(alone, neighbors=rows)).neighbors, rows)


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        (0, 3.5, "integers"),
        (0, -1.0, "integers"),
        (0, 2.0**31, "integers"),
        (1, -5.0, "beacon times"),
        (2, 1e13, "positions"),
        (4, 0.0, "masses"),
        (4, 1.5, "masses"),
        (3, math.nan, "NaN"),
    ],
)
def test_relayed_rows_checked(column, value, why, rng):
    rows = _rows(4, rng)
    msg = State(**ENV, position=[0.1, 0.2], world_time=3.0, tick=4, neighbors=Neighbors(count=4, buffer=0))
    header = encode(msg, neighbors=rows)[0]
    rows[2, column] = value
    with pytest.raises(ProtocolError, match=why):
        decode([header, rows.tobytes()])


def test_relayed_buffer_size_and_indices_checked(rng):
    rows = _rows(4, rng)
    msg = State(**ENV, position=[0.1, 0.2], world_time=3.0, tick=4, neighbors=Neighbors(count=4, buffer=0))
    header = encode(msg, neighbors=rows)[0]
    with pytest.raises(ProtocolError, match="rows of 5"):
        decode([header, rows[:3].tobytes()])
    clash = json.loads(encode(*_valid()[3])[0])
    clash["neighbors"] = {"count": 4, "buffer": 0, "dtype": "<f8"}  # the patch's index too
    with pytest.raises(ProtocolError, match="indices"):
        decode([json.dumps(clash).encode(), b"", rows.tobytes()])
    with pytest.raises(ProtocolError, match="declares"):
        encode(msg)  # declared but not given


@given(st.lists(st.binary(max_size=2048), min_size=0, max_size=3))
def test_random_bytes_only_raise_protocol_error(frames):
    try:
        decode(frames)
    except ProtocolError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=6),
    max_leaves=30,
)


@given(_json, st.sampled_from(["hello", "bye", "beacon", "state", "command", "stats_request", "stats"]))
def test_random_json_only_raises_protocol_error(body, kind):
    raw = {"v": 1, "kind": kind, **ENV, "extra": body} if isinstance(body, dict) else body
    for candidate in (raw, {**ENV, "v": 1, "kind": kind, "position": body, "mass": body}):
        try:
            decode([json.dumps(candidate).encode()])
        except ProtocolError:
            pass


@pytest.mark.parametrize("phased", [False, True], ids=["plain", "with-phases"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_c_row_check_agrees_with_the_numpy_checks(d, phased, rng, c_kernel):
    """The optional C check of relayed rows accepts exactly what the numpy checks accept: valid
    rows, and rows with one cell set to a value on or past a limit (or NaN, infinite, fractional);
    with the two phase columns too (epoch -1 or an integer id-like value, age in [0, 1e11])."""
    if not c_kernel:
        pytest.skip("the C hot path was not built")
    from swarmcover._hotpath import rows_ok
    from swarmcover.protocol import _rows_pass

    edges = {
        0: [0.0, 2.0**31 - 1, 2.0**31, -1.0, 3.5, -0.0],
        1: [0.0, 1e11, 1e11 * (1 + 1e-15), -1e-300],
        2 + d: [1.0, 1.0 + 1e-16, 1.0000001, 0.0, 5e-324, -1.0],
        2: [1e12, -1e12, 1e12 * (1 + 1e-15), -1.01e12],
        3 + d: [-1.0, -2.0, 0.0, 2.0**31 - 1, 2.0**31, 0.5, -0.5],
        4 + d: [0.0, 1e11, 1e11 * (1 + 1e-15), -1e-300],
    }
    bad = [math.nan, math.inf, -math.inf]
    agree = rejected = 0
    cols = [0, 1, 2, 2 + d, *range(3, 2 + d)] + ([3 + d, 4 + d] if phased else [])
    for _ in range(400):
        k = int(rng.integers(1, 12))
        rows = np.c_[rng.integers(0, 1000, k), rng.uniform(0, 2e9, k), rng.uniform(-50, 50, (k, d)),
                     rng.uniform(1e-3, 1.0, k)]  # fmt: skip
        if phased:
            rows = np.c_[rows, rng.integers(-1, 5, k), rng.uniform(0, 1e3, k)]
        if rng.random() < 0.8:
            col = int(rng.choice(cols))
            values = edges.get(col, edges[2]) + bad
            rows[int(rng.integers(k)), col] = values[int(rng.integers(len(values)))]
        want = _rows_pass(rows, d)
        assert rows_ok(rows, d) is want, rows
        agree += 1
        rejected += not want
    assert agree == 400 and 100 < rejected < 350  # both kinds were tried
    with pytest.raises(ValueError, match="rows must have"):
        rows_ok(np.zeros((2, d + 4)), d)


def test_c_nearest_and_farthest_distances_equal_numpy(rng, c_kernel):
    if not c_kernel:
        pytest.skip("the C hot path was not built")
    from swarmcover._hotpath import farthest2, nearest2

    for d in (1, 2, 3):
        for k in (0, 1, 7, 100):
            x, p = rng.normal(size=d), rng.normal(size=(k, d))
            d2 = np.sum((p - x) ** 2, axis=1)
            assert nearest2(x, p) == pytest.approx(float(d2.min()) if k else math.inf, rel=1e-14)
            assert farthest2(x, p) == pytest.approx(float(d2.max()) if k else -math.inf, rel=1e-14)
    with pytest.raises(ValueError, match="points"):
        farthest2(np.zeros(2), np.zeros((3, 3)))
