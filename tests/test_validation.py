"""Bad input raises ValueError naming the problem."""

import numpy as np
import pytest

from swarmcover import BlobLaw, Box, Disk, GaussianMixture, Raster, Uniform

pytestmark = pytest.mark.unit

UNIT = [(0, 1), (0, 1)]


@pytest.fixture(scope="module")
def law():
    return BlobLaw(Uniform(UNIT), 0.1, 0.1)


@pytest.mark.parametrize(
    ("x", "match"),
    [
        (np.array([[0.5, np.nan]]), "non-finite"),
        (np.array([[0.5, np.inf], [0.1, 0.1]]), "non-finite"),
        (np.zeros((3, 3)), "2 columns"),
        (np.zeros(4), r"shape \(n, d\)"),
        (np.array([[1.5, 0.5]]), "outside the domain"),
        ([["a", "b"]], "numeric"),
    ],
)
def test_bad_positions(law, x, match):
    with pytest.raises(ValueError, match=match):
        law.velocities(x)


def test_bad_single_agent_input(law):
    with pytest.raises(ValueError, match="x"):
        law.velocity([0.5, np.nan], [[0.1, 0.1]])
    with pytest.raises(ValueError, match="neighbors"):
        law.velocity([0.5, 0.5], [[0.1, 0.1, 0.1]])


@pytest.mark.parametrize("eps", [0, -0.1, np.nan, np.inf])
def test_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        BlobLaw(Uniform(UNIT), eps, 0.1)


def test_bad_law_options():
    t = Uniform(UNIT)
    with pytest.raises(ValueError, match="boundary"):
        BlobLaw(t, 0.1, 0.1, boundary="periodic")
    with pytest.raises(ValueError, match="mass"):
        BlobLaw(t, 0.1, -1.0)
    with pytest.raises(ValueError, match="method"):
        BlobLaw(t, 0.1, 0.1).velocities(np.full((2, 2), 0.5), method="fast")
    with pytest.raises(ValueError, match="target"):
        BlobLaw("uniform", 0.1, 0.1)
    with pytest.raises(ValueError, match="eps is too small"):
        BlobLaw(Uniform([(0, 1000), (0, 1000)]), 0.01, 0.1)
    with pytest.raises(ValueError, match="external field"):
        BlobLaw(t, 0.1, 0.1, external=lambda p: p[:, :1]).velocities(np.full((2, 2), 0.5))


def test_bad_targets():
    with pytest.raises(ValueError, match="negative"):
        Raster(-np.ones((3, 3)), UNIT)
    with pytest.raises(ValueError, match="all zero"):
        Raster(np.zeros((3, 3)), UNIT)
    with pytest.raises(ValueError, match="finite"):
        Raster(np.full((3, 3), np.nan), UNIT)
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture([[0.5, 0.5]], [0.1], [-1], bounds=UNIT)
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture([[0.5, 0.5]], [[[1, 2], [2, 1]]], bounds=UNIT)
    with pytest.raises(ValueError, match="lo < hi"):
        Box([(1, 0)])
    with pytest.raises(ValueError, match="zero mass"):
        Uniform(UNIT, zones=[Disk((0.5, 0.5), 5.0)])
    with pytest.raises(ValueError, match="3-D but the domain is 2-D"):
        Uniform(UNIT, zones=[Disk((0, 0, 0), 0.1)])
    with pytest.raises(ValueError, match="floor"):
        Uniform(UNIT, floor=0)
    with pytest.raises(ValueError, match="1-D and 2-D"):
        BlobLaw(Uniform([(0, 1)] * 3), 0.3, 0.1)


def test_every_config_model_has_the_one_strict_base():
    """One configuration vocabulary: every config model (agent, simulator, scenario, zones,
    vehicles) derives from ``swarmcover.configfile.Strict`` (unknown keys refused, frozen)."""
    import importlib
    import inspect

    from pydantic import BaseModel

    from swarmcover.configfile import Strict

    modules = ["swarmcover.agentspec", "swarmcover.simulator.config", "swarmcover.launcher.scenario",
               "swarmcover.launcher.vehicles", "swarmcover.zonespec", "swarmcover.vehiclespec"]  # fmt: skip
    models = []
    for name in modules:
        mod = importlib.import_module(name)
        models += [c for _, c in inspect.getmembers(mod, inspect.isclass)
                   if issubclass(c, BaseModel) and c.__module__ == name]  # fmt: skip
    assert len(models) > 30
    loose = [
        m.__qualname__ for m in models if not issubclass(m, Strict) or m.model_config.get("extra") != "forbid"
    ]
    assert loose == []
