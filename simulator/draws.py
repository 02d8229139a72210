"""Random numbers the radio draws for one copy of a beacon alone (see :mod:`.radio`): a hash of
the copy (sender, receiver, the sender's beacon count) under the run's seed, so that a copy's
loss and jitter do not depend on when, or in what order, beacons reached the simulator."""

from __future__ import annotations

import numpy as np

__all__ = ["copy_uniforms"]


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: 64 well-mixed bits from each of ``z`` (uint64, wrapping)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def copy_uniforms(key: int, senders, receivers: np.ndarray, seqs) -> np.ndarray:
    """One number uniform on [0, 1) for each copy: the beacon number ``seqs`` of ``senders`` to
    ``receivers`` (roster indices; scalars or arrays of one length), under ``key``. A copy's
    number depends on nothing else, so loss and jitter do not depend on the order beacons
    arrive in, or on how the radio batches them."""
    with np.errstate(over="ignore"):
        z = np.asarray(seqs, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        z = _mix(z ^ np.uint64(key % 2**64))
        z = _mix(
            z
            ^ (np.asarray(senders, dtype=np.uint64) << np.uint64(32))
            ^ np.asarray(receivers, dtype=np.uint64)
        )
        z = z + np.zeros(len(receivers), dtype=np.uint64)  # one a copy
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53
