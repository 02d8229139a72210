"""Scenario files: one TOML file that describes a whole run, validated before anything starts.

A scenario is loaded into :class:`Scenario` (pydantic, unknown keys rejected); command-line overrides
(``--set key=value``) are applied to the raw table first. :mod:`swarmcover.launcher.resolve` then
turns it into what the processes need. Every error is a ``ValueError`` naming the file, the key and
the problem. ``docs/scenarios.md`` is the reference (every key, its default, its meaning);
``tests/test_launch.py`` keeps the two in step.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Literal

import tomllib
from pydantic import Field, ValidationError, model_validator

from swarmcover.configfile import NonNegative, Positive, Strict, describe_validation_error
from swarmcover.settings import AgentTimes, RenderSettings, SimulatorTimes
from swarmcover.simulator.config import FailureEvent, RadioConfig, RandomFailure, WindConfig
from swarmcover.zonespec import Region

from .vehicles import VehiclesSection

__all__ = [
    "PROCESS_KINDS",
    "AgentsSection",
    "ClusterSection",
    "Control",
    "Deploy",
    "Domain",
    "Failure",
    "Fleet",
    "Law",
    "RandomFailures",
    "Render",
    "Scenario",
    "SimulatorSection",
    "TargetSection",
    "apply_overrides",
    "load_scenario",
    "parse_value",
]

_Auto = Literal["auto"]

PROCESS_KINDS = ("kill", "terminate", "restart")
"""Failure kinds the launcher carries out on agent processes with real signals (the others are
injected by the simulator into the world)."""


class Domain(Strict):
    """The region (world units, e.g. km) and what its edges do."""

    bounds: list[tuple[float, float]] = Field(min_length=1, max_length=2)
    boundary: Literal["reflect", "free"] = "reflect"

    @model_validator(mode="after")
    def _ordered(self) -> Domain:
        for lo, hi in self.bounds:
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise ValueError(f"bounds must be finite with lo < hi, got {(lo, hi)}")
        return self


class TargetSection(Strict):
    """The target density ``rhobar``: ``uniform``, a Gaussian ``mixture`` or a demand ``map``."""

    kind: Literal["uniform", "mixture", "map"] = "uniform"
    means: list[list[float]] = Field(default_factory=list, max_length=256)
    covs: list[Positive] = Field(default_factory=list, max_length=256)
    weights: list[Annotated[float, Field(ge=0.0)]] | None = None
    truncate: Positive | None = None
    map: str | None = None
    floor: Positive = 1e-3
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


class Fleet(Strict):
    """How many robots and where they start."""

    size: Annotated[int, Field(ge=2, le=100_000)]
    deploy: Literal["depot", "line", "random", "grid"] = "depot"
    center: list[float] | None = None
    radius: Positive | None = None
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


class Deploy(Strict):
    """How the fleet gets from its start to the target: ``plan = "none"`` (the coverage law from
    the start) or ``"transport"``: before the start the launcher plans every robot's path by the
    blob method for dynamic optimal transport (:func:`swarmcover.transport.plan`, around the
    target's zones, ``clearance`` from them, ``steps`` time nodes, at ``speed_fraction`` of the
    speed limit); each agent tracks its path, then switches to the coverage law."""

    plan: Literal["none", "transport"] = "none"
    steps: int = Field(default=16, ge=2, le=255)
    clearance: NonNegative | _Auto = "auto"  # auto: a tenth of the spacing
    speed_fraction: float = Field(default=0.8, gt=0.0, le=1.0)


class Law(Strict):
    """The blob law's parameters (what every agent computes) and the schedule every agent follows."""

    schedule: Literal["annealed", "fixed"] = "annealed"
    objective: Literal["density", "service"] = "density"
    eps: _Auto | Positive = "auto"
    start: _Auto | Positive = "auto"
    stages: Annotated[int, Field(ge=1, le=100)] = 6
    relax: _Auto | Positive = "auto"
    restart_losses: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    drift_tau: _Auto | NonNegative = "auto"
    cutoff: Positive = 4.0
    smoothing: _Auto | NonNegative = "auto"
    gain: _Auto | Positive = "auto"
    r_min: _Auto | NonNegative = "auto"
    mismatch: Positive = 0.5

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


class Control(Strict):
    """Motion and timing: speed limit, the world's tick, the agents' control rate, the clock."""

    speed_limit: _Auto | Positive = "auto"
    tick: Positive = 0.1
    rate_hz: _Auto | Annotated[float, Field(gt=0.0, le=1000.0)] = "auto"
    clock: Literal["realtime", "lockstep"] = "realtime"
    time_scale: Positive = 1.0


class Failure(FailureEvent):
    """A scheduled failure at world time ``t`` for ``ids``, a random ``fraction``, or a ``region``.

    ``kill`` (SIGKILL) and ``terminate`` (SIGTERM) act on agent processes, ``restart`` starts new
    processes for robots whose process is gone (``fraction`` of those); ``fail``, ``radio_fail``,
    ``body_fail`` and ``revive`` are injected by the simulator into the world.
    """

    kind: Literal["kill", "terminate", "restart", "fail", "radio_fail", "body_fail", "revive"]  # type: ignore[assignment]


class RandomFailures(RandomFailure):
    """Each live robot fails (``kind``) at ``rate`` per world second (injected by the simulator)."""


class Render(RenderSettings):
    """The live window (only where a display exists and ``--headless`` is not given), and
    whether frames are saved (``frames``, every ``frame_every`` world seconds)."""

    enabled: bool = True
    frames: bool = False


class AgentsSection(AgentTimes):
    """The agent processes: their command, timeouts (wall seconds) and log level."""

    command: list[str] | None = Field(default=None, min_length=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    # CPU priority of the agent processes below the launcher's (and so the simulator's): see
    # launcher/processes.py; 0 gives them the same
    nice: Annotated[int, Field(ge=0, le=19)] = 10
    # "batch" (Linux): a waking agent does not preempt a running process; see launcher/processes.py
    scheduling: Literal["batch", "normal"] = "batch"

    @model_validator(mode="after")
    def _consistent(self) -> AgentsSection:
        if self.command is not None and not any("{config}" in part for part in self.command):
            raise ValueError("command must contain '{config}' (the agent config file's path)")
        return self


class ClusterSection(Strict):
    """Where a launch with ``--cluster`` places its agents (launcher/cluster.py): a CPU share per agent,
    spread over the nodes or packed onto few, and how long to wait for the cluster to find room."""

    cpus_per_agent: Annotated[float, Field(gt=0.0, le=64.0)] = 0.25
    strategy: Literal["spread", "pack"] = "spread"
    place_timeout: Positive = 60.0


class SimulatorSection(SimulatorTimes):
    """The simulator process: where it listens, its timeouts (wall seconds), metrics and recording."""

    endpoint: str = "tcp://127.0.0.1:*"
    record: bool = True


class Scenario(Strict):
    """One run: the world, the target, the fleet, the law, the radio, failures, rendering, output."""

    name: str = Field(default="", max_length=100, pattern=r"^[A-Za-z0-9_.-]*$")
    description: str = ""
    seed: int = 0
    duration: Positive = 60.0
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
    cluster: ClusterSection = Field(default_factory=ClusterSection)

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
