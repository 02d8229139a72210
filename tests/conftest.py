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
