"""The agent's command rate limit: a token bucket."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """At most ``rate`` events a second on average, ``burst`` at once; it starts full.

    An agent commands once per state. States on the rate's schedule, each early or late by less
    than half a period, never wait for a token once the bucket has been full (it refills to
    ``burst`` between states that come late); only an agent that really runs ahead is held back.
    A fixed slot after each command (the alternative) would carry any delay into every later tick.
    """

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (rate > 0 and burst >= 1):
            raise ValueError(f"rate must be > 0 and burst >= 1, got {rate!r}, {burst!r}")
        self.period, self.burst = 1.0 / rate, float(burst)
        self.tokens, self.at = float(burst), now

    def _refill(self, now: float) -> None:
        self.tokens = min(self.burst, self.tokens + (now - self.at) / self.period)
        self.at = now

    def take(self, now: float) -> bool:
        """Spend a token at ``now`` if there is one."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def ready_at(self) -> float:
        """When the next token will be there (now or earlier when one is)."""
        return self.at + max(0.0, 1.0 - self.tokens) * self.period
