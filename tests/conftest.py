import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


def _hypothesis_profiles() -> None:
    """``ci`` (default): a few hundred examples per property; ``long``: the fuzz run
    (``python scripts/fuzz.py``, or ``HYPOTHESIS_PROFILE=long``)."""
    import os

    from hypothesis import HealthCheck, settings

    common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
    settings.register_profile("ci", max_examples=300, **common)
    settings.register_profile("long", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "20000")), **common)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


@pytest.fixture(scope="session")
def c_kernel() -> bool:
    """Whether the optional C kernel was built. ``SWARMCOVER_REQUIRE_C=1`` (set by ``.ci/run``,
    whose machine has a compiler) turns its absence into a failure instead of skipped checks."""
    import os

    from swarmcover.local import c_kernel_available

    built = c_kernel_available()
    if not built and os.environ.get("SWARMCOVER_REQUIRE_C") == "1":
        pytest.fail(
            "SWARMCOVER_REQUIRE_C=1 but swarmcover._hotpath was not built (the install needs a C compiler)"
        )
    return built


@pytest.fixture(scope="session", autouse=True)
def _warm_agent_kernels() -> None:
    """Compile the agents' numba kernels into the cache once, before any test starts agent
    processes (as ``swarmcover launch`` does): on a fresh checkout ten agents compiling at once
    take longer than the tests wait for them to say hello."""
    from swarmcover.domain import Box
    from swarmcover.local import warm_local_velocity

    for bounds in ([(0.0, 1.0), (0.0, 1.0)], [(0.0, 1.0)]):
        for boundary in ("reflect", "free"):
            warm_local_velocity(Box(bounds), boundary)


@pytest.fixture
def fleets():
    """Make :class:`simfleet.Fleet` s (a simulator and its agent processes); all closed at the end."""
    from simfleet import Fleet

    made = []
    try:
        yield lambda cfg, **over: made.append(Fleet(cfg, **over)) or made[-1]
    finally:
        for f in made:
            f.close()


@pytest.fixture
def launches():
    """Start ``swarmcover launch`` processes (:class:`launching.Launches`); each is killed with
    everything that mentions its run folder when the test ends, also when it fails."""
    from launching import Launches

    ls = Launches()
    try:
        yield ls
    finally:
        ls.cleanup()


def pytest_collection_modifyitems(config, items) -> None:
    """Every test is exactly one of ``unit`` (in process, no sockets or processes) or
    ``integration`` (real processes, sockets, launches): ``pytest -m unit`` is the fast lane."""
    wrong = [
        item.nodeid
        for item in items
        if sum(item.get_closest_marker(m) is not None for m in ("unit", "integration")) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "each test needs exactly one of the markers unit or integration: " + ", ".join(wrong[:10])
        )
