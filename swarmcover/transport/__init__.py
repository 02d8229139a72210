"""Deployment planning by the blob method for dynamic optimal transport (pure core).

>>> import numpy as np
>>> from swarmcover.transport import plan
>>> rng = np.random.default_rng(0)
>>> p = plan(rng.random((8, 2)) * 0.2, rng.random((8, 2)) * 0.2 + 0.8, steps=8)
>>> p.paths.shape
(9, 8, 2)
"""

from __future__ import annotations

from .geometry import Obstacles
from .plan import Plan, PlanInfeasible, StageRecord
from .solver import plan
from .terminal import terminal_for

__all__ = ["Obstacles", "Plan", "PlanInfeasible", "StageRecord", "plan", "terminal_for"]
