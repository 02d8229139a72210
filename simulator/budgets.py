"""Per-member budgets: what one connection or one agent can make the simulator do is bounded.

- Messages: each connection (ZeroMQ routing id) may deliver :data:`MESSAGES_PER_WINDOW`
  messages per window (one tick of the world, or :data:`WINDOW_WALL` wall seconds, whichever
  ends first); the rest are dropped before they are parsed, and counted. An honest agent sends
  two or three a tick (a hello, a beacon, a command, a stats answer), or at most one per
  ``rate_hz`` period while it waits.
- Drains: at most :data:`DRAIN_MAX` messages are taken before the tick loop gets control back.
- Events: each agent may cause :data:`EVENT_BURST` events at once and one more per world
  second after that (joins, byes, stats, restarts, impersonation); the rest are counted in
  ``events_suppressed`` by kind. So ``events.jsonl`` and ``summary.json`` grow at most by
  ``n * (EVENT_BURST + T)`` member events over a run of ``T`` world seconds.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "DRAIN_MAX",
    "EVENT_BURST",
    "HANDSHAKE_WALL",
    "MESSAGES_PER_WINDOW",
    "WINDOW_WALL",
    "MemberBudgets",
    "ensure_descriptors",
]

MESSAGES_PER_WINDOW = 64
WINDOW_WALL = 0.05
DRAIN_MAX = 4096
EVENT_BURST = 20.0
HANDSHAKE_WALL = 5.0  # seconds a connection may take to finish its ZeroMQ/CURVE handshake
SPARE_DESCRIPTORS = 256  # beyond one per robot: the recording, logs, pictures, a flood's share


def ensure_descriptors(n: int) -> int:
    """Raise this process's soft limit on open files to its hard limit, and refuse
    (``ValueError``) a fleet of ``n`` the hard limit cannot serve (one connection per robot plus
    :data:`SPARE_DESCRIPTORS`). Returns the limit now in force (-1 where unknown)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < n + SPARE_DESCRIPTORS:
        raise ValueError(
            f"a fleet of {n} robots needs at least {n + SPARE_DESCRIPTORS} open files; this process may "
            f"have {soft} (ulimit -n): raise the limit or use fewer robots"
        )
    return int(soft)


class MemberBudgets:
    """Message budgets per connection, event budgets per robot (``n`` of them)."""

    def __init__(self, n: int) -> None:
        self._window: tuple[int, float] = (-1, -np.inf)
        self._used: dict[bytes, int] = {}
        self.event_tokens = np.full(n, EVENT_BURST)
        self.event_token_t = np.zeros(n)
        self.dropped_messages = 0
        self.events_suppressed: dict[str, int] = {}

    def admit_message(self, route: bytes, tick: int, wall: float) -> bool:
        """Whether connection ``route`` may deliver one more message now."""
        t0, w0 = self._window
        if tick != t0 or wall - w0 >= WINDOW_WALL:
            self._window = (tick, wall)
            self._used.clear()  # bounded by the messages of one window
        used = self._used.get(route, 0)
        if used >= MESSAGES_PER_WINDOW:
            self.dropped_messages += 1
            return False
        self._used[route] = used + 1
        return True

    def admit_event(self, k: int, kind: str, world_t: float) -> bool:
        """Whether robot ``k`` may cause one more event of ``kind`` at world time ``world_t``."""
        tokens = min(EVENT_BURST, self.event_tokens[k] + max(0.0, world_t - self.event_token_t[k]))
        self.event_token_t[k] = max(self.event_token_t[k], world_t)
        if tokens < 1.0:
            self.event_tokens[k] = tokens
            self.events_suppressed[kind] = self.events_suppressed.get(kind, 0) + 1
            return False
        self.event_tokens[k] = tokens - 1.0
        return True
