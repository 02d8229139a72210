"""Cross-checks between the law's implementations: one agent vs the fleet, mesh vs pairwise."""

import numpy as np
import pytest

from swarmcover import BlobLaw, Disk, GaussianMixture, Uniform

pytestmark = pytest.mark.unit


def _mixture(d):
    bounds = [(0.0, 1.0)] * d
    means = [[0.3, 0.4][:d], [0.7, 0.6][:d]]
    return GaussianMixture(means, [0.02, 0.04], [0.4, 0.6], bounds=bounds)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("boundary", ["reflect", "free"])
def test_single_agent_equals_vectorised(d, boundary, rng):
    n = 150 if d == 2 else 40
    x = rng.random((n, d))
    law = BlobLaw(_mixture(d), 0.08, 1.0 / n, boundary=boundary)
    v = law.velocities(x, method="pairwise")
    for i in range(n):
        vi = law.velocity(x[i], np.delete(x, i, axis=0))
        assert np.allclose(vi, v[i], rtol=1e-10, atol=1e-10 * np.abs(v).max()), i


def test_single_agent_ignores_neighbours_beyond_radius(rng):
    law = BlobLaw(_mixture(2), 0.05, 0.01)
    x = np.array([0.5, 0.5])
    near = rng.normal(0.5, 0.03, (5, 2))
    far = np.array([[0.5 + 1.01 * law.radius, 0.5]])
    assert np.array_equal(law.velocity(x, near), law.velocity(x, np.vstack([near, far])))


def test_per_agent_masses(rng):
    n = 60
    x = rng.random((n, 2))
    m = rng.uniform(0.5, 1.5, n) / n
    law = BlobLaw(_mixture(2), 0.1, m)
    v = law.velocities(x)
    for i in (0, 17, 59):
        vi = law.velocity(x[i], np.delete(x, i, 0), mass=m[i], neighbor_mass=np.delete(m, i))
        assert np.allclose(vi, v[i], rtol=1e-10)
    with pytest.raises(ValueError, match="per-agent masses"):
        law.velocity(x[0], x[1:])
    with pytest.raises(ValueError, match="60 per-agent masses"):
        law.velocities(x[:10])


@pytest.mark.parametrize("boundary", ["reflect", "free"])
def test_mesh_agrees_with_pairwise_2d(boundary, rng):
    """Particle-mesh on a 512-cell grid (spacing eps/41) within 2 % relative (L2 over agents)."""
    n = 400
    x = rng.random((n, 2))
    law = BlobLaw(_mixture(2), 0.08, 1.0 / n, boundary=boundary, mesh_cells=512, oversample=8)
    vp = law.velocities(x, method="pairwise")
    vm = law.velocities(x, method="mesh")
    rel = np.linalg.norm(vm - vp) / np.linalg.norm(vp)
    assert rel < 0.02, rel


def test_mesh_agrees_with_pairwise_1d_and_default_grid(rng):
    n = 100
    x = rng.random((n, 1))
    law = BlobLaw(_mixture(1), 0.05, 1.0 / n)
    rel = np.linalg.norm(law.velocities(x, method="mesh") - law.velocities(x, method="pairwise"))
    assert rel / np.linalg.norm(law.velocities(x, method="pairwise")) < 0.02


def test_mesh_energy_matches_closed_form(rng):
    n = 300
    x = rng.random((n, 2))
    law = BlobLaw(_mixture(2), 0.08, 1.0 / n, mesh_cells=512)
    e_pair = law.evaluate(x, method="pairwise").energy
    e_mesh = law.evaluate(x, method="mesh").energy
    assert abs(e_mesh - e_pair) / e_pair < 0.01


def test_auto_picks_mesh_for_large_fleets(rng):
    law = BlobLaw(Uniform([(0, 1), (0, 1)]), 0.05, 1e-5)
    assert law.evaluate(rng.random((100_000, 2))).method == "mesh"
    assert law.evaluate(rng.random((50, 2))).method == "pairwise"


def test_external_field_is_added(rng):
    x = rng.random((20, 2))
    base = BlobLaw(_mixture(2), 0.1, 0.05)
    pushed = BlobLaw(_mixture(2), 0.1, 0.05, external=lambda p: np.ones_like(p))
    assert np.allclose(pushed.velocities(x) - base.velocities(x), 1.0)
    assert np.allclose(pushed.velocity(x[0], x[1:]) - base.velocity(x[0], x[1:]), 1.0)


def test_reflecting_walls_conserve_symmetry():
    """A configuration symmetric about the box's centre line has mirror-symmetric velocities."""
    law = BlobLaw(Uniform([(0, 1), (0, 1)]), 0.1, 0.1)
    half = np.array([[0.05, 0.3], [0.2, 0.7], [0.4, 0.5], [0.1, 0.95], [0.3, 0.02]])
    x = np.vstack([half, [1, 0] + [-1, 1] * half])
    v = law.velocities(x)
    assert np.allclose(v[5:], [-1, 1] * v[:5], atol=1e-12)


