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


def _one_blas_thread_beside_the_other_lane() -> None:
    """On an xdist worker, the processes the tests start (launchers, agents) use one OpenBLAS
    thread: OpenBLAS's threads wait for each other by spinning, so beside the other lane the
    launcher's transport planner took twice as long (15.7 -> 29.7 s next to a niced busy loop;
    14.2 s with one thread). Set before any test starts a process; an explicit setting wins."""
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


_one_blas_thread_beside_the_other_lane()


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


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the groups
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
    # with pytest-xdist (``-n 2 --dist loadgroup``, the README's command) the two lanes run side by
    # side: the integration tests together on one worker, in order, at normal priority; the unit
    # tests on the other, niced (:func:`_unit_lane_yields`), in the CPU the integration tests leave
    # idle while they wait on real time. Without xdist the groups mean nothing.
    for item in items:
        item.add_marker(pytest.mark.xdist_group("unit" if item.get_closest_marker("unit") else "integration"))


@pytest.fixture(autouse=True)
def _unit_lane_yields(request) -> None:
    """On an xdist worker given the unit lane, a unit test lowers the worker's priority for good
    (to nice 19): the real-time tests on the other worker, and their agent processes, come first.
    Only where xdist grouped the lanes (its suffix on the test's id): a worker that may also be
    handed integration tests keeps its priority."""
    import os

    if request.node.nodeid.endswith("@unit"):
        if os.getpriority(os.PRIO_PROCESS, 0) < 19:  # every thread (BLAS's too): Linux nices threads
            tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else ["0"]
            for tid in tasks:
                try:
                    os.setpriority(os.PRIO_PROCESS, int(tid), 19)
                except OSError:  # ended meanwhile
                    pass
