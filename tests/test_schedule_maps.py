"""Coverage schedules and map generators."""

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.coverage import CoverageSchedule, Stage, cover
from swarmcover.maps import corner_start, peaky_map

pytestmark = pytest.mark.unit


def test_annealed_schedule_shape():
    target = sc.Uniform([(0, 100), (0, 50)])
    s = CoverageSchedule.annealed(target, 50, speed_limit=2.0, resolution=0.3, stages=5)
    eps = [st.eps for st in s.stages]
    assert eps[0] == pytest.approx(12.5) and eps[-1] == pytest.approx(0.3 * 10.0)
    assert np.all(np.diff(eps) < 0)
    assert all(st.smoothing == st.eps for st in s.stages)
    assert s.stages[0].duration > np.hypot(100, 50) / 2.0  # the crossing time is included
    assert s.stage_index(0.0) == 0 and s.stage_index(1e9) == 4
    starts = np.cumsum([0.0] + [st.duration for st in s.stages[:-1]])
    for k, t in enumerate(starts):
        assert s.stage_index(t + 1e-9) == k
    segs = s.segments(0.0, s.duration + 5.0)
    assert [k for k, _ in segs] == list(range(5))
    assert sum(length for _, length in segs) == pytest.approx(s.duration + 5.0)
    r = CoverageSchedule.after_losses(target, 50, 2.0, resolution=0.3, stages=5)
    assert r.stages[0].eps == pytest.approx(20.0) and r.stages[-1].eps == pytest.approx(s.stages[-1].eps)


def test_schedule_validates():
    with pytest.raises(ValueError, match="at least one stage"):
        CoverageSchedule(())
    with pytest.raises(ValueError, match="duration"):
        CoverageSchedule((Stage(1.0, 1.0, -1.0),))
    target = sc.Uniform([(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="speed_limit"):
        CoverageSchedule.annealed(target, 10, 0.0)
    with pytest.raises(ValueError, match="at least one agent"):
        cover(target, np.empty((0, 2)), 1.0)


def test_cover_callback_times_are_global_and_increasing():
    target = sc.Uniform([(0, 1), (0, 1)])
    times = []
    x0 = corner_start(target.box, 16, 0.05)
    cover(target, x0, 0.5, callback=lambda t, x: times.append(t))
    assert np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx(CoverageSchedule.annealed(target, 16, 0.5).duration)


def test_peaky_map_bumps_are_disjoint_and_truncated():
    m = peaky_map(1024, n_bumps=8, support=0.2, seed=3)
    radius = 2.0 * np.sqrt(m.covs[:, 0, 0])
    for i in range(8):
        assert m.pdf(m.means[i : i + 1])[0] > 0
        # just beyond the cut the density is exactly zero
        assert m.pdf(m.means[i : i + 1] + np.array([radius[i] * 1.01, 0.0]))[0] == 0.0
        for j in range(i):
            assert np.linalg.norm(m.means[i] - m.means[j]) > radius[i] + radius[j]
    _, w = m.quadrature(512)
    assert np.mean(w > 0) == pytest.approx(0.2, abs=0.01)


def test_peaky_map_and_corner_start_validate():
    with pytest.raises(ValueError, match="support"):
        peaky_map(support=0.9)
    with pytest.raises(ValueError, match="overlap"):
        peaky_map(n_bumps=200, support=0.5)
    with pytest.raises(ValueError, match="n must"):
        corner_start(sc.Box([(0, 1), (0, 1)]), 0, 0.1)


def test_default_r_min_is_a_fifth_of_the_spacing_unless_the_peak_needs_closer_robots():
    from swarmcover.coverage import default_r_min

    # uniform: the peak asks for the mean spacing h, and 0.2 h is the smaller
    assert default_r_min(sc.Uniform([(0, 100), (0, 50)]), 50) == pytest.approx(2.0)
    # one narrow bump (variance 25): peak density 1/(2 pi 25); one robot's mass 1/100 there
    # needs the spacing h_p = sqrt(2 pi 25 / 100), and the barrier is half of that
    bump = sc.GaussianMixture([[50.0, 50.0]], [25.0], bounds=[(0, 100), (0, 100)])
    h_p = np.sqrt(2 * np.pi * 25.0 / 100)
    assert default_r_min(bump, 100) == pytest.approx(0.5 * h_p, rel=0.03)
    assert default_r_min(bump, 100) < 0.2 * 10.0
    # the service objective's density is flatter: its peak allows a wider barrier
    assert default_r_min(bump.for_service(), 100) > default_r_min(bump, 100)
    with pytest.raises(ValueError, match="positive integer"):
        default_r_min(bump, 0)