def test_zone_repulsion_points_outward():
    from swarmcover import ZoneRepulsion

    rep = ZoneRepulsion([Disk((0.5, 0.5), 0.1)], strength=1.0, length=0.05)
    v = rep(np.array([[0.7, 0.5], [0.5, 0.3], [0.55, 0.5]]))
    assert v[0, 0] > 0 and v[1, 1] < 0 and v[2, 0] > 0
    assert np.linalg.norm(v[2]) == pytest.approx(1.0)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("boundary", ["reflect", "free"])
@pytest.mark.parametrize("eps", [0.08, 0.3])
def test_numpy_kernel_equals_compiled_kernel_and_vectorised(d, boundary, eps, rng, c_kernel):
    """The agent's numpy kernel, on a patch of the field as a body sends it, against the compiled
    kernels (numba; C where built) and the fleet-wide law (agents near walls included; with
    eps = 0.3 the radius, 1.7, exceeds the box, so images of images count)."""
    from swarmcover.domain import Box
    from swarmcover.local import local_velocity

    n = 120 if d == 2 else 40
    x = rng.random((n, d))
    x[:5] = rng.random((5, d)) * 0.05  # in a corner: mirror images count
    law = BlobLaw(_mixture(d), eps, 1.0 / n, boundary=boundary)
    v = law.velocities(x, method="pairwise")
    box = Box([(0.0, 1.0)] * d) if boundary == "reflect" else None
    for i in range(n):
        origin, coef = law.field.patch(x[i], 0.5 * law.radius)
        args = (x[i], np.delete(x, i, axis=0), 1.0 / n, np.full(n - 1, 1.0 / n))
        kw = dict(
            eps=law.eps, cutoff=law.cutoff, coef=coef, origin=origin, spacing=law.field.spacing, box=box
        )
        vn = local_velocity(*args, **kw, kernel="numpy")
        vc = local_velocity(*args, **kw, kernel="numba")
        assert np.allclose(vn, vc, rtol=1e-12, atol=1e-12 * np.abs(v).max()), i
        assert np.allclose(vn, v[i], rtol=1e-10, atol=1e-10 * np.abs(v).max()), i
        if c_kernel:
            vC = local_velocity(*args, **kw, kernel="c")
            assert vC.shape == (d,) and np.allclose(vC, vn, rtol=1e-12, atol=1e-12 * np.abs(v).max()), i


def test_numpy_spline_sampling_equals_compiled(rng):
    from swarmcover.local import sample_spline

    law = BlobLaw(_mixture(2), 0.05, 0.01)
    f = law.field
    p = rng.random((500, 2)) * 1.2 - 0.1  # beyond the box too: both clamp to the grid
    p = np.clip(p, f._lo_valid, f._hi_valid)
    w, g = f.sample(p)
    out = sample_spline(p, f.coef, f.origin, f.spacing)
    assert np.allclose(out[:, 0], w, rtol=1e-13) and np.allclose(
        out[:, 1:], g, rtol=1e-12, atol=1e-12 * abs(g).max()
    )


@pytest.mark.parametrize("dim", [1, 2])
@pytest.mark.parametrize("reach", [0.3, 0.9, 2.5])  # radius / box side: one mirror per wall, up to many
def test_near_images_equal_brute_force_reflection_group(rng, dim, reach):
    """Every image of the reflection group within the radius, and no other, with its owner."""
    import itertools

    from swarmcover.local import near_images

    for _ in range(20):
        lo = rng.uniform(-2, 2, dim)
        size = rng.uniform(0.5, 3.0, dim)
        hi = lo + size
        radius = reach * float(size.min())
        pts = lo + rng.random((7, dim)) * size
        x = lo + rng.random(dim) ** 3 * size  # often close to a low wall
        got, owner = near_images(pts, x, radius, lo, hi)
        want = []
        ks = range(-5, 6)
        per_axis = [[(1.0, 2 * k * size[a]) for k in ks] + [(-1.0, 2 * lo[a] + 2 * k * size[a]) for k in ks]
                    for a in range(dim)]  # fmt: skip
        for combo in itertools.product(*per_axis):
            if all(s == 1.0 and o == 0.0 for s, o in combo):
                continue
            img = pts * np.array([s for s, _ in combo]) + np.array([o for _, o in combo])
            for j in np.flatnonzero(np.linalg.norm(img - x, axis=1) < radius):
                want.append((int(j), *np.round(img[j], 9)))
        have = sorted((int(j), *np.round(g, 9)) for j, g in zip(owner, got, strict=True))
        assert have == sorted(want)


