"""Scenario files: one TOML file that describes a whole run, validated and resolved before anything starts.

A scenario is loaded into :class:`Scenario` (pydantic, unknown keys rejected), command-line
overrides (``--set key=value``) are applied to the raw table first, and :func:`resolve` turns it
into what the processes need: the simulator's :class:`~swarmcover.simulator.config.SimConfig`, one agent
config per robot, and the launcher's own process-level failure schedule. Every error is a
``ValueError`` naming the file, the key and the problem. ``docs/scenarios.md`` is the reference
(every key, its default, its meaning); ``tests/test_launch.py`` keeps the two in step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tomllib
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import swarmcover as sc
from swarmcover.configfile import describe_validation_error
from swarmcover.coverage import default_r_min
from swarmcover.schedule import CoverageSchedule
from swarmcover.simulator.config import DropoutEvent, RadioConfig, RandomDropouts, SimConfig, WindConfig
from swarmcover.zonespec import Region

from .vehicles import VehiclesSection

__all__ = [
    "PROCESS_KINDS",
    "AgentsSection",
    "Control",
    "Deploy",
    "Domain",
    "Failure",
    "Fleet",
    "Law",
    "RandomFailures",
    "Render",
    "ResolvedScenario",
    "Scenario",
    "SimulatorSection",
    "TargetSection",
    "apply_overrides",
    "load_scenario",
    "parse_value",
    "resolve",
]

_Pos = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
_NonNeg = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
_Auto = Literal["auto"]

PROCESS_KINDS = ("kill", "terminate", "restart")
"""Failure kinds the launcher carries out on agent processes with real signals (the others are
injected by the simulator into the world)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class Domain(_Strict):
    """The region (world units, e.g. km) and what its edges do."""

    bounds: list[tuple[float, float]] = Field(min_length=1, max_length=2)
    boundary: Literal["reflect", "free"] = "reflect"

    @model_validator(mode="after")
    def _ordered(self) -> Domain:
        for lo, hi in self.bounds:
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"bounds must be finite with lo < hi, got {(lo, hi)}")
        return self


class TargetSection(_Strict):
    """The target density ``rhobar``: ``uniform``, a Gaussian ``mixture`` or a demand ``map``."""

    kind: Literal["uniform", "mixture", "map"] = "uniform"
    means: list[list[float]] = Field(default_factory=list, max_length=256)
    covs: list[_Pos] = Field(default_factory=list, max_length=256)
    weights: list[Annotated[float, Field(ge=0.0)]] | None = None
    truncate: _Pos | None = None
    map: str | None = None
    floor: _Pos = 1e-3
    zones: list[Region] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _kind_fields(self) -> TargetSection:
        if self.kind == "mixture":
            if not self.means:
                raise ValueError("a mixture target needs `means` (and `covs`)")
            if len(self.covs) != len(self.means):
                raise ValueError(f"{len(self.means)} means but {len(self.covs)} covs")
            if self.weights is not None and len(self.weights) != len(self.means):
                raise ValueError(f"{len(self.means)} means but {len(self.weights)} weights")
        elif self.means or self.covs or self.weights is not None or self.truncate is not None:
            raise ValueError(f"means/covs/weights/truncate are for kind = 'mixture', not {self.kind!r}")
        if self.kind == "map" and self.map is None:
            raise ValueError("a map target needs `map`, the path of a .npy demand map")
        if self.kind != "map" and self.map is not None:
            raise ValueError(f"`map` is for kind = 'map', not {self.kind!r}")
        return self


class Fleet(_Strict):
    """How many robots and where they start."""

    size: Annotated[int, Field(ge=2, le=100_000)]
    deploy: Literal["depot", "line", "random", "grid"] = "depot"
    center: list[float] | None = None
    radius: _Pos | None = None
    start: list[float] | None = None
    end: list[float] | None = None

    @model_validator(mode="after")
    def _deploy_fields(self) -> Fleet:
        if self.deploy == "line" and (self.start is None or self.end is None):
            raise ValueError("deploy = 'line' needs `start` and `end`")
        if self.deploy != "line" and (self.start is not None or self.end is not None):
            raise ValueError(f"`start`/`end` are for deploy = 'line', not {self.deploy!r}")
        if self.deploy != "depot" and (self.center is not None or self.radius is not None):
            raise ValueError(f"`center`/`radius` are for deploy = 'depot', not {self.deploy!r}")
        return self


