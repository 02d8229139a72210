"""What a person sees: the under-served layer (maths and pixels), the legend, the scale bar, the
metrics plot's log axes and marks (real pygame surfaces with ``SDL_VIDEODRIVER=dummy``)."""

from pathlib import Path

import numpy as np
import pytest

import swarmcover as sc
from swarmcover.metrics import underserved_mask, underserved_mass

pytestmark = pytest.mark.unit

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def _lattice(k: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    c = lo + (np.arange(k) + 0.5) * (hi - lo) / k
    return np.stack(np.meshgrid(c, c, indexing="ij"), -1).reshape(-1, 2)


def test_a_fleet_in_proportion_serves_everything_and_no_fleet_serves_nothing():
    q = _lattice(60)
    rho = np.ones(len(q))  # uniform on the unit square
    assert not underserved_mask(q, rho, _lattice(8)).any()  # 64 robots on a lattice: all served
    assert underserved_mask(q, rho, np.empty((0, 2))).all()  # no robot: all the demand
    rho[q[:, 0] > 0.5] = 0.0  # demand-free ground is never under-served
    assert not underserved_mask(q, rho, np.empty((0, 2)))[q[:, 0] > 0.5].any()
    with pytest.raises(ValueError, match="must agree"):
        underserved_mask(q, rho[:-1], _lattice(2))


def test_the_layer_does_not_depend_on_units(rng):
    # the spacing scales with the domain, so a map drawn in metres or kilometres marks the same ground
    q = rng.uniform(0, 1, (4000, 2))
    rho = 1.0 + 3.0 * np.exp(-20 * np.sum((q - 0.3) ** 2, axis=1))
    rho /= rho.mean()
    x = rng.uniform(0, 1, (25, 2))
    for c in (1e-3, 7.0, 1e4):
        np.testing.assert_array_equal(underserved_mask(c * q, rho / c**2, c * x), underserved_mask(q, rho, x))


def test_robots_sent_to_an_empty_bump_serve_it():
    t = sc.GaussianMixture([[0.25, 0.5], [0.75, 0.5]], [0.01, 0.01], truncate=2.0)
    left = np.array([[0.25, 0.5], [0.2, 0.45], [0.3, 0.55], [0.2, 0.55], [0.3, 0.45]])
    before = underserved_mass(left, t)
    after = underserved_mass(np.concatenate([left, left + np.array([0.5, 0.0])]), t)
    assert 0.4 < before <= 0.6 and after < 0.05  # half the mass unserved, then almost none


@pytest.fixture
def pg(monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    import pygame

    pygame.display.init()
    pygame.font.init()
    yield pygame
    pygame.quit()


def test_each_empty_bump_of_the_sparse_map_is_marked_under_served(pg, rng):
    from swarmcover.launcher.resolve import resolve
    from swarmcover.launcher.scenario import load_scenario
    from swarmcover.simulator.live import renderer_for
    from swarmcover.simulator.render import UNDERSERVED_COLOUR

    rs = resolve(load_scenario(LAUNCH / "sparse.toml"), LAUNCH / "sparse.toml")
    tgt = rs.scenario.target
    means, sd, w = np.array(tgt.means), np.sqrt(tgt.covs), np.array(tgt.weights)
    empty = [2, 6, 10]  # three bumps left without a robot; the 32 robots share the other nine
    full = [k for k in range(12) if k not in empty]
    counts = 1 + rng.multinomial(32 - len(full), w[full] / w[full].sum())  # at least one each
    x = np.concatenate(
        [means[k] + rng.normal(0, 0.6 * sd[k], (c, 2)) for k, c in zip(full, counts, strict=True)]
    )
    view = renderer_for(rs.target, np.asarray(rs.sim.bounds), 900, None, rs.eps, None, 0)
    screen = pg.Surface(view.size)
    view.draw(screen, x, np.ones(32, dtype=np.uint8), ["t = 200"])
    img = pg.surfarray.array3d(screen)  # (w, h, 3)
    marked = np.all(img == UNDERSERVED_COLOUR, axis=-1)
    W, H = view.size
    px, py = np.meshgrid(np.arange(W), np.arange(H), indexing="ij")
    wx, wy = px / (W - 1) * 1024, (1 - py / (H - 1)) * 1024  # pixel centres in world units
    for k in range(12):
        near = np.hypot(wx - means[k, 0], wy - means[k, 1]) < 0.8 * sd[k]
        share = marked[near].mean()
        if k in empty:
            assert share > 0.2, f"empty bump {k}: {share:.2f} of its pixels hatched"
        else:
            assert share < 0.05, f"served bump {k} ({counts[full.index(k)]} robots): {share:.2f} hatched"
    # the legend's swatch is drawn in the same colour (12 x 10 pixels, inside the box at bottom left)
    legend = marked[:200, H - 140 :]
    assert legend.sum() >= 100
    assert 0.1 < view.underserved_fraction < 0.6


def test_no_demand_ground_is_never_hatched_and_blobs_are_drawn_only_on_request(pg, rng):
    from swarmcover.simulator.live import renderer_for
    from swarmcover.simulator.render import UNDERSERVED_COLOUR

    t = sc.GaussianMixture([[0.3, 0.3]], [0.005], truncate=2.0, bounds=[(0, 1), (0, 1)])
    x = np.array([[0.8, 0.8], [0.9, 0.8]])  # far from the only bump
    shots = {}
    for blobs in ("none", "outline", "fill"):
        view = renderer_for(t, np.array([[0, 1.0], [0, 1.0]]), 400, None, 0.1, None, 0, blobs)
        screen = pg.Surface(view.size)
        view.draw(screen, x, np.ones(2, dtype=np.uint8), [])
        shots[blobs] = pg.surfarray.array3d(screen).astype(int)
    img = shots["none"]
    marked = np.all(img == UNDERSERVED_COLOUR, axis=-1)
    pxs = (np.arange(400) + 0.5) / 400
    gx, gy = np.meshgrid(pxs, 1 - pxs, indexing="ij")
    demand = t.pdf(np.c_[gx.ravel(), gy.ravel()]).reshape(400, 400) > 0
    from scipy.ndimage import binary_dilation

    near_demand = binary_dilation(demand, iterations=4)  # the layer is drawn on a grid of 2-pixel cells
    marked[:250, 400 - 100 :] = False  # the legend's swatch
    assert marked[demand].mean() > 0.2 and not marked[~near_demand].any()
    # a blob of radius eps = 40 pixels around the robots: only the outline and fill modes change pixels there
    ring = (np.hypot(np.arange(400)[:, None] - 0.8 * 399, np.arange(400)[None, :] - 0.2 * 399) - 40) ** 2 < 4
    assert np.abs(shots["outline"] - shots["none"])[ring].sum() > 0
    assert np.abs(shots["fill"] - shots["none"]).sum() > np.abs(shots["outline"] - shots["none"]).sum()
    with pytest.raises(ValueError, match="blobs"):
        renderer_for(t, np.array([[0, 1.0], [0, 1.0]]), 400, None, 0.1, None, 0, "big")


def test_metrics_png_uses_log_axes_and_marks_the_minimum(tmp_path):
    from swarmcover.launcher import report

    t = np.linspace(0, 60, 61)
    ed = np.r_[np.geomspace(5.0, 0.4, 31), np.linspace(0.4, 0.7, 30)]  # a fall, then a slow creep
    m = {"t": t.tolist(), "energy_distance": ed.tolist(), "lloyd_cost": (1 + 0 * t).tolist(),
         "alive": [10] * 61, "on_time": [1.0] * 61, "underserved": [None] * 61}  # fmt: skip
    fig = report.metrics_figure(m, [{"t": 40.0, "kind": "killed"}], "creep")
    report.metrics_png(tmp_path / "m.png", m, [], "creep")
    axes = fig.axes
    assert (tmp_path / "m.png").stat().st_size > 10_000
    labels = [ax.get_ylabel() for ax in axes]
    ax_ed = axes[labels.index("energy distance (log)")]
    assert ax_ed.get_yscale() == "log" and axes[labels.index("Lloyd cost")].get_yscale() == "linear"
    notes = [c.get_text() for c in ax_ed.texts]
    assert any(n.startswith("min 0.4 (t 30)") for n in notes) and any(n == "final 0.7" for n in notes)
    assert any(abs(line.get_xdata()[0] - 40.0) < 1e-9 for line in ax_ed.lines if len(line.get_xdata()) == 2)