def test_numpy_spline_sampling_clamps_beyond_the_grid(rng):
    """Points past the last cell sample the grid's edge (u clamped to [1, n - 2]), as the compiled
    kernel does."""
    from swarmcover.local import sample_spline

    f = BlobLaw(_mixture(2), 0.05, 0.01).field
    shape = np.array(f.coef.shape[:2])
    u = rng.uniform(-3.0, shape + 3.0, (400, 2))  # many beyond the grid on one side or both
    edge = f.origin + np.clip(u, 1.0, shape - 2.0) * f.spacing
    out = sample_spline(f.origin + u * f.spacing, f.coef, f.origin, f.spacing)
    assert np.allclose(out, sample_spline(edge, f.coef, f.origin, f.spacing), rtol=1e-12, atol=1e-12)
    w, _ = f.sample(np.clip(edge, f._lo_valid, f._hi_valid))
    inside = np.all((edge >= f._lo_valid) & (edge <= f._hi_valid), axis=1)
    assert inside.sum() > 100 and np.allclose(out[inside, 0], w[inside], rtol=1e-12)


@pytest.mark.parametrize("d", [1, 2])
def test_c_kernel_equals_numpy_kernel_off_the_patch_and_far_off_the_walls(d, rng, c_kernel):
    """Midpoints beyond a too-small patch clamp to its edge in both kernels; walls far closer than
    the radius on a long thin box (many images along one axis, one along the other); no neighbours."""
    if not c_kernel:
        pytest.skip("the C kernel was not built")
    from swarmcover.domain import Box
    from swarmcover.local import local_velocity

    law = BlobLaw(_mixture(d), 0.1, 0.02)
    for _ in range(20):
        x = rng.random(d)
        nb = rng.random((int(rng.integers(0, 30)), d))
        m = rng.uniform(0.01, 0.05, len(nb))
        origin, coef = law.field.patch(x, 0.2 * law.radius)  # too small: many midpoints off it
        thin = Box([(0.0, 0.15), (0.0, 1.0)][:d]) if d == 2 else Box([(0.0, 1.0)])
        for box in (None, Box([(0.0, 1.0)] * d), thin):
            xb = x if box is None else box.clip(x)
            nbb = nb if box is None else box.clip(nb)
            kw = dict(
                eps=law.eps, cutoff=law.cutoff, coef=coef, origin=origin, spacing=law.field.spacing, box=box
            )
            vn = local_velocity(xb, nbb.reshape(-1, d), 0.02, m, **kw, kernel="numpy")
            vc = local_velocity(xb, nbb.reshape(-1, d), 0.02, m, **kw, kernel="c")
            assert np.allclose(vc, vn, rtol=1e-12, atol=1e-13 * max(1.0, np.abs(vn).max()))


def test_c_kernel_names_bad_arrays(c_kernel):
    """Wrong dtype, shape or layout, or one wall without the other: a ValueError naming it."""
    if not c_kernel:
        pytest.skip("the C kernel was not built")
    from swarmcover._hotpath import velocity

    x, nb, m = np.array([0.5, 0.5]), np.array([[0.4, 0.5]]), np.array([0.1])
    coef, o, h = np.zeros((8, 8, 3)), np.zeros(2), np.full(2, 0.2)
    lo, hi = np.zeros(2), np.ones(2)
    assert len(velocity(x, nb, 0.1, m, 0.1, 4.0, coef, o, h, lo, hi)) == 2
    bounds = np.array([[0.0, 1.0], [0.0, 1.0]])  # strided vectors (a column of bounds) are read as such
    assert velocity(x, nb, 0.1, m, 0.1, 4.0, coef, o, h, bounds[:, 0], bounds[:, 1]) == velocity(
        x, nb, 0.1, m, 0.1, 4.0, coef, o, h, lo, hi
    )
    for args, what in [
        ((x.astype(np.float32), nb, 0.1, m, 0.1, 4.0, coef, o, h, lo, hi), "x must be a float64"),
        ((x, nb[:, :1], 0.1, m, 0.1, 4.0, coef, o, h, lo, hi), "neighbors has length 1 along axis 1"),
        ((x, nb, 0.1, np.array([0.1, 0.2]), 0.1, 4.0, coef, o, h, lo, hi), "neighbor_mass has length 2"),
        ((x, nb, 0.1, m, 0.1, 4.0, np.zeros((8, 8, 2)), o, h, lo, hi), "coef has length 2 along axis 2"),
        ((x, nb, 0.1, m, 0.1, 4.0, coef, o, h, [0.0, 0.0], hi), "lo must be a float64 array"),
        ((x, nb, 0.1, m, 0.1, 4.0, np.zeros((8, 8, 3))[:, ::2], o, h, lo, hi), "coef must be a C-contiguous"),
        ((x, nb, 0.1, m, 0.1, 4.0, coef, o, h, lo, None), "both walls"),
        ((x, nb, 0.1, m, -0.1, 4.0, coef, o, h, lo, hi), "eps and cutoff must be positive"),
        ((x, nb, 0.1, m, 0.1, 4.0, np.zeros((3, 8, 3)), o, h, lo, hi), "at least 4 nodes"),
        ((np.zeros(3), nb, 0.1, m, 0.1, 4.0, coef, o, h, lo, hi), "1 or 2 coordinates"),
        ((x, nb, 0.1, m, 0.1, 4.0, coef, o, h, hi, lo), "hi > lo"),
    ]:
        with pytest.raises(ValueError, match=what):
            velocity(*args)


