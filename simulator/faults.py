"""Faults: what is wrong with which robot, injected or detected, and who a failure event picks.

A robot is *failed* when a failure was injected (scheduled ``failures``, ``random_failures``, the
live view) or detected (its controller silent past ``failure_timeout_wall``; nobody tells the
other agents). :class:`Faults` keeps both masks and writes their union to the world. The same
:func:`select` picks the robots of a failure event here and in the launcher (whose failures are
signals to agent processes), so ``ids``, ``fraction`` and ``region`` mean one thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .config import FailureEvent, RandomFailure
from .radio import Radio
from .world import World

__all__ = ["FailureSchedule", "Faults", "select"]

INJECTED_KINDS = ("fail", "radio_fail", "body_fail", "revive")


def select(ev, candidates: Sequence[int], ids: np.ndarray, positions: np.ndarray, rng) -> list[int]:
    """The robots a failure event ``ev`` (``ids``, ``fraction`` or ``region``) picks among ``candidates``.

    Parameters
    ----------
    ev : object with ``ids``, ``fraction`` and ``region`` (exactly one given)
    candidates : sequence of int
        The robots it may pick (for example those whose process still runs).
    ids : ndarray, shape (n,)
        The roster, in the order of ``positions``.
    positions : ndarray, shape (n, d)
        Where each robot of the roster is now (for ``region``).
    rng : numpy.random.Generator
        Draws the random ``fraction`` (``round(fraction * len(candidates))`` of them).

    Returns
    -------
    list of int
        The picked ids (sorted for ``fraction``; in the given order otherwise).
    """
    allowed = {int(a) for a in candidates}
    if ev.ids is not None:
        return [int(a) for a in ev.ids if int(a) in allowed]
    if ev.fraction is not None:
        pool = np.array(sorted(allowed), dtype=np.int64)
        k = round(ev.fraction * len(pool))
        return sorted(int(a) for a in rng.choice(pool, size=k, replace=False)) if k else []
    inside = ev.region.zone().contains(np.asarray(positions))
    return [int(a) for a, hit in zip(ids, inside, strict=True) if hit and int(a) in allowed]


class FailureSchedule:
    """Failure events in world-time order; :meth:`due` hands out those whose time has come, once."""

    def __init__(self, events: Sequence) -> None:
        self._events = sorted(events, key=lambda e: e.t)
        self._next = 0

    def due(self, t: float) -> list:
        out = []
        while self._next < len(self._events) and self._events[self._next].t <= t:
            out.append(self._events[self._next])
            self._next += 1
        return out


class Faults:
    """Injected and detected failures of the world's robots.

    ``on_event(kind, agent_id, **details)`` records each change (``injected_KIND``,
    ``detected_failure``). The seeded ``rng`` draws random fractions and random dropouts only, so
    nothing else (a live view's key, a renderer) changes which robots a seeded run loses.
    """

    def __init__(
        self,
        world: World,
        radio: Radio,
        events: Sequence[FailureEvent],
        random_dropouts: RandomFailure,
        rng: np.random.Generator,
        on_event: Callable[..., None],
    ) -> None:
        self.world, self.radio, self.rng, self.on_event = world, radio, rng, on_event
        self.schedule = FailureSchedule(events)
        self.random_dropouts = random_dropouts
        n = len(world.ids)
        self.injected = np.zeros(n, dtype=bool)
        self.detected = np.zeros(n, dtype=bool)

    def sync(self) -> None:
        """Write the union of injected and detected failures to the world."""
        self.world.failed = self.injected | self.detected

    def clear_detected(self, k: int) -> None:
        """Robot ``k``'s controller spoke again (a hello): it is not silent any more."""
        self.detected[k] = False
        self.sync()

    def inject(self, kind: str, ids: Sequence[int]) -> list[int]:
        """Inject ``kind`` (``fail``, ``radio_fail``, ``body_fail``, ``revive``) for robots ``ids``;
        returns the indices of the robots it changed (ids not on the roster are ignored)."""
        if kind not in INJECTED_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}; one of {', '.join(INJECTED_KINDS)}")
        w, changed = self.world, []
        for a in ids:
            k = w.index.get(int(a))
            if k is None or (kind == "fail" and self.injected[k]):
                continue
            if kind == "fail":
                self.injected[k] = True
                self.radio.forget(int(a))
            elif kind == "radio_fail":
                w.radio_failed[k] = True
            elif kind == "body_fail":
                w.body_failed[k] = True
            else:
                self.injected[k] = self.detected[k] = False
                w.radio_failed[k] = w.body_failed[k] = False
            changed.append(k)
            self.on_event(f"injected_{kind}", int(a))
        self.sync()
        return changed

    def due(self, t: float, tick: float, inject: Callable[[str, list[int]], object]) -> None:
        """Carry out the scheduled events due at world time ``t`` and this tick's random dropouts
        (probability ``1 - exp(-rate tick)`` per live robot), through ``inject``."""
        w = self.world
        for ev in self.schedule.due(t):
            if ev.fraction is None:
                pool = w.ids
            else:  # a fraction of those it can act on
                pool = w.ids[w.failed] if ev.kind == "revive" else w.ids[~w.failed]
            inject(ev.kind, select(ev, pool, w.ids, w.x, self.rng))
        rd = self.random_dropouts
        if rd.rate > 0:
            p = 1.0 - math.exp(-rd.rate * tick)
            cand = w.ids[w.live_mask()]
            hit = cand[self.rng.random(len(cand)) < p]
            if len(hit):
                inject(rd.kind, [int(a) for a in hit])

    def detect(self, wall: float, last_command_wall: np.ndarray, timeout: float, answered=None) -> None:
        """Mark failed every connected robot whose controller sent no command for ``timeout`` wall
        seconds (in lockstep, ``answered`` this tick is not silent, however long others took)."""
        w = self.world
        silent = w.connected & ~w.failed & (wall - last_command_wall > timeout)
        if answered is not None:
            silent &= ~answered
        if not silent.any():
            return
        listening = w.live_mask() & ~silent  # who could still hear it: the survivors
        for k in np.flatnonzero(silent):
            a = int(w.ids[k])
            self.detected[k] = True
            last = {r: t for r, t in self.radio.last_heard(a).items() if listening[w.index[r]]}
            self.on_event(
                "detected_failure",
                a,
                silent_for_wall=round(wall - last_command_wall[k], 3),
                last_heard_by={str(r): round(t, 4) for r, t in sorted(last.items())},
            )
            self.radio.forget(a)
        self.sync()
