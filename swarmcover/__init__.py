"""swarmcover: decentralized multi-robot coverage with the blob method.

The pure core (no I/O): targets, the control law, integration, metrics and the sampler.

>>> import swarmcover as sc
>>> target = sc.GaussianMixture([[0.3, 0.5], [0.7, 0.5]], [0.01, 0.01], bounds=[(0, 1), (0, 1)])
>>> points = sc.sample(target, 50).points
>>> points.shape
(50, 2)

The names below are loaded on first use (PEP 562), so that a process that needs one small module
(an agent needs :mod:`swarmcover.local` and :mod:`swarmcover.protocol`) does not load scipy and
numba with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "maps": None,
    "metrics": None,
    "transport": None,
    "Controller": "control",
    "Separation": "control",
    "gain_for": "control",
    "saturate": "control",
    "Box": "domain",
    "Disk": "domain",
    "Polygon": "domain",
    "Rectangle": "domain",
    "Zone": "domain",
    "FlowResult": "integrate",
    "flow": "integrate",
    "BlobLaw": "law",
    "Evaluation": "law",
    "LloydResult": "lloyd",
    "lloyd": "lloyd",
    "ZoneRepulsion": "potentials",
    "SampleResult": "sampling",
    "anneal_schedule": "sampling",
    "default_eps": "sampling",
    "sample": "sampling",
    "GaussianMixture": "targets",
    "Raster": "targets",
    "Target": "targets",
    "Uniform": "targets",
}

__all__ = [
    "BlobLaw",
    "Box",
    "Controller",
    "Disk",
    "Evaluation",
    "FlowResult",
    "GaussianMixture",
    "LloydResult",
    "Polygon",
    "Raster",
    "Rectangle",
    "SampleResult",
    "Separation",
    "Target",
    "Uniform",
    "Zone",
    "ZoneRepulsion",
    "anneal_schedule",
    "default_eps",
    "flow",
    "gain_for",
    "lloyd",
    "maps",
    "metrics",
    "sample",
    "saturate",
    "transport",
]

__version__ = "0.1.0"


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'swarmcover' has no attribute {name!r}")
    where = _WHERE[name]
    module = importlib.import_module(f".{where or name}", __name__)
    if where is None:
        globals()[name] = module
        return module
    # bind every name of that module now: importing ``.lloyd`` set the attribute ``lloyd`` to the
    # submodule, which must become the function of the same name
    for other, home in _WHERE.items():
        if home == where:
            globals()[other] = getattr(module, other)
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from . import maps, metrics, transport
    from .control import Controller, Separation, gain_for, saturate
    from .domain import Box, Disk, Polygon, Rectangle, Zone
    from .integrate import FlowResult, flow
    from .law import BlobLaw, Evaluation
    from .lloyd import LloydResult, lloyd
    from .potentials import ZoneRepulsion
    from .sampling import SampleResult, anneal_schedule, default_eps, sample
    from .targets import GaussianMixture, Raster, Target, Uniform
