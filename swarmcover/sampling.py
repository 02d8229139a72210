r"""Deterministic sampling of a target by running the blob flow with an annealed :math:`\varepsilon`.

A flow with small :math:`\varepsilon` only sees its neighbourhood: on a multimodal target, agents
that start in the wrong proportions between modes separated by a low-density gap stay there (the
gap's large :math:`1/\bar\rho` walls them in). Starting with :math:`\varepsilon` at the scale of the
domain lets mass move between modes first; shrinking it geometrically to the fleet's resolution
then refines the pattern ("annealing", suggested in the Q&A of Craig's talk).

Time scale: near equilibrium the law diffuses like :math:`\partial_t\rho \approx \Delta\rho`
(:math:`\rho/\bar\rho \approx 1`), so features of size :math:`\ell` relax in a time of order
:math:`\ell^2`; stage ``k`` with :math:`\varepsilon_k` runs for ``stage_time`` :math:`\cdot
\max(\varepsilon_k, \ell_{\min})^2` where the first stage uses the domain's diameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_points, as_positive
from .integrate import FlowResult, flow
from .law import BlobLaw
from .targets import Target

__all__ = ["SampleResult", "anneal_schedule", "default_eps", "sample"]


@dataclass(frozen=True)
class SampleResult:
    """Outcome of :func:`sample`.

    Attributes
    ----------
    points : ndarray, shape (n, d)
    eps_schedule : ndarray, shape (k,)
        The mollifier width of each stage.
    stages : tuple of FlowResult
        One per stage.
    """

    points: np.ndarray
    eps_schedule: np.ndarray
    stages: tuple[FlowResult, ...]


def default_eps(target: Target, n: int) -> float:
    """The fleet spacing :math:`(|\\Omega|/n)^{1/d}`, a natural final :math:`\\varepsilon`."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return float((target.box.volume / n) ** (1.0 / target.dim))


def anneal_schedule(target: Target, eps_final: float, stages: int = 6) -> np.ndarray:
    """Geometric schedule from a quarter of the box's shortest side down to ``eps_final``."""
    eps_final = as_positive(eps_final, "eps_final")
    if stages < 1:
        raise ValueError(f"stages must be >= 1, got {stages}")
    start = max(0.25 * float(target.box.size.min()), eps_final)
    return np.geomspace(start, eps_final, stages) if stages > 1 else np.array([eps_final])


def sample(
    target: Target,
    n: int,
    *,
    eps: float | None = None,
    anneal: bool = True,
    stages: int = 6,
    stage_time: float = 2.0,
    init: ArrayLike | None = None,
    seed: int = 0,
    boundary: str = "reflect",
    method: str = "auto",
    smoothing: float = 1.0,
) -> SampleResult:
    r"""Return ``n`` points representing ``target``, by the blob flow (deterministic given ``seed``).

    Parameters
    ----------
    target : Target
    n : int
        Number of points (>= 1).
    eps : float, optional
        Final mollifier width (default :func:`default_eps`).
    anneal : bool
        Shrink :math:`\varepsilon` geometrically from the domain scale (default). Without
        annealing the flow runs at ``eps`` only, for the same total time; on multimodal targets
        agents then keep the split between modes they started with.
    stages : int
        Number of annealing stages.
    stage_time : float
        Each stage runs for ``stage_time`` relaxation times (see module docstring).
    init : array_like, shape (n, d), optional
        Starting points (default: a scrambled Halton sequence in the box, seeded).
    seed : int
    boundary, method : see :class:`BlobLaw` and :func:`flow`.
    smoothing : float
        Each stage smooths the target by ``smoothing * eps_k`` before inverting it
        (``target_smoothing`` of :class:`BlobLaw`); 0 gives the literal law.

    Returns
    -------
    SampleResult
    """
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    n = int(n)
    box = target.box
    if init is None:
        from scipy.stats import qmc  # imported here: scipy.stats costs 0.6 s, agents never sample

        x = box.lo + box.size * qmc.Halton(d=target.dim, scramble=True, seed=seed).random(n)
    else:
        x = box.clip(as_points(init, target.dim, "init"))
        if x.shape[0] != n:
            raise ValueError(f"init must have {n} rows, got {x.shape[0]}")
    eps_final = default_eps(target, n) if eps is None else as_positive(eps, "eps")
    schedule = anneal_schedule(target, eps_final, stages)
    diameter = float(np.linalg.norm(box.size))
    durations = [stage_time * e**2 for e in schedule]
    durations[0] = stage_time * diameter**2 * 0.25
    if not anneal:  # the same total time at the final eps only
        schedule, durations = np.array([eps_final]), [sum(durations)]
    results = []
    for e, t_stage in zip(schedule, durations, strict=True):
        law = BlobLaw(target, float(e), 1.0 / n, boundary=boundary, target_smoothing=smoothing * e)
        res = flow(law, x, t_stage, method=method)
        results.append(res)
        x = res.x
    return SampleResult(points=x, eps_schedule=np.asarray(schedule), stages=tuple(results))
