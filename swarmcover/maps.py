r"""Generators of test maps of the kind real demand maps are: sparse, peaky, with sharp edges.

:func:`peaky_map` places ``n_bumps`` isotropic Gaussian bumps of random widths and weights, each cut
off at ``truncate`` standard deviations (so the target is exactly zero between them), without overlap,
so that the bumps cover a given fraction of the box. :func:`corner_start` is a fleet deployed from one
corner (a depot). Both are deterministic given their seed.
"""

from __future__ import annotations

import math

import numpy as np

from ._checks import as_positive
from .domain import Box
from .targets import GaussianMixture

__all__ = ["corner_start", "peaky_map"]


def peaky_map(
    size: float = 1024.0,
    n_bumps: int = 12,
    support: float = 0.27,
    truncate: float = 2.0,
    seed: int = 0,
    floor: float = 1e-3,
) -> GaussianMixture:
    r"""A square map of side ``size`` whose target is zero except on ``n_bumps`` disjoint bumps.

    Parameters
    ----------
    size : float
        Side of the square domain ``[0, size]^2``.
    n_bumps : int
        Number of bumps (>= 1).
    support : float
        Fraction of the area the bumps cover, in (0, 0.5].
    truncate : float
        Each bump is cut at this many standard deviations.
    seed : int
    floor : float
        See :class:`swarmcover.Target`.

    Returns
    -------
    GaussianMixture
        Bump radii (``truncate`` sigma) vary by a factor 2, weights by a factor 4.
    """
    size = as_positive(size, "size")
    if int(n_bumps) != n_bumps or n_bumps < 1:
        raise ValueError(f"n_bumps must be a positive integer, got {n_bumps!r}")
    if not 0 < support <= 0.5:
        raise ValueError(f"support must lie in (0, 0.5], got {support!r}")
    truncate = as_positive(truncate, "truncate")
    rng = np.random.default_rng(seed)
    rel = rng.uniform(1.0, 2.0, n_bumps)
    radii = rel * math.sqrt(support * size * size / (math.pi * np.sum(rel**2)))
    centres: list[np.ndarray] = []
    for r in radii:
        for _ in range(10_000):
            c = rng.uniform(r, size - r, 2)
            if all(np.linalg.norm(c - o) > r + ro for o, ro in zip(centres, radii, strict=False)):
                centres.append(c)
                break
        else:
            raise ValueError("cannot place the bumps without overlap; lower support or n_bumps")
    sigma = radii / truncate
    weights = rng.uniform(1.0, 4.0, n_bumps)
    return GaussianMixture(
        np.array(centres), sigma**2, weights, bounds=[(0.0, size), (0.0, size)], floor=floor,
        truncate=truncate,
    )  # fmt: skip


def corner_start(box: Box, n: int, spacing: float, seed: int = 0) -> np.ndarray:
    """``n`` agents packed in a square in the lower-left corner of ``box``, about ``spacing`` apart,
    jittered by a tenth of it (seeded); shape ``(n, d)``."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    spacing = as_positive(spacing, "spacing")
    d = box.dim
    side = math.ceil(n ** (1.0 / d))
    grid = np.stack(np.meshgrid(*[np.arange(side)] * d, indexing="ij"), -1).reshape(-1, d)[:n]
    rng = np.random.default_rng(seed)
    x = box.lo + spacing * (grid + 0.5) + rng.uniform(-0.1, 0.1, (n, d)) * spacing
    return box.clip(x)