class Deploy(_Strict):
    """How the fleet gets from its start to the target: ``plan = "none"`` (the coverage law from
    the start) or ``"transport"``: before the start the launcher plans every robot's path by the
    blob method for dynamic optimal transport (:func:`swarmcover.transport.plan`, around the
    target's zones, ``clearance`` from them, ``steps`` time nodes, at ``speed_fraction`` of the
    speed limit); each agent tracks its path, then switches to the coverage law."""

    plan: Literal["none", "transport"] = "none"
    steps: int = Field(default=16, ge=2, le=255)
    clearance: _NonNeg | _Auto = "auto"  # auto: a tenth of the spacing
    speed_fraction: float = Field(default=0.8, gt=0.0, le=1.0)


class Law(_Strict):
    """The blob law's parameters (what every agent computes) and the schedule every agent follows."""

    schedule: Literal["annealed", "fixed"] = "annealed"
    objective: Literal["density", "service"] = "density"
    eps: _Auto | _Pos = "auto"
    start: _Auto | _Pos = "auto"
    stages: Annotated[int, Field(ge=1, le=100)] = 6
    relax: _Auto | _Pos = "auto"
    restart_losses: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    drift_tau: _Auto | _NonNeg = "auto"
    cutoff: _Pos = 4.0
    smoothing: _Auto | _NonNeg = "auto"
    gain: _Auto | _Pos = "auto"
    r_min: _Auto | _NonNeg = "auto"
    mismatch: _Pos = 0.5

    @model_validator(mode="after")
    def _for_the_schedule(self) -> Law:
        if self.schedule == "fixed" and "start" in self.model_fields_set:
            raise ValueError(
                "`start` is the first eps of an annealed schedule; schedule = 'fixed' has one eps"
            )
        if self.schedule == "annealed" and self.smoothing != "auto":
            raise ValueError(
                "an annealed schedule smooths the target at each stage's own eps; `smoothing` is for "
                "schedule = 'fixed'"
            )
        return self


class Control(_Strict):
    """Motion and timing: speed limit, the world's tick, the agents' control rate, the clock."""

    speed_limit: _Auto | _Pos = "auto"
    tick: _Pos = 0.1
    rate_hz: _Auto | Annotated[float, Field(gt=0.0, le=1000.0)] = "auto"
    clock: Literal["realtime", "lockstep"] = "realtime"
    time_scale: _Pos = 1.0


class Failure(DropoutEvent):
    """A scheduled failure at world time ``t`` for ``ids``, a random ``fraction``, or a ``region``.

    ``kill`` (SIGKILL) and ``terminate`` (SIGTERM) act on agent processes, ``restart`` starts new
    processes for robots whose process is gone (``fraction`` of those); ``fail``, ``radio_fail``,
    ``body_fail`` and ``revive`` are injected by the simulator into the world.
    """

    kind: Literal["kill", "terminate", "restart", "fail", "radio_fail", "body_fail", "revive"]  # type: ignore[assignment]


class RandomFailures(RandomDropouts):
    """Each live robot fails (``kind``) at ``rate`` per world second (injected by the simulator)."""


class Render(_Strict):
    """The live window (only where a display exists and ``--headless`` is not given)."""

    enabled: bool = True
    width: Annotated[int, Field(ge=64, le=4096)] = 900
    fps: _Pos = 20.0
    trails: Annotated[int, Field(ge=0, le=1000)] = 0
    links: bool = True
    blobs: Literal["none", "outline", "fill"] = "none"
    frames: bool = False
    frame_every: _Pos = 1.0


