"""Resolving a scenario: every ``auto`` decided, every file checked, the processes' configs made.

:func:`resolve` turns a loaded :class:`~swarmcover.launcher.scenario.Scenario` into a
:class:`ResolvedScenario`: the simulator's :class:`~swarmcover.simulator.config.SimConfig`, one agent
config per robot, the schedules, the deployment (and its planned paths) and the launcher's own
process-level failure schedule. Every error is a ``ValueError`` naming the file, the key and the
problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError

import swarmcover as sc
from swarmcover.agentspec import (
    AgentConfig,
    CurveKeys,
    DirectPeers,
    LocalTarget,
    MavlinkBody,
    Ros2Body,
    ScheduleSpec,
    SimBody,
    SimPeers,
    StageSpec,
)
from swarmcover.configfile import describe_validation_error
from swarmcover.coverage import default_r_min
from swarmcover.schedule import CoverageSchedule
from swarmcover.settings import AgentTimes, RenderSettings, SimulatorTimes
from swarmcover.simulator.config import FailureEvent, SimConfig

from .scenario import PROCESS_KINDS, Failure, Scenario

__all__ = ["END_BY", "ResolvedScenario", "resolve"]


@dataclass(frozen=True)
class ResolvedScenario:
    r"""A scenario with every ``auto`` decided and every file checked: ready to launch.

    Attributes
    ----------
    scenario : Scenario
    source : Path
        The scenario file.
    sim : SimConfig
        The simulator's config (``record`` unset and ``insecure``: the launcher sets the run folder
        and, unless told ``--insecure``, the run's CURVE keys).
    target : swarmcover.Target
    eps, spacing, speed_limit, rate_hz, r_min, smoothing : float
        The decided values (``spacing`` is :math:`(|\Omega|/n)^{1/d}`; ``eps`` and ``smoothing``
        are the final stage's).
    process_failures : list of Failure
        The failures the launcher carries out on processes (kinds :data:`PROCESS_KINDS`).
    schedule : CoverageSchedule
        What every agent follows from the start (one stage for ``schedule = "fixed"``).
    after_losses : CoverageSchedule or None
        What agents restart after losses (None: they never restart).
    drift_tau : float
        The agents' wind-estimate averaging time (world seconds; 0: none).
    """

    scenario: Scenario
    source: Path
    sim: SimConfig
    target: sc.Target
    eps: float
    spacing: float
    speed_limit: float
    rate_hz: float
    r_min: float
    smoothing: float
    process_failures: list[Failure]
    schedule: CoverageSchedule
    after_losses: CoverageSchedule | None
    drift_tau: float

    @property
    def roster(self) -> list[int]:
        return self.sim.roster

    def agent_config(
        self,
        agent_id: int,
        body: SimBody | MavlinkBody | Ros2Body,
        *,
        curve: CurveKeys | None = None,
        peers: SimPeers | DirectPeers | None = None,
        target: LocalTarget | None = None,
        telemetry: str | None = None,
    ) -> AgentConfig:
        """The agent config (``swarmcover agent --config``, :mod:`swarmcover.agentspec`) for robot
        ``agent_id`` on ``body``: the scenario's law and times; CURVE with ``curve``, else plaintext
        (``insecure``); beacons through the simulator unless ``peers`` are direct."""
        s = self.scenario
        security: dict = {"curve": curve} if curve is not None else {"insecure": True}
        extra = {"peers": peers, "target": target, "telemetry": telemetry}
        return AgentConfig(
            **security,
            agent_id=agent_id,
            name=f"{s.name}-{agent_id}",
            bounds=[tuple(b) for b in s.domain.bounds],
            boundary=s.domain.boundary,
            eps=self.schedule.stages[-1].eps,  # for an agent that runs no schedule (docs/protocol.md)
            schedule=ScheduleSpec(
                stages=_stages(self.schedule),
                after_losses=_stages(self.after_losses) if self.after_losses is not None else [],
                restart_losses=s.law.restart_losses if self.after_losses is not None else 0,
            ),
            drift_tau=self.drift_tau,
            cutoff=s.law.cutoff,
            mass=1.0 / s.fleet.size,
            speed_limit=self.speed_limit,
            gain=None if s.law.gain == "auto" else s.law.gain,
            mismatch=s.law.mismatch,
            r_min=self.r_min if self.r_min > 0 else None,
            rate_hz=self.rate_hz,
            **{k: getattr(s.agents, k) for k in AgentTimes.model_fields},
            body=body,
            **{k: v for k, v in extra.items() if v is not None},
        )


def _stages(schedule: CoverageSchedule) -> list[StageSpec]:
    return [StageSpec(eps=st.eps, smoothing=st.smoothing, duration=st.duration) for st in schedule.stages]


#: the annealed schedule's last stage starts by this fraction of the run (auto relax): the final
#: stage's slow rearrangements (a robot crossing between bumps) took up to 45 s of a 200 s run on
#: the sparse map, so a schedule ending by half the run left the cost 14 % above its final value
#: at half the run (docs/sparse-targets.md)
END_BY = 0.25


def _schedules(
    s: Scenario, target: sc.Target, spacing: float, speed: float
) -> tuple[CoverageSchedule, CoverageSchedule | None]:
    """The schedule every agent starts with and the one it restarts after losses (see ``[law]``)."""
    law, n = s.law, s.fleet.size
    if law.schedule == "fixed":
        eps = spacing if law.eps == "auto" else float(law.eps)
        return CoverageSchedule.fixed(eps, eps if law.smoothing == "auto" else float(law.smoothing)), None
    # final eps: 0.3 spacings for density matching, 0.15 for the service objective (measured best
    # for each on sparse maps: docs/sparse-targets.md)
    res = (0.15 if law.objective == "service" else 0.3) if law.eps == "auto" else float(law.eps) / spacing
    kw = {"resolution": res, "stages": law.stages, "mismatch": law.mismatch}
    start = None if law.start == "auto" else float(law.start)
    if law.relax == "auto":  # 6 relaxation times a stage, fewer (not under 2) to end by END_BY of the run
        cross = float(np.linalg.norm(target.box.size)) / speed
        per = CoverageSchedule.annealed(target, n, speed, start=start, relax=1.0, **kw).duration - cross
        relax = min(6.0, max(2.0, (END_BY * s.duration - cross) / per)) if per > 0 else 6.0
    else:
        relax = float(law.relax)
    first = CoverageSchedule.annealed(target, n, speed, start=start, relax=relax, **kw)
    return first, CoverageSchedule.after_losses(target, n, speed, relax=relax, **kw)


def _deploy(s: Scenario, target: sc.Target, spacing: float) -> np.ndarray:
    f, n = s.fleet, s.fleet.size
    rng = np.random.default_rng(s.seed)
    lo, hi = target.box.lo, target.box.hi
    size = hi - lo

    def free(p: np.ndarray) -> np.ndarray:
        ok = np.ones(len(p), dtype=bool)
        for z in target.zones:
            ok &= ~z.contains(p)
        return ok

    if f.deploy in ("depot", "random"):
        center = np.asarray(f.center, dtype=float) if f.center is not None else lo + 0.08 * size
        radius = f.radius if f.radius is not None else 0.5 * spacing
        got: list[np.ndarray] = []
        for _ in range(1000):
            if f.deploy == "depot":
                p = center + radius * rng.standard_normal((n, len(lo)))
            else:
                p = lo + size * rng.random((n, len(lo)))
            p = p[target.box.contains(p) & free(p)]
            got.append(p)
            if sum(len(g) for g in got) >= n:
                return np.concatenate(got)[:n]
        raise ValueError(f"fleet: cannot place {n} robots ({f.deploy}) outside the no-go zones in the domain")
    if f.deploy == "line":
        a, b = np.asarray(f.start, dtype=float), np.asarray(f.end, dtype=float)
        p = a + np.linspace(0.0, 1.0, n)[:, None] * (b - a)
    else:  # grid: about square cells over the domain, row by row, skipping no-go zones
        d = len(lo)
        cell = (target.box.volume / n) ** (1.0 / d)
        per = np.maximum(np.round(size / cell).astype(int), 1)
        while True:
            axes = [lo[k] + (np.arange(per[k]) + 0.5) * size[k] / per[k] for k in range(d)]
            p = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, d)
            p = p[free(p)]
            if len(p) >= n:
                p = p[:n]
                break
            if per.prod() > 100 * n:
                raise ValueError(f"fleet: a grid of {n} robots does not fit outside the no-go zones")
            per += 1
    bad = ~(target.box.contains(p) & free(p))
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"fleet: robot {k} starts at {p[k].tolist()}, outside the domain or inside a no-go zone"
        )
    return p


def _planned(s: Scenario, target: sc.Target, positions: np.ndarray, spacing: float, speed: float,
             r_min: float) -> list[dict]:  # fmt: skip
    """Every robot's planned path (``[deploy] plan = "transport"``), or none."""
    d = s.deploy
    if d.plan == "none":
        return []
    from scipy.spatial import cKDTree

    from swarmcover.transport import PlanInfeasible, plan

    goal = target.for_service() if s.law.objective == "service" else target
    # robots closer at the start than the law's separation: keep what they have
    closest = float(cKDTree(positions).query(positions, k=2)[0][:, 1].min()) if len(positions) > 1 else 0.0
    sep = min(r_min, 0.99 * closest)
    try:
        p = plan(positions, goal, steps=d.steps, speed_limit=d.speed_fraction * speed, r_min=sep,
                 clearance=0.1 * spacing if d.clearance == "auto" else float(d.clearance))  # fmt: skip
    except PlanInfeasible as exc:
        raise ValueError(f"no plan clears the zones: {exc}") from None
    times = p.times.tolist()
    return [{"agent_id": k, "times": times, "points": p.paths[:, k].tolist()} for k in range(p.n)]


def resolve(s: Scenario, source: str | Path, endpoint: str | None = None) -> ResolvedScenario:
    """Decide every ``auto``, check every file, and build the simulator's config."""
    source = Path(source)
    where = str(source)
    bounds = [tuple(b) for b in s.domain.bounds]
    t = s.target
    map_path = None
    if t.kind == "map":
        map_path = Path(t.map) if Path(t.map).is_absolute() else (source.parent / t.map)
        map_path = map_path.resolve()
        if not map_path.is_file():
            raise ValueError(f"{where}: target.map: demand map file not found: {map_path}")
    spec = {
        "map": str(map_path) if map_path is not None else None,
        "means": t.means,
        "covs": t.covs,
        "weights": t.weights,
        "truncate": t.truncate,
        "floor": t.floor,
        "zones": [z.model_dump() for z in t.zones],
    }
    try:
        from swarmcover.simulator.config import TargetSpec

        target = TargetSpec.model_validate(spec).build(bounds)
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"{where}: target: {exc}") from None
    n = s.fleet.size
    spacing = sc.default_eps(target, n)
    if s.law.r_min == "auto":
        r_min = default_r_min(target.for_service() if s.law.objective == "service" else target, n)
    else:
        r_min = float(s.law.r_min)
    diag = float(np.linalg.norm(target.box.size))
    speed = diag / 30.0 if s.control.speed_limit == "auto" else float(s.control.speed_limit)
    try:
        schedule, after = _schedules(s, target, spacing, speed)
    except ValueError as exc:
        raise ValueError(f"{where}: law: {exc}") from None
    final = schedule.stages[-1]
    eps, smoothing = final.eps, final.smoothing
    if s.deploy.plan != "none":
        # a planned deployment ends with the fleet spread over the target: the coarse stages that
        # find every bump from a depot would only stir it up; restarts after losses still anneal
        schedule = CoverageSchedule.fixed(eps, smoothing)
    drift_tau = 10.0 * s.control.tick if s.law.drift_tau == "auto" else float(s.law.drift_tau)
    states_per_wall_s = s.control.time_scale / s.control.tick
    if s.control.rate_hz != "auto":
        rate = float(s.control.rate_hz)
    elif s.control.clock == "lockstep":  # states come as fast as the fleet answers: no cap but the protocol's
        rate = 1000.0
    else:
        rate = min(1000.0, 2.0 * states_per_wall_s)
    if s.wind is not None:
        w = float(np.linalg.norm(s.wind.velocity))
        if w >= speed:
            raise ValueError(
                f"{where}: wind.velocity: wind speed {w:g} is not below the speed limit {speed:g}; "
                "the fleet could not hold its place"
            )
    try:
        positions = _deploy(s, target, spacing)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    try:
        paths = _planned(s, target, positions, spacing, speed, r_min)
    except ValueError as exc:
        raise ValueError(f"{where}: deploy: {exc}") from None
    world_failures = [f for f in s.failures if f.kind not in PROCESS_KINDS]
    sim_raw = {
        "bounds": bounds,
        "target": spec,
        "positions": positions.tolist(),
        "eps": eps,
        "cutoff": s.law.cutoff,
        "smoothing": smoothing,
        "sensing": [
            {"eps": st.eps, "smoothing": st.smoothing}
            for st in dict.fromkeys(schedule.stages + (after.stages if after is not None else ()))
        ],
        "objective": s.law.objective,
        "boundary": s.domain.boundary,
        "speed_limit": speed,
        "tick": s.control.tick,
        "clock": s.control.clock,
        "time_scale": s.control.time_scale,
        "duration": s.duration,
        "endpoint": endpoint if endpoint is not None else s.simulator.endpoint,
        **s.simulator.model_dump(include=set(SimulatorTimes.model_fields)),
        "radio": s.radio.model_dump(),
        "wind": s.wind.model_dump() if s.wind is not None else None,
        "failures": [FailureEvent.model_validate(f.model_dump()).model_dump() for f in world_failures],
        "random_failures": s.random_failures.model_dump(),
        "render": {
            **s.render.model_dump(include=set(RenderSettings.model_fields)),
            "enabled": s.render.enabled and len(bounds) == 2,
            "headless": False,
        },
        "seed": s.seed,
        "insecure": True,  # the launcher puts the run's CURVE keys in (or keeps this with --insecure)
        "paths": paths,
    }
    try:
        sim = SimConfig.model_validate(sim_raw)
    except ValidationError as exc:
        raise ValueError(f"{where}: {describe_validation_error(exc)}") from None
    return ResolvedScenario(
        scenario=s,
        source=source,
        sim=sim,
        target=target,
        eps=eps,
        spacing=spacing,
        speed_limit=speed,
        rate_hz=rate,
        r_min=r_min,
        smoothing=smoothing,
        process_failures=[f for f in s.failures if f.kind in PROCESS_KINDS],
        schedule=schedule,
        after_losses=after,
        drift_tau=drift_tau,
    )
