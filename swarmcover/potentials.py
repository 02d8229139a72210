r"""External velocity fields to add to the law (``BlobLaw(..., external=...)``).

:class:`ZoneRepulsion` pushes agents out of and away from no-go zones with a speed that decays
exponentially with the distance to the zone's edge:

.. math::

    v(x) = \sum_z s\, e^{-\max(d_z(x), 0)/\ell}\, \hat n_z(x),

where :math:`d_z` is the signed distance to zone :math:`z` (negative inside), :math:`\hat n_z` its
outward unit normal (the gradient of :math:`d_z`, by central differences), :math:`s` the strength
and :math:`\ell` the range.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._checks import as_points, as_positive
from .domain import Zone

__all__ = ["ZoneRepulsion"]


class ZoneRepulsion:
    """A repulsive velocity field around no-go zones; callable ``(n, d) -> (n, d)``.

    Parameters
    ----------
    zones : sequence of Zone
    strength : float
        Speed at the zone's edge (and inside it).
    length : float
        Decay length outside the zone.
    """

    def __init__(self, zones: Sequence[Zone], strength: float, length: float) -> None:
        self.zones = tuple(zones)
        if not self.zones:
            raise ValueError("ZoneRepulsion needs at least one zone")
        self.strength = as_positive(strength, "strength")
        self.length = as_positive(length, "length")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = as_points(x, self.zones[0].dim)
        out = np.zeros_like(x)
        h = 1e-6 * self.length
        for z in self.zones:
            dist = z.signed_distance(x)
            grad = np.empty_like(x)
            for a in range(x.shape[1]):
                e = np.zeros(x.shape[1])
                e[a] = h
                grad[:, a] = (z.signed_distance(x + e) - z.signed_distance(x - e)) / (2 * h)
            norm = np.linalg.norm(grad, axis=1, keepdims=True)
            normal = grad / np.maximum(norm, 1e-12)
            out += self.strength * np.exp(-np.maximum(dist, 0.0) / self.length)[:, None] * normal
        return out
