"""Malformed states, one per rule of ``docs/protocol.md`` ("Framing"): each must be refused whole.

Every one carries a fresh, valid envelope (a larger ``seq`` than any before), so an agent that
refuses it refuses it for what is wrong with it, not for its order.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from swarmcover.protocol import MAX_HEADER_BYTES, Patch, State, encode

from .body import Body

__all__ = ["malformed_states"]


def malformed_states(body: Body, x: list[float]) -> dict[str, Callable[[int], list[bytes]]]:
    """``name -> make(tick)``: the frames of a malformed state for ``tick`` at ``x``."""
    origin, coef = body.law.field.patch(np.asarray(x), 0.75 * body.law.radius)
    patch = Patch(eps=body.law.eps, origin=origin.tolist(), spacing=body.law.field.spacing.tolist(),
                  shape=list(coef.shape[:-1]))  # fmt: skip

    def valid(tick: int, with_patch: bool = True) -> tuple[dict, list[bytes]]:
        st = State(**body.envelope(), position=list(x), world_time=tick * 0.1, dt=0.1, tick=tick,
                   patch=patch if with_patch else None)  # fmt: skip
        frames = encode(st, coef if with_patch else None)
        return json.loads(frames[0]), frames[1:]

    def header(mutate: Callable[[dict], None], with_patch: bool = False) -> Callable[[int], list[bytes]]:
        def make(tick: int) -> list[bytes]:
            h, bufs = valid(tick, with_patch)
            mutate(h)
            return [json.dumps(h).encode(), *bufs]

        return make

    def frames(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[int], list[bytes]]:
        def make(tick: int) -> list[bytes]:
            h, bufs = valid(tick)
            return change([json.dumps(h).encode(), *bufs])

        return make

    def nan_coefficient(fr: list[bytes]) -> list[bytes]:
        c = np.frombuffer(fr[1], dtype="<f8").copy()
        c[len(c) // 2] = np.nan
        return [fr[0], c.tobytes()]

    def oversized(tick: int) -> list[bytes]:
        h, _ = valid(tick, with_patch=False)
        text = json.dumps(h)
        return [(text[:-1] + " " * (MAX_HEADER_BYTES + 10) + "}").encode()]

    return {
        "not JSON": lambda tick: [b"\xff{not json"],
        "not an object": lambda tick: [b"[1, 2, 3]"],
        "unknown field": header(lambda h: h.update(colour="red")),
        "tick as a string": header(lambda h: h.update(tick=str(h["tick"]))),
        "tick as a float": header(lambda h: h.update(tick=float(h["tick"]))),
        "NaN position": header(lambda h: h.update(position=[float("nan"), h["position"][1]])),
        "version 2": header(lambda h: h.update(v=2)),
        "version true": header(lambda h: h.update(v=True)),
        "version 1.0": header(lambda h: h.update(v=1.0)),
        "unknown kind": header(lambda h: h.update(kind="teleport")),
        "missing field": header(lambda h: h.pop("world_time")),
        "position of 4 axes": header(lambda h: h.update(position=[*h["position"], 0.0, 0.0])),
        "reply unknown": header(lambda h: h.update(reply="dance")),
        "patch frame missing": frames(lambda fr: fr[:1]),
        "frame not declared": frames(lambda fr: [*fr, b"\x00" * 8]),
        "patch of wrong length": frames(lambda fr: [fr[0], fr[1][:-8]]),
        "NaN in the patch": frames(nan_coefficient),
        "header over the limit": oversized,
    }
