"""Property tests for every decoder of outside input: hostile input raises the decoder's one error
type (``ProtocolError`` for messages, ``ValueError`` for files and command lines), never anything
else, and never hangs. ``python scripts/fuzz.py`` runs the same properties with many more examples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from swarmcover.agentspec import AgentConfig
from swarmcover.configfile import parse_config
from swarmcover.launcher.hosts import parse_ids
from swarmcover.launcher.resolve import resolve
from swarmcover.launcher.scenario import Scenario, apply_overrides, load_scenario
from swarmcover.protocol import Beacon, Command, Patch, ProtocolError, State, decode, encode
from swarmcover.simulator.config import SimConfig
from swarmcover.simulator.security import load_allow_list

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
ENV = {"agent_id": 3, "epoch": 7, "seq": 1, "t": 1.5}

_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
_json = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=25,
)


def _valid_messages() -> list[list[bytes]]:
    patch = Patch(eps=0.1, origin=[0.0, 0.0], spacing=[0.1, 0.1], shape=[4, 4])
    coef = np.zeros((4, 4, 3))
    return [
        encode(Beacon(**ENV, position=[0.5, 0.5], mass=0.1)),
        encode(Command(**ENV, velocity=[0.1, -0.2], tick=4, eps=0.1)),
        encode(State(**ENV, position=[0.5, 0.5], world_time=1.0, tick=4, patch=patch), coef),
    ]


VALID = _valid_messages()


@given(st.sampled_from(range(len(VALID))), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                                   min_size=1, max_size=8), st.booleans())  # fmt: skip
def test_mutated_messages_decode_or_raise_protocol_error(which, flips, truncate):
    """Valid messages with bytes changed (or cut short): decoded, or a ProtocolError."""
    frames = [bytearray(f) for f in VALID[which]]
    for pos, value in flips:
        f = frames[pos % len(frames)]
        if f:
            f[pos % len(f)] = value
    if truncate:
        frames[-1] = frames[-1][: len(frames[-1]) // 2]
    try:
        decode([bytes(f) for f in frames])
    except ProtocolError:
        pass


_KINDS = ["hello", "beacon", "state", "command", "bye", "stats", "stats_request", "x"]
_FIELDS = ["agent_id", "epoch", "seq", "t", "position", "mass", "velocity", "tick", "eps", "v", "kind"]
# what one JSON text can hold that a decoder might not expect: integers past Python's 4300-digit
# conversion limit, nesting past the recursion limit, numbers past a double, odd literals
_ODD = st.sampled_from([
    "1" * 5000, "-" + "9" * 4301, "1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1e308",
    "[" * 2000 + "]" * 2000, '{"a":' * 900 + "1" + "}" * 900, '"\\ud800"', "null", "true", "[]", "{}",
    "0.0000000000000000000000000000001", "9223372036854775808", '"' + "x" * 3000 + '"',
])  # fmt: skip


@given(st.sampled_from(_KINDS), st.sampled_from(_FIELDS), _ODD, st.booleans())
def test_hostile_json_headers_raise_protocol_error(kind, field, odd, bare):
    """Issue 22: a header with a huge integer (more than 4300 digits), deep nesting or another
    JSON oddity in any field is refused with a ProtocolError, never another exception (one
    5 KB hello with a long agent id used to end a run: the second parse raised ValueError)."""
    body = f'{{"v":1,"kind":"{kind}","agent_id":1,"epoch":0,"seq":1,"t":0.0,"{field}":{odd}}}'
    header = odd.encode() if bare else body.encode()
    try:
        decode([header])
    except ProtocolError:
        pass


@given(st.sampled_from([Scenario, AgentConfig, SimConfig]), _json, st.sampled_from(["json", "toml"]))
def test_config_models_reject_junk_with_value_error(model, body, fmt):
    text = json.dumps(body) if fmt == "json" else "".join(f"{k} = {json.dumps(v)}\n" for k, v in (
        body.items() if isinstance(body, dict) else [("x", body)]))  # fmt: skip
    try:
        parse_config(model, text, fmt, "fuzz")
    except ValueError:
        pass


@given(st.text(max_size=400))
def test_scenario_files_of_random_text_raise_value_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("fuzz") / "s.toml"
    p.write_text(text, encoding="utf-8")
    try:
        resolve(load_scenario(p), p)
    except ValueError:
        pass


@given(st.dictionaries(st.sampled_from(["fleet", "target", "law", "control", "radio", "failures", "wind"]),
                       _json, max_size=4))  # fmt: skip
def test_scenarios_with_random_sections_raise_value_error(tmp_path_factory, sections):
    """A valid scenario with random values in its sections: it resolves, or a ValueError."""
    raw = {"domain": {"bounds": [[0.0, 1.0], [0.0, 1.0]]}, "fleet": {"size": 3}, **sections}
    p = tmp_path_factory.mktemp("fuzz") / "s.toml"
    p.write_text("", encoding="utf-8")
    try:
        resolve(Scenario.model_validate(raw), p)
    except ValueError:  # pydantic's ValidationError is a ValueError
        pass


@given(st.lists(st.text(max_size=30), max_size=4))
def test_overrides_of_random_text_raise_value_error(items):
    try:
        apply_overrides({"fleet": {"size": 3}, "failures": [{"t": 1}]}, items)
    except ValueError:
        pass


@given(st.text(max_size=40))
def test_id_lists_of_random_text_raise_value_error(text):
    try:
        ids = parse_ids(text, None)
        assert len(ids) <= 100_000
    except ValueError:
        pass


@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_key_files_of_random_bytes_raise_value_error(tmp_path_factory, data):
    d = tmp_path_factory.mktemp("keys")
    (d / "agent_0001.key").write_bytes(data)
    try:
        load_allow_list(d)
    except ValueError:
        pass
