r"""The planner: a blob method for dynamic optimal transport with a soft terminal constraint.

Unknowns are every robot's positions at the time nodes :math:`t_k = k/K`, :math:`k = 1..K` on a
unit time base (node 0 is the start). Order 1 minimises the kinetic energy, order 2 the
acceleration energy, plus the blob terminal term (:mod:`.terminal`) and penalties:

.. math::

    J = \sum_i m_i \sum_{k=0}^{K-1} \frac{|x_i^{k+1} - x_i^k|^2}{\Delta t}
      + \frac{\lambda}{2}\,\mathrm{MMD}^2_{s}\Big(\sum_i m_i \delta_{x_i^K},\ \bar\rho\Big)
      + w \sum (c_{on} - c)_+^2 + w_{sep} \sum_{k, i<j} (r_{on} - |x_i^k - x_j^k|)_+^2,

(order 2: :math:`\sum_i m_i \sum_k |x_i^{k+1} - 2x_i^k + x_i^{k-1}|^2 / \Delta t^3` with the
initial and terminal velocities imposed through ghost nodes). Without obstacles or separation at
order 1 the interior nodes of the optimum are straight lines at constant speed, so only the end
points are unknowns (exact, and :math:`K` times cheaper).

The solver reaches the good minimum by (1) a warm start: the end points of a quantised target are
assigned to robots by :func:`scipy.optimize.linear_sum_assignment` on squared route lengths, and
each robot starts on its shortest route; (2) annealing: the mollifier width goes from the target's
spread down to half the robots' spacing while the penalty :math:`\lambda` rises so that the
terminal offset a robot can keep, :math:`e = 2 N s^2 \bar v / \lambda`, shrinks to 2 % of the
spacing; (3) L-BFGS-B (line-searched, so stable for stiff penalties) from each stage's answer;
(4) continuation of the obstacle and separation weights until the exact checks pass.
The time base is scaled last: for order 1 a plan on :math:`[0, T]` has the same paths with speeds
divided by :math:`T`, so ``speed_limit`` fixes :math:`T`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment, minimize
from scipy.spatial import cKDTree

from .._checks import as_points
from ..domain import Box, Zone
from ..targets import Target
from .geometry import Obstacles
from .objective import Problem
from .plan import Plan, PlanInfeasible, StageRecord
from .routes import Roadmap, resample
from .terminal import PointSetTerm, TerminalTerm, terminal_for

__all__ = ["plan"]

log = logging.getLogger(__name__)

_RETRIES = 8


def _checked_starts(
    x0, term: TerminalTerm, obstacles: Obstacles, box: Box | None, r_min: float
) -> np.ndarray:
    x0 = as_points(x0, term.dim, "starts")
    if x0.shape[0] == 0:
        raise ValueError("starts is empty: there is no robot to plan for")
    if box is not None and not np.all(box.contains(x0)):
        i = int(np.flatnonzero(~box.contains(x0))[0])
        raise ValueError(f"start {i} at {x0[i].tolist()} is outside the domain {box.bounds.tolist()}")
    if obstacles:
        clear = obstacles.point_clearance(x0)
        if np.any(clear < obstacles.clearance):
            i = int(np.argmin(clear))
            where = "inside an obstacle" if clear[i] < 0 else f"within clearance {obstacles.clearance} of one"
            raise ValueError(f"start {i} at {x0[i].tolist()} is {where}")
    if r_min > 0 and x0.shape[0] > 1:
        pairs = cKDTree(x0).query_pairs(r_min * (1 - 1e-9), output_type="ndarray")
        if len(pairs):
            i, j = pairs[0]
            raise ValueError(f"starts {i} and {j} are closer than r_min = {r_min}")
    return x0


def _reachable_ends(q: np.ndarray, obstacles: Obstacles, box: Box | None, n: int) -> np.ndarray:
    """Drop quantised end points inside obstacles or outside the box; refill to ``n`` points."""
    keep = np.ones(q.shape[0], dtype=bool)
    if obstacles:
        keep &= obstacles.point_clearance(q) >= obstacles.clearance
    if box is not None:
        keep &= box.contains(q)
    if not np.any(keep):
        raise ValueError(
            "the target has no reachable mass: all of it lies inside obstacles or outside the domain"
        )
    q = q[keep]
    return q[np.arange(n) % q.shape[0]] if q.shape[0] != n else q


def _warm_start(x0, q, roadmap: Roadmap | None, steps: int, mode: str, term: TerminalTerm):
    """Initial nodes ``(K+1, N, d)`` and the RMS route length."""
    n = x0.shape[0]
    if mode == "mean":
        ends = np.repeat(term.mean[None], n, axis=0)
        routes = [np.stack([x0[i], ends[i]]) for i in range(n)]
    else:
        lengths = (
            roadmap.lengths(x0, q) if roadmap is not None else np.linalg.norm(x0[:, None] - q[None], axis=2)
        )
        bad = ~np.isfinite(lengths).any(axis=1)
        if np.any(bad):
            raise ValueError(
                f"start {int(np.flatnonzero(bad)[0])} cannot reach any of the target around the obstacles"
            )
        cost = np.where(np.isfinite(lengths), lengths**2, 1e300)
        rows, cols = linear_sum_assignment(cost)
        order = np.empty(n, dtype=np.int64)
        order[rows] = cols
        ends = q[order]
        routes = [
            roadmap.route(x0[i], ends[i]) if roadmap is not None else np.stack([x0[i], ends[i]])
            for i in range(n)
        ]
    nodes = np.stack([resample(r, steps + 1) for r in routes], axis=1)
    length = np.linalg.norm(np.diff(nodes, axis=0), axis=2).sum(axis=0)
    return nodes, float(np.sqrt(np.mean(length**2))), float(length.max())


def _velocity(v, n: int, d: int, duration: float | None, name: str) -> np.ndarray:
    if v is None:
        return np.zeros((n, d))
    arr = np.broadcast_to(np.asarray(v, dtype=np.float64), (n, d)).copy()
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    if np.any(arr != 0) and duration is None:
        raise ValueError(f"a non-zero {name} needs a fixed duration (velocities depend on the time base)")
    return arr * (duration or 1.0)


def plan(
    starts,
    target,
    *,
    weights=None,
    steps: int = 16,
    order: int = 1,
    obstacles: Sequence[Zone] = (),
    clearance: float = 0.0,
    bounds=None,
    r_min: float = 0.0,
    speed_limit: float | None = None,
    duration: float | None = None,
    v_start=None,
    v_end=None,
    eps: float | None = None,
    stages: int = 6,
    misfit: float = 0.02,
    warm_start: str = "assignment",
    strict: bool = True,
    seed: int = 0,
) -> Plan:
    r"""Plan every robot's path from ``starts`` to the ``target`` (see the module doc for the maths).

    Parameters
    ----------
    starts : array_like, shape (N, d)
    target : Target or array_like, shape (M, d)
        A density (closed forms for Gaussian mixtures and uniform boxes, quadrature otherwise) or
        a point set, weighted by ``weights`` ``(M,)`` (default equal).
    steps : int
        Time nodes after the start, ``K``.
    order : {1, 2}
        Velocity control (kinetic energy) or acceleration control (``v_start``/``v_end`` imposed).
    obstacles : sequence of Disk, Rectangle, Polygon
        Zones every path segment must clear by ``clearance``. A :class:`Target`'s own zones are
        added.
    bounds : array_like (d, 2) or Box, optional
        Keep every node inside (default: a Target's box; none for a point set).
    r_min : float
        Minimum distance between robots at every time node (0: not enforced).
    speed_limit, duration : float, optional
        The time base: ``duration`` seconds, or the shortest one that keeps every segment under
        ``speed_limit`` (order 1 and rest-to-rest order 2), or 1.
    eps : float, optional
        The final mollifier width (default half the robots' spacing on the target).
    stages : int
        Annealing stages (mollifier from the target's spread down to ``eps``).
    misfit : float
        The terminal offset a robot may keep, as a fraction of the spacing; sets the final penalty.
    warm_start : {"assignment", "mean"}
        Routes to assigned end points (default), or straight lines to the target's mean (the cold
        start of the published code, for comparison).
    strict : bool
        Raise :class:`PlanInfeasible` if an exact check still fails after continuation.
    seed : int
        Seeds the quantisation of a continuous target.

    Returns
    -------
    Plan
    """
    t_start = time.perf_counter()
    term = terminal_for(target, weights)
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    if not isinstance(steps, (int, np.integer)) or steps < order:
        raise ValueError(f"steps must be an integer >= {order}, got {steps!r}")
    if warm_start not in ("assignment", "mean"):
        raise ValueError(f"warm_start must be 'assignment' or 'mean', got {warm_start!r}")
    if not np.isfinite(r_min) or r_min < 0:
        raise ValueError(f"r_min must be finite and >= 0, got {r_min!r}")
    for name, val in (("speed_limit", speed_limit), ("duration", duration), ("eps", eps), ("misfit", misfit)):
        if val is not None and (not np.isfinite(val) or val <= 0):
            raise ValueError(f"{name} must be finite and > 0, got {val!r}")
    zones = list(obstacles) + (list(target.zones) if isinstance(target, Target) else [])
    obs = Obstacles(zones, term.dim, clearance)
    box = bounds if isinstance(bounds, Box) else (Box(bounds) if bounds is not None else None)
    if box is None and isinstance(target, Target):
        box = target.box
    x0 = _checked_starts(starts, term, obs, box, r_min)
    n, d = x0.shape
    m = np.full(n, 1.0 / n)
    rng = np.random.default_rng(seed)
    q = _reachable_ends(term.quantize(n, rng), obs, box, n)
    if hasattr(term, "points") and obs:
        inside = obs.point_clearance(term.points) < obs.clearance
        if np.all(inside):
            raise ValueError("the target has no reachable mass: every target point is inside an obstacle")
    margin = 0.01 * min(obs.size, term.spacing(n) * 2)
    roadmap = Roadmap(obs, margin, inside=box.contains if box is not None else None) if obs else None
    nodes0, vbar, vmax = _warm_start(x0, q, roadmap, int(steps), warm_start, term)
    v0 = _velocity(v_start, n, d, duration, "v_start")
    v1 = _velocity(v_end, n, d, duration, "v_end")
    # length scales; a target of one point (or coincident points) has none, so it borrows one
    # from the distance to travel
    h = term.spacing(n)
    if not h > 1e-9 * max(vmax, 1e-300):
        h = 0.05 * max(vmax, 1.0)
    spread = max(term.spread, h)
    vbar = max(vbar, h)
    # a robot per target point: a narrow mollifier resolves each point; a density: the kernel must
    # reach the neighbours (narrower than the spacing, robots only climb toward the mode)
    matched = isinstance(term, PointSetTerm) and term.points.shape[0] <= n
    eps_f = float(eps) if eps is not None else (h / 2 if matched else 2 * h)
    eps_0 = max(eps_f, spread)
    stages = max(1, int(stages))
    epss = np.geomspace(eps_0, eps_f, stages)
    offs = np.geomspace(max(0.25 * spread, misfit * h), misfit * h, stages)
    # the balance offset, and never so weak that leaving a target costs less than reaching it:
    # abandoning one end point saves m v^2 of kinetic energy and costs about lambda m^2 of MMD^2
    # order 2: reaching one unit farther costs 12 times the energy at rest-to-rest (the cubic)
    stiffer = (
        1.0 if order == 1 else 12.0 + 4 * float(np.max(np.sum(v0**2 + v1**2, axis=1))) / max(vmax, h) ** 2
    )
    lams = np.maximum(2 * n * (2 * epss**2) * stiffer * vbar / offs, 4 * n * stiffer * max(vmax, h) ** 2)
    # ... and stiff enough against a shift of the whole fleet (for a density the terminal term's
    # resistance to a common translation can be far weaker than to one robot's offset)
    drift = stiffer * float(np.linalg.norm(np.mean(nodes0[-1] - x0, axis=0)))
    for j in range(stages):
        stiff = _shift_stiffness(term, nodes0[-1], m, np.sqrt(2.0) * epss[j])
        if stiff > 0:
            lams[j] = max(lams[j], 4 * drift / (stiff * offs[j]))
    prob = Problem(
        x0=x0, m=m, term=term, steps=int(steps), order=order, obstacles=obs, box=box, r_min=float(r_min),
        v0=v0, v_end=v1, ends_only=(order == 1 and not obs and r_min == 0), c_on=obs.clearance + margin,
        w_obs=1e3 * steps / n, w_sep=1e3 * steps / n,
    )  # fmt: skip
    if prob.ends_only:
        z = nodes0[-1].ravel().copy()
    elif order == 2:
        z = nodes0[1:-1].ravel().copy()
    else:
        z = nodes0[1:].ravel().copy()
    scale = vbar**2
    record: list[StageRecord] = []

    def solve(z, s_eps, lam, maxiter):
        t0 = time.perf_counter()
        s = np.sqrt(2.0) * s_eps
        res = minimize(
            prob.objective, z, args=(s, lam, scale), jac=True, method="L-BFGS-B",
            options={"maxiter": maxiter, "maxfun": 4 * maxiter, "ftol": 1e-8, "gtol": 1e-12},
        )  # fmt: skip
        nodes = prob.nodes(res.x)
        record.append(
            StageRecord(
                eps=float(s_eps), penalty=float(lam), iterations=int(res.nit), evaluations=int(res.nfev),
                objective=float(res.fun * scale), cost=prob.energy(nodes)[0],
                mmd=float(np.sqrt(max(prob.terminal(nodes[-1], s)[0], 0.0))),
                clearance=float(obs.path_clearance(nodes).min()), separation=_separation(nodes),
                seconds=time.perf_counter() - t0, message=str(res.message),
            )
        )  # fmt: skip
        log.debug("stage %s", record[-1])
        return res.x

    for j in range(stages):
        z = solve(z, epss[j], lams[j], 100 if j < stages - 1 else 1000)
    for _ in range(_RETRIES):
        nodes = prob.nodes(z)
        bad_obs = obs and obs.path_clearance(nodes).min() < obs.clearance
        bad_box = box is not None and not np.all(box.contains(nodes.reshape(-1, d)))
        bad_sep = r_min > 0 and _separation(nodes) < r_min
        if not (bad_obs or bad_box or bad_sep):
            break
        if bad_obs or bad_box:
            prob.w_obs *= 10
        if bad_sep:
            prob.w_sep *= 10
        z = solve(z, epss[-1], lams[-1], 1000)
    nodes = prob.nodes(z)
    return _finish(prob, nodes, epss[-1], record, speed_limit, duration, strict, t_start)


def _shift_stiffness(term: TerminalTerm, q: np.ndarray, m: np.ndarray, s: float) -> float:
    r"""The smallest curvature of :math:`\mathrm{MMD}^2` under a common shift of the points ``q``:
    :math:`-2 \sum_i m_i \partial_a^2 c(q_i)` (the fleet's own kernel sum does not change)."""
    step = 1e-3 * s
    curv = []
    for a in range(q.shape[1]):
        e = np.zeros(q.shape[1])
        e[a] = step
        gp = term.cross(q + e, s)[1][:, a]
        gm = term.cross(q - e, s)[1][:, a]
        curv.append(-2.0 * float(m @ (gp - gm)) / (2 * step))
    return min(curv)


def _separation(nodes: np.ndarray) -> float:
    if nodes.shape[1] < 2:
        return float("inf")
    return float(min(cKDTree(nodes[k]).query(nodes[k], k=2)[0][:, 1].min() for k in range(nodes.shape[0])))


def _finish(prob: Problem, nodes, eps_f, record, speed_limit, duration, strict, t_start) -> Plan:
    obs, d = prob.obstacles, nodes.shape[2]
    clear = float(obs.path_clearance(nodes).min())
    sep = _separation(nodes)
    problems = []
    if obs and clear < obs.clearance:
        worst = int(np.argmin(obs.path_clearance(nodes)))
        problems.append(
            f"robot {worst}'s path comes within {clear:.3g} of an obstacle (needs {obs.clearance})"
        )
    if prob.box is not None and not np.all(prob.box.contains(nodes.reshape(-1, d), tol=1e-9)):
        problems.append("a path leaves the domain")
    if prob.r_min > 0 and sep < prob.r_min:
        problems.append(f"two robots come within {sep:.3g} of each other (r_min {prob.r_min})")
    if problems and strict:
        raise PlanInfeasible("; ".join(problems))
    for p in problems:
        log.warning("plan: %s", p)
    unit_speed = float(np.linalg.norm(np.diff(nodes, axis=0), axis=2).max()) * prob.steps
    needed = unit_speed / speed_limit if speed_limit is not None else None
    if duration is None:
        duration = needed if needed else 1.0
    elif needed is not None and needed > duration * (1 + 1e-9):
        raise ValueError(
            f"duration {duration} s is too short: the plan's fastest robot needs {needed:.4g} s "
            f"at speed_limit {speed_limit}"
        )
    s = np.sqrt(2.0) * eps_f
    dx = np.diff(nodes, axis=0)
    return Plan(
        times=np.linspace(0.0, float(duration), prob.steps + 1),
        paths=nodes,
        masses=prob.m.copy(),
        order=prob.order,
        cost=prob.energy(nodes)[0],
        kinetic=float(np.sum(prob.m[None, :, None] * dx * dx)) * prob.steps,
        misfit=float(np.sqrt(max(prob.terminal(nodes[-1], s)[0], 0.0))),
        clearance=clear,
        separation=sep,
        duration=float(duration),
        eps=float(eps_f),
        stages=tuple(record),
        seconds=time.perf_counter() - t_start,
    )