class AgentsSection(_Strict):
    """The agent processes: their command, timeouts (wall seconds) and log level."""

    command: list[str] | None = Field(default=None, min_length=1)
    beacon_ttl: _Pos = 0.5
    forget_after: _Pos = 2.0
    state_timeout: _Pos = 1.0
    max_neighbors: Annotated[int, Field(ge=1, le=65536)] = 1024
    kernel: Literal["auto", "c", "numpy", "numba"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # CPU priority of the agent processes below the launcher's (and so the simulator's): see
    # launcher/processes.py; 0 gives them the same
    nice: Annotated[int, Field(ge=0, le=19)] = 10

    @model_validator(mode="after")
    def _consistent(self) -> AgentsSection:
        if self.forget_after < self.beacon_ttl:
            raise ValueError("forget_after must be >= beacon_ttl")
        if self.command is not None and not any("{config}" in part for part in self.command):
            raise ValueError("command must contain '{config}' (the agent config file's path)")
        return self


class SimulatorSection(_Strict):
    """The simulator process: where it listens, its timeouts (wall seconds), metrics and recording."""

    endpoint: str = "tcp://127.0.0.1:*"
    failure_timeout_wall: _Pos = 1.0
    command_ttl_wall: _Pos = 0.5
    wait_for_agents_wall: _Pos = 180.0
    lockstep_timeout_wall: _Pos = 1.0
    metrics_every: _Pos = 1.0
    record: bool = True
    drift_when_failed: bool = True


class Scenario(_Strict):
    """One run: the world, the target, the fleet, the law, the radio, failures, rendering, output."""

    name: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = 0
    duration: _Pos = 60.0
    out: str | None = None
    domain: Domain
    target: TargetSection = Field(default_factory=TargetSection)
    fleet: Fleet
    law: Law = Field(default_factory=Law)
    deploy: Deploy = Field(default_factory=Deploy)
    control: Control = Field(default_factory=Control)
    radio: RadioConfig = Field(default_factory=RadioConfig)
    wind: WindConfig | None = None
    failures: list[Failure] = Field(default_factory=list, max_length=10_000)
    random_failures: RandomFailures = Field(default_factory=RandomFailures)
    render: Render = Field(default_factory=Render)
    agents: AgentsSection = Field(default_factory=AgentsSection)
    simulator: SimulatorSection = Field(default_factory=SimulatorSection)
    vehicles: VehiclesSection = Field(default_factory=VehiclesSection)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        d = len(self.domain.bounds)
        for key, p in (
            ("fleet.center", self.fleet.center),
            ("fleet.start", self.fleet.start),
            ("fleet.end", self.fleet.end),
            ("wind.velocity", self.wind and self.wind.velocity),
        ):
            if p is not None and len(p) != d:
                raise ValueError(f"{key} has {len(p)} coordinates, the domain has {d}")
        for k, m in enumerate(self.target.means):
            if len(m) != d:
                raise ValueError(f"target.means[{k}] has {len(m)} coordinates, the domain has {d}")
        if self.vehicles.body != "none":  # no simulator: the agents fly vehicles in real time
            if self.target.kind == "map":
                raise ValueError("vehicles: agents compute the field on board from a mixture or a uniform "
                                 "target; a demand map is not supported with vehicles")  # fmt: skip
            if self.deploy.plan != "none":
                raise ValueError("vehicles: a planned deployment needs the simulator (deploy.plan = 'none')")
            if self.control.clock != "realtime":
                raise ValueError("vehicles: vehicles move in real time (control.clock = 'realtime')")
            world = [f.kind for f in self.failures if f.kind not in PROCESS_KINDS]
            if world or self.random_failures.rate > 0:
                what = sorted(set(world)) or "random_failures"
                raise ValueError("vehicles: failures act on the agents' processes only (kill, terminate, "
                                 f"restart); {what} need the simulator")  # fmt: skip
            origin = self.vehicles.origin
            if origin is not None and len(origin) != d:
                raise ValueError(f"vehicles.origin has {len(origin)} coordinates, the domain has {d}")
        for k, f in enumerate(self.failures):
            if f.ids is not None and max(f.ids, default=0) >= self.fleet.size:
                raise ValueError(
                    f"failures[{k}].ids names robots beyond the fleet (ids 0..{self.fleet.size - 1})"
                )
        return self


# ---------------------------------------------------------------------------------------- loading
def parse_value(text: str):
    """A ``--set`` value: TOML syntax (``3``, ``0.5``, ``true``, ``[1, 2]``, ``"x"``), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides to the raw scenario table (a copy is returned)."""
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected key=value, e.g. fleet.size=20")
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            if isinstance(node, list):
                if not p.isdigit() or int(p) >= len(node):
                    raise ValueError(f"--set {key}: no item {p!r} in that list")
                node = node[int(p)]
                continue
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict | list):
                raise ValueError(f"--set {key}: {p!r} is a value, not a table")
            node = nxt
        last = parts[-1]
        if isinstance(node, list):
            if not last.isdigit() or int(last) >= len(node):
                raise ValueError(f"--set {key}: no item {last!r} in that list")
            node[int(last)] = parse_value(value)
        else:
            node[last] = parse_value(value)
    return out


