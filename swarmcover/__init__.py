"""swarmcover: decentralized multi-robot coverage with the blob method.

The pure core (no I/O): targets, the control law, integration, metrics and the sampler.

>>> import swarmcover as sc
>>> target = sc.GaussianMixture([[0.3, 0.5], [0.7, 0.5]], [0.01, 0.01], bounds=[(0, 1), (0, 1)])
>>> points = sc.sample(target, 50).points
>>> points.shape
(50, 2)
"""

from . import maps, metrics
from .control import Controller, Separation, gain_for, saturate
from .domain import Box, Disk, Polygon, Rectangle, Zone
from .integrate import FlowResult, flow
from .law import BlobLaw, Evaluation
from .lloyd import LloydResult, lloyd
from .potentials import ZoneRepulsion
from .sampling import SampleResult, anneal_schedule, default_eps, sample
from .targets import GaussianMixture, Raster, Target, Uniform

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
]

__version__ = "0.1.0"
