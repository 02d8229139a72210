"""The agent's command rate limit (a token bucket), on a simulated clock."""

import numpy as np
import pytest

from swarmcover.agents.ratelimit import TokenBucket

pytestmark = pytest.mark.unit


def test_states_at_the_rate_with_jitter_never_wait(rng):
    """States on the rate's schedule, each early or late by up to 45 % of a period, always find a
    token, even the first ones right after the bucket was made."""
    rate = 10.0
    times = (
        np.arange(1000) + 0.05 + rng.uniform(0.0, 0.45, 1000) * np.where(rng.random(1000) < 0.5, -1, 1)
    ) / rate
    b = TokenBucket(rate, 2.0, now=0.0)
    assert all(b.take(t) for t in np.maximum(times, 0.0))


def test_a_flood_gets_the_rate_plus_the_burst(rng):
    rate, burst = 10.0, 2.0
    b = TokenBucket(rate, burst, now=0.0)
    times = np.sort(rng.uniform(0.0, 10.0, 5000))  # 500 a second
    taken = [t for t in times if b.take(t)]
    assert len(taken) <= rate * 10.0 + burst and len(taken) >= rate * 10.0 - 1
    # never more than `burst` within any one period
    taken = np.array(taken)
    assert all(np.sum((taken >= t) & (taken < t + 1.0 / rate - 1e-9)) <= burst for t in taken)


def test_ready_at_is_when_the_next_token_comes():
    b = TokenBucket(4.0, 1.0, now=0.0)
    assert b.ready_at() == 0.0 and b.take(0.0)
    assert not b.take(0.1) and b.ready_at() == pytest.approx(0.25)
    assert b.take(0.25)


@pytest.mark.parametrize("rate, burst", [(0.0, 2.0), (10.0, 0.5)])
def test_bad_parameters_are_refused(rate, burst):
    with pytest.raises(ValueError, match="rate must be"):
        TokenBucket(rate, burst, now=0.0)