def load_scenario(path: str | Path, overrides: list[str] | None = None) -> Scenario:
    """Read and validate the scenario file at ``path`` (with ``--set`` ``overrides``)."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"scenario file not found: {p}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: cannot parse as TOML: {exc}") from None
    raw = apply_overrides(raw, overrides or [])
    raw.setdefault("name", p.stem)
    where = f"{p} (with --set {' '.join(overrides)})" if overrides else str(p)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{where}: {describe_validation_error(exc)}") from None


# ---------------------------------------------------------------------------------------- resolving
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

    def agent_config(self, agent_id: int, endpoint: str, curve: dict | None = None) -> dict:
        """The agent config (``swarmcover agent --config``) for robot ``agent_id``: CURVE with
        ``curve`` (``secret_key``, ``server_key`` paths), else plaintext (``insecure``)."""
        s = self.scenario
        return {
            **({"curve": curve} if curve is not None else {"insecure": True}),
            "agent_id": agent_id,
            "name": f"{s.name}-{agent_id}",
            "bounds": [list(b) for b in s.domain.bounds],
            "boundary": s.domain.boundary,
            "schedule": {
                "stages": _stages(self.schedule),
                "after_losses": _stages(self.after_losses) if self.after_losses is not None else [],
                "restart_losses": s.law.restart_losses if self.after_losses is not None else 0,
            },
            "drift_tau": self.drift_tau,
            "cutoff": s.law.cutoff,
            "mass": 1.0 / s.fleet.size,
            "speed_limit": self.speed_limit,
            "gain": None if s.law.gain == "auto" else s.law.gain,
            "mismatch": s.law.mismatch,
            "r_min": self.r_min if self.r_min > 0 else None,
            "rate_hz": self.rate_hz,
            "beacon_ttl": s.agents.beacon_ttl,
            "forget_after": s.agents.forget_after,
            "state_timeout": s.agents.state_timeout,
            "max_neighbors": s.agents.max_neighbors,
            "kernel": s.agents.kernel,
            "body": {"kind": "sim", "endpoint": endpoint},
        }


def _stages(schedule: CoverageSchedule) -> list[dict]:
    return [{"eps": st.eps, "smoothing": st.smoothing, "duration": st.duration} for st in schedule.stages]


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
    rate = min(1000.0, 2.0 * states_per_wall_s) if s.control.rate_hz == "auto" else float(s.control.rate_hz)
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
        "target_smoothing": smoothing,
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
        "lockstep_timeout_wall": s.simulator.lockstep_timeout_wall,
        "command_ttl_wall": s.simulator.command_ttl_wall,
        "failure_timeout_wall": s.simulator.failure_timeout_wall,
        "wait_for_agents_wall": s.simulator.wait_for_agents_wall,
        "radio": s.radio.model_dump(),
        "wind": s.wind.model_dump() if s.wind is not None else None,
        "drift_when_failed": s.simulator.drift_when_failed,
        "events": [DropoutEvent.model_validate(f.model_dump()).model_dump() for f in world_failures],
        "random_dropouts": s.random_failures.model_dump(),
        "metrics_every": s.simulator.metrics_every,
        "render": {
            "enabled": s.render.enabled and len(bounds) == 2,
            "headless": False,
            "width": s.render.width,
            "fps": s.render.fps,
            "trails": s.render.trails,
            "links": s.render.links,
            "blobs": s.render.blobs,
            "frame_every": s.render.frame_every,
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