def test_kernel_auto_and_an_install_without_the_c_kernel(monkeypatch, c_kernel):
    """``"auto"`` takes C where built; without it (simulated), numpy, and asking for ``"c"`` says why."""
    import swarmcover.local as local

    assert local.resolve_kernel("auto") == ("c" if c_kernel else "numpy")
    assert local.resolve_kernel("numpy") == "numpy"
    with pytest.raises(ValueError, match="kernel must be 'auto' or one of"):
        local.resolve_kernel("fortran")
    import swarmcover.kernels as kernels

    monkeypatch.setattr(kernels, "_C", None)  # the registry: no extension built
    monkeypatch.setattr(local, "_c_velocity", None)
    assert kernels.hotpath("velocity") is None and kernels.hotpath("rows_ok") is None
    assert local.resolve_kernel("auto") == "numpy" and not local.c_kernel_available()
    with pytest.raises(ValueError, match="kernel 'c' was not built with this install"):
        local.resolve_kernel("c")
    x = np.array([0.5, 0.5])
    with pytest.raises(ValueError, match="not built"):
        local.local_velocity(x, x[None], 0.1, np.array([0.1]), eps=0.1, cutoff=4.0, coef=np.zeros((8, 8, 3)),
                             origin=np.zeros(2), spacing=np.full(2, 0.2), box=None, kernel="c")  # fmt: skip


def test_three_d_is_refused_not_miscomputed():
    """3-D is not supported anywhere (docs/protocol.md): the agent's sampler refuses a 3-D patch
    instead of reading it as a 2-D one, and so do the law and the agent's config."""
    from swarmcover.agentspec import AgentConfig
    from swarmcover.local import sample_spline

    coef = np.zeros((6, 6, 6, 4))
    with pytest.raises(ValueError, match="3-D is not supported"):
        sample_spline(np.full((2, 3), 0.5), coef, np.zeros(3), np.full(3, 0.2))
    with pytest.raises(ValueError, match="1-D and 2-D"):
        BlobLaw(Uniform([(0, 1)] * 3), 0.2, 0.05)
    with pytest.raises(ValueError, match="bounds"):
        AgentConfig(agent_id=0, bounds=[(0, 1)] * 3, eps=0.1, mass=0.1, speed_limit=1.0, insecure=True)


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("symmetric", [True, False])
def test_numpy_pair_sums_equal_compiled(d, symmetric, rng):
    """The fleet law's pair sums: numpy twin (what a process without numba runs for small fleets,
    a launcher's metrics among them) against the compiled kernel, pair for pair; beyond the grid too."""
    from swarmcover._kernels import accumulate_pairs
    from swarmcover.pairwise import accumulate_pairs_numpy

    law = BlobLaw(_mixture(d), 0.08, 1.0 / 60)
    f = law.field
    xt, mt = rng.random((60, d)), rng.uniform(0.5, 2.0, 60) / 60
    xs, ms = (xt, mt) if symmetric else (rng.uniform(-0.2, 1.2, (40, d)), rng.uniform(0.5, 2.0, 40) / 60)
    pi = rng.integers(0, 60, 500)
    pj = rng.integers(0, len(xs), 500)
    consts = (symmetric, 0.7, 1.0 / (4 * 0.08**2), 1.0 / (2 * 0.08**2), f.coef, f.origin)
    v_np, v_nb = np.zeros((60, d)), np.zeros((60, d))
    e_np = accumulate_pairs_numpy(xt, mt, xs, ms, pi, pj, *consts, f.spacing, v_np)
    e_nb = accumulate_pairs(xt, mt, xs, ms, pi, pj, *consts, 1.0 / f.spacing, v_nb)
    assert e_np == pytest.approx(e_nb, rel=1e-12)
    assert np.allclose(v_np, v_nb, rtol=1e-11, atol=1e-12 * np.abs(v_nb).max())
    assert accumulate_pairs_numpy(xt, mt, xs, ms, pi[:0], pj[:0], *consts, f.spacing, v_np) == 0.0
