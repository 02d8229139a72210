r"""The blob-method coverage law (Craig, Elamvazhuthi, Haberland, Turanova 2023).

The fleet density :math:`\rho` should follow the weighted porous-medium equation
:math:`\partial_t\rho = \nabla\cdot(\rho\nabla(\rho/\bar\rho))`, the Wasserstein gradient flow of
:math:`\tfrac12\int\rho^2/\bar\rho`. The blob method regularises the energy with a Gaussian mollifier
:math:`\phi_\varepsilon` (standard deviation :math:`\varepsilon`),

.. math::

    E_\varepsilon(\rho) = \frac12 \int_\Omega \frac{(\phi_\varepsilon * \rho)^2}{\bar\rho},

and moves agent :math:`i` (mass :math:`m_i`) down its gradient,
:math:`\dot x_i = -\frac{1}{m_i}\nabla_{x_i} E_\varepsilon`. Because a product of Gaussians is a
Gaussian centred at the midpoint :math:`m_{ij} = (x_i + x_j)/2`, this is exactly

.. math::

    \dot x_i = \sum_j m_j\, \phi_{\sqrt2\varepsilon}(x_i - x_j)
        \Big[\frac{x_i - x_j}{2\varepsilon^2} W(m_{ij}) - \frac12 \nabla W(m_{ij})\Big],
    \qquad W = \phi_{\varepsilon/\sqrt2} * \frac{1}{\bar\rho},

the sum including :math:`j = i`. An agent needs only its neighbours' positions and :math:`W`,
:math:`\nabla W` near itself.

**Truncation.** Pairs farther apart than :math:`r = c\sqrt2\varepsilon` (``cutoff`` :math:`c`,
default 4) are dropped; their Gaussian weight is below :math:`e^{-c^2/2}` (3.4e-4 for c = 4) of a
coincident pair's. :attr:`BlobLaw.radius` is therefore the communication radius an agent needs.

**Walls.** With ``boundary="reflect"`` (default) the mollifier is the Neumann heat kernel of the box
(the method of images): each agent also interacts with the mirror images, across every wall within
:math:`r`, of its neighbours and of itself, and :math:`W` is computed from the evenly extended
:math:`1/\bar\rho`. This is the exact gradient flow of :math:`E_\varepsilon` with the reflected
mollifier, so the walls are no-flux and agents are not pushed onto them. With ``boundary="free"`` the
law is the literal one on :math:`\mathbb R^d` with :math:`\bar\rho` floored outside the box.

References
----------
K. Craig, K. Elamvazhuthi, M. Haberland, O. Turanova, *A blob method for inhomogeneous diffusion with
applications to multi-agent control and sampling*, Math. Comp. 92 (2023). arXiv:2202.12927.

J. A. Carrillo, K. Craig, F. S. Patacchini, *A blob method for diffusion*, Calc. Var. PDE 58 (2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ._checks import as_masses, as_points, as_positive
from .field import BOUNDARIES, SmoothedReciprocal
from .kernels import law_radius
from .local import local_velocity
from .pairwise import PairwiseEvaluator, choose_method
from .targets import Target

__all__ = ["METHODS", "BlobLaw", "Evaluation", "local_velocity"]

METHODS = ("auto", "pairwise", "mesh")
ExternalField = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    """The law evaluated on a configuration.

    Attributes
    ----------
    velocities : ndarray, shape (n, d)
    energy : float
        The blob energy :math:`E_\\varepsilon` of the configuration (same truncation and method).
    method : str
        ``"pairwise"`` or ``"mesh"``.
    """

    velocities: np.ndarray
    energy: float
    method: str


class BlobLaw:
    r"""The blob coverage law for a target density.

    Parameters
    ----------
    target : Target
        The coverage density :math:`\bar\rho`.
    eps : float
        Standard deviation :math:`\varepsilon` of the Gaussian mollifier (> 0). A good choice is
        one to two times the fleet's spacing :math:`(|\Omega|/n)^{1/d}`.
    mass : float or array_like, shape (n,)
        Each agent's mass (a scalar: every agent's; usually ``1/n``), or one per agent.
    boundary : {"reflect", "free"}
        No-flux walls by the method of images (default), or the literal law on the plane.
    cutoff : float
        Truncation radius in units of :math:`\sqrt2\varepsilon` (default 4).
    oversample : float
        Grid nodes per :math:`\varepsilon/\sqrt2` for the :math:`W` field (default 4; sampling
        error :math:`\sim 0.04\,\text{oversample}^{-4}` relative).
    external : callable, optional
        An external velocity field ``(n, d) -> (n, d)`` added to the law (obstacle repulsion,
        geofence); see :mod:`swarmcover.potentials`.
    mesh_cells : int, optional
        Cells along the longest axis for ``method="mesh"`` (default: spacing :math:`\varepsilon/2`,
        at most 1024).
    target_smoothing : float
        Standard deviation :math:`\sigma` of a Gaussian applied to the target before it is floored
        and inverted, :math:`w = 1/\max(\phi_\sigma*\bar\rho, f)` (default 0: the literal law).
        With :math:`\sigma = \varepsilon` the energy is
        :math:`\frac12\int(\phi_\varepsilon*\rho)^2/(\phi_\varepsilon*\bar\rho)`, minimised by
        :math:`\rho = \bar\rho` at every :math:`\varepsilon`; low-density gaps then no longer trap
        agents (see :mod:`swarmcover.sampling`).

    Examples
    --------
    >>> import numpy as np
    >>> from swarmcover import BlobLaw, Uniform
    >>> law = BlobLaw(Uniform([(0, 1), (0, 1)]), eps=0.1, mass=1 / 50)
    >>> X = np.random.default_rng(0).random((50, 2))
    >>> law.velocities(X).shape
    (50, 2)
    """

    def __init__(
        self,
        target: Target,
        eps: float,
        mass: float | ArrayLike,
        *,
        boundary: str = "reflect",
        cutoff: float = 4.0,
        oversample: float = 4.0,
        external: ExternalField | None = None,
        mesh_cells: int | None = None,
        target_smoothing: float = 0.0,
    ) -> None:
        if not isinstance(target, Target):
            raise ValueError(f"target must be a swarmcover Target, got {type(target).__name__}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        self.target = target
        self.eps = as_positive(eps, "eps")
        self.cutoff = as_positive(cutoff, "cutoff")
        self.boundary = boundary
        m = np.asarray(mass, dtype=np.float64)
        self.mass: float | np.ndarray = as_positive(float(m), "mass") if m.ndim == 0 else as_masses(m, len(m))
        if external is not None and not callable(external):
            raise ValueError("external must be a callable (n, d) -> (n, d)")
        self.external = external
        if mesh_cells is not None and (int(mesh_cells) != mesh_cells or mesh_cells < 4):
            raise ValueError(f"mesh_cells must be an integer >= 4, got {mesh_cells!r}")
        self.mesh_cells = mesh_cells
        self.radius = law_radius(self.eps, self.cutoff)
        self.field: SmoothedReciprocal = target.smoothed_reciprocal(
            self.eps / math.sqrt(2.0), 0.5 * self.radius + 1e-9, boundary, oversample,
            target_smoothing,
        )  # fmt: skip
        self.target_smoothing = self.field.target_smoothing
        self._pairs = PairwiseEvaluator(self)
        self._mesh = None

    @property
    def dim(self) -> int:
        """Dimension ``d`` of the domain."""
        return self.target.dim

    def _masses(self, n: int, mass: ArrayLike | None) -> np.ndarray:
        if mass is not None:
            return as_masses(mass, n)
        if isinstance(self.mass, np.ndarray):
            if self.mass.shape[0] != n:
                raise ValueError(f"the law holds {self.mass.shape[0]} per-agent masses but got {n} agents")
            return self.mass
        return np.full(n, self.mass)

    # ------------------------------------------------------------------ one agent
    def velocity(
        self,
        x: ArrayLike,
        neighbors: ArrayLike,
        *,
        mass: float | None = None,
        neighbor_mass: ArrayLike | None = None,
    ) -> np.ndarray:
        r"""One agent's velocity from its own position and its neighbours' positions only.

        This is what an agent process computes. Neighbours farther than :attr:`radius` are ignored
        (the same truncation as :meth:`velocities`); the agent's own mirror images and its
        neighbours' are formed here from the known walls.

        Parameters
        ----------
        x : array_like, shape (d,)
            The agent's position.
        neighbors : array_like, shape (k, d)
            Positions of the other agents it hears (``k`` may be 0).
        mass : float, optional
            The agent's own mass (default: the law's scalar mass).
        neighbor_mass : float or array_like, shape (k,), optional
            The neighbours' masses (default: the law's scalar mass).

        Returns
        -------
        ndarray, shape (d,)
        """
        d = self.dim
        xi = as_points(np.reshape(np.asarray(x, dtype=np.float64), (1, -1)), d, "x")
        nb = np.asarray(neighbors, dtype=np.float64)
        if nb.size == 0:
            nb = np.empty((0, d))
        nb = as_points(nb, d, "neighbors")
        self.target.box.require_inside(xi, "x")
        self.target.box.require_inside(nb, "neighbors")
        if isinstance(self.mass, np.ndarray) and (mass is None or neighbor_mass is None):
            raise ValueError("this law has per-agent masses: pass mass= and neighbor_mass=")
        mi = float(self.mass) if mass is None else as_positive(mass, "mass")
        mn = self._masses(nb.shape[0], neighbor_mass)
        v = local_velocity(
            xi[0], nb, mi, mn, eps=self.eps, cutoff=self.cutoff, coef=self.field.coef,
            origin=self.field.origin, spacing=self.field.spacing,
            box=self.target.box if self.boundary == "reflect" else None,
        )  # fmt: skip
        vel = v[None, :]
        _add_external(self.external, xi, vel)
        return vel[0]

    # ------------------------------------------------------------------ the fleet
    def evaluate(self, X: ArrayLike, *, method: str = "auto", mass: ArrayLike | None = None) -> Evaluation:
        r"""Velocities of every agent and the blob energy of the configuration.

        Parameters
        ----------
        X : array_like, shape (n, d)
            Agent positions, inside the box.
        method : {"auto", "pairwise", "mesh"}
            ``"pairwise"``: k-d-tree neighbour pairs within :attr:`radius` and the closed form;
            ``"mesh"``: particle-mesh (:mod:`swarmcover.mesh`); ``"auto"`` picks the cheaper.
        mass : float or array_like, shape (n,), optional
            Overrides the law's masses for this call.

        Returns
        -------
        Evaluation
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        X = as_points(X, self.dim)
        self.target.box.require_inside(X, "positions")
        m = self._masses(X.shape[0], mass)
        if method == "auto":
            method = choose_method(self, X.shape[0])
        if method == "mesh":
            vel, energy = self._mesh_evaluator().evaluate(X, m)
        else:
            vel, energy = self._pairs.evaluate(X, m)
        _add_external(self.external, X, vel)
        return Evaluation(vel, energy, method)

    def velocities(self, X: ArrayLike, *, method: str = "auto", mass: ArrayLike | None = None) -> np.ndarray:
        r"""Every agent's velocity, ``(n, d) -> (n, d)``; see :meth:`evaluate`."""
        return self.evaluate(X, method=method, mass=mass).velocities

    def energy(self, X: ArrayLike, *, mass: ArrayLike | None = None) -> float:
        r"""The blob energy :math:`E_\varepsilon = \frac12\sum_{ij} m_i m_j
        \phi_{\sqrt2\varepsilon}(x_i - x_j) W(m_{ij})` (pairwise, truncated at :attr:`radius`)."""
        return self.evaluate(X, method="pairwise", mass=mass).energy

    def _mesh_evaluator(self):
        if self._mesh is None:
            from .mesh import MeshEvaluator

            self._mesh = MeshEvaluator(self, self.mesh_cells)
        return self._mesh

    def __repr__(self) -> str:
        return (
            f"BlobLaw(target={self.target!r}, eps={self.eps:g}, boundary={self.boundary!r}, "
            f"radius={self.radius:g})"
        )


def _add_external(external: ExternalField | None, X: np.ndarray, vel: np.ndarray) -> None:
    """Add the external field at ``X`` ``(n, d)`` to ``vel`` ``(n, d)`` in place, checked."""
    if external is not None:
        ext = np.asarray(external(X), dtype=np.float64)
        if ext.shape != vel.shape or not np.all(np.isfinite(ext)):
            raise ValueError(
                f"external field returned shape {ext.shape} or non-finite values; expected finite {vel.shape}"
            )
        vel += ext
