"""The deterministic sampler on a bimodal target whose modes are separated by a wide gap."""

import numpy as np
import pytest

from swarmcover import GaussianMixture, anneal_schedule, sample
from swarmcover.metrics import energy_distance

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def bimodal():
    """Modes of std 0.05 at x = 0.2 and 0.8 (gap: 6 std) holding 30 % and 70 % of the mass."""
    return GaussianMixture([[0.2, 0.5], [0.8, 0.5]], [0.0025, 0.0025], [0.3, 0.7], bounds=[(0, 1), (0, 1)])


def _left_share(points):
    return float(np.mean(points[:, 0] < 0.5))


def test_annealed_sample_holds_each_modes_share(bimodal):
    res = sample(bimodal, 200, seed=3)
    assert res.points.shape == (200, 2)
    assert abs(_left_share(res.points) - 0.3) <= 0.03  # 10 % of each share, at most
    assert len(res.stages) == len(res.eps_schedule) == 6
    assert energy_distance(res.points, bimodal) < 0.05


def test_without_annealing_agents_keep_their_starting_split(bimodal):
    """Documented behaviour: at the final eps alone nothing crosses the gap, so the split stays
    near the uniform start's 50/50 instead of 30/70; the literal law (no target smoothing) is stuck
    even with annealing, because the floored 1/rhobar in the gap walls the modes off."""
    plain = sample(bimodal, 200, seed=3, anneal=False)
    assert abs(_left_share(plain.points) - 0.5) < 0.05
    literal = sample(bimodal, 200, seed=3, smoothing=0.0, stage_time=0.5)
    assert abs(_left_share(literal.points) - 0.3) > 0.1


def test_sample_is_deterministic(bimodal):
    a = sample(bimodal, 60, seed=1).points
    b = sample(bimodal, 60, seed=1).points
    assert np.array_equal(a, b)


def test_anneal_schedule_and_bad_input(bimodal):
    s = anneal_schedule(bimodal, 0.05, 5)
    assert s[0] == pytest.approx(0.25) and s[-1] == pytest.approx(0.05)
    assert np.all(np.diff(s) < 0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        sample(bimodal, 0)
    with pytest.raises(ValueError, match="init must have 10 rows"):
        sample(bimodal, 10, init=np.zeros((3, 2)))
