"""Simulator configuration: pydantic models (unknown keys rejected), loaded from TOML or JSON.

Times named ``*_wall`` are wall-clock seconds (what agents and sockets live by); the others are
world seconds (what the bodies move in). In real-time mode one world second takes
``1 / time_scale`` wall seconds; in lockstep mode the world advances one tick whenever every live
agent has answered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

import swarmcover as sc
from swarmcover.configfile import NonNegative, Positive, Probability, Strict, load_config_file
from swarmcover.settings import RenderSettings, SimulatorTimes
from swarmcover.zonespec import Region

__all__ = [
    "CurveServer",
    "FailureEvent",
    "RadioConfig",
    "RandomFailure",
    "RenderConfig",
    "SensingPair",
    "SimConfig",
    "TargetSpec",
    "WindConfig",
    "load_sim_config",
]


class TargetSpec(Strict):
    """A Gaussian mixture (``covs`` isotropic variances), a demand ``map`` (a ``.npy`` array over
    the bounds, see :class:`swarmcover.Raster`), or uniform when neither is given, with no-go
    ``zones`` (bodies cannot enter them; the target is zero there)."""

    map: str | None = None
    means: list[list[float]] = Field(default_factory=list, max_length=256)
    covs: list[Positive] = Field(default_factory=list, max_length=256)
    weights: list[NonNegative] | None = None
    truncate: Positive | None = None
    floor: Positive = 1e-3
    zones: list[Region] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _one_kind(self) -> TargetSpec:
        if self.map is not None and self.means:
            raise ValueError("give either a demand map or mixture means, not both")
        if len(self.covs) != len(self.means):
            raise ValueError(f"{len(self.means)} means but {len(self.covs)} covs")
        return self

    def build(self, bounds: list[tuple[float, float]]) -> sc.Target:
        zones = [z.zone() for z in self.zones]
        if self.map is not None:
            return sc.Raster.from_npy(self.map, bounds, zones, floor=self.floor)
        if self.means:
            return sc.GaussianMixture(
                self.means,
                self.covs,
                self.weights,
                bounds=bounds,
                floor=self.floor,
                truncate=self.truncate,
                zones=zones,
            )
        return sc.Uniform(bounds, floor=self.floor, zones=zones)


class RadioConfig(Strict):
    """The radio that carries beacons: range (default: the law's radius), loss, latency and jitter
    (world seconds in lockstep, wall seconds in real time), and blackout regions where a robot
    can neither send nor receive."""

    range: Positive | None = None
    loss: Probability = 0.0
    latency: NonNegative = 0.0
    jitter: NonNegative = 0.0
    blackouts: list[Region] = Field(default_factory=list, max_length=64)


class WindConfig(Strict):
    """A wind field ``velocity + shear @ (x - center)`` (world units per world second) pushing
    every body, alive or dead."""

    velocity: list[float] = Field(min_length=1, max_length=2)
    shear: list[list[float]] | None = None
    center: list[float] | None = None


class FailureEvent(Strict):
    """An injected event at world time ``t``, for ``ids``, a random ``fraction`` of the live set,
    or everyone inside ``region``. ``fail`` cuts the robot off (no states, beacons dropped,
    body stopped); ``radio_fail`` only silences its radio; ``body_fail`` makes its body ignore
    commands; ``revive`` undoes all three."""

    t: NonNegative
    kind: Literal["fail", "radio_fail", "body_fail", "revive"]
    ids: list[Annotated[int, Field(ge=0)]] | None = None
    fraction: Probability | None = None
    region: Region | None = None

    @model_validator(mode="after")
    def _one_selector(self) -> FailureEvent:
        given = [s is not None for s in (self.ids, self.fraction, self.region)]
        if sum(given) != 1:
            raise ValueError("give exactly one of ids, fraction, region")
        return self


class RandomFailure(Strict):
    """Random failures: each live robot fails (``kind``) at ``rate`` per world second."""

    rate: NonNegative = 0.0
    kind: Literal["fail", "radio_fail", "body_fail"] = "fail"


class RenderConfig(RenderSettings):
    """:class:`~swarmcover.settings.RenderSettings`, and whether a window opens (``enabled``,
    ``headless``), its height (default: the domain's aspect) and where frames are saved."""

    enabled: bool = False
    headless: bool = True
    height: Annotated[int, Field(ge=64, le=4096)] | None = None
    frames_dir: str | None = None


class CurveServer(Strict):
    """CurveZMQ for the simulator's socket: its key pair (a zcert ``.key_secret`` file) and the
    allow-list, a directory of the agents' public certificates named ``agent_NNNN.key``
    (``swarmcover keys new`` makes both)."""

    secret_key: str
    clients: str


class SensingPair(Strict):
    """A mollifier and a target smoothing the world senses patches for (one stage of a schedule)."""

    eps: Positive
    smoothing: NonNegative = 0.0


class PlannedPath(Strict):
    """A robot's planned deployment path (sent to its agent as a ``path`` message after each
    hello): positions ``points`` at world times ``times``."""

    agent_id: Annotated[int, Field(ge=0, lt=1 << 31)]
    times: list[NonNegative] = Field(min_length=2, max_length=256)
    points: list[list[float]] = Field(min_length=2, max_length=256)

    @model_validator(mode="after")
    def _nodes(self) -> PlannedPath:
        if len(self.times) != len(self.points):
            raise ValueError(f"{len(self.times)} times for {len(self.points)} points")
        if any(b <= a for a, b in zip(self.times, self.times[1:], strict=False)):
            raise ValueError("times must be strictly increasing")
        return self


class SimConfig(SimulatorTimes):
    """Everything the simulator needs; the roster is ``range(len(positions))`` unless ``ids``."""

    RENAMED: ClassVar[dict[str, str]] = {
        "events": "failures", "random_dropouts": "random_failures", "target_smoothing": "smoothing",
    }  # fmt: skip

    bounds: list[tuple[float, float]] = Field(min_length=1, max_length=2)
    target: TargetSpec = Field(default_factory=TargetSpec)
    positions: list[list[float]] = Field(min_length=1, max_length=100_000)
    ids: list[Annotated[int, Field(ge=0, lt=1 << 31)]] | None = None
    eps: Positive
    cutoff: Positive = 4.0
    smoothing: NonNegative = 0.0
    # further (eps, smoothing) pairs agents may ask patches for: the stages of their schedules
    sensing: list[SensingPair] = Field(default_factory=list, max_length=256)
    objective: Literal["density", "service"] = "density"
    boundary: Literal["reflect", "free"] = "reflect"
    speed_limit: Positive
    tick: Positive = 0.1
    clock: Literal["realtime", "lockstep"] = "realtime"
    time_scale: Positive = 1.0
    duration: Positive | None = None
    endpoint: str = "tcp://127.0.0.1:5555"
    radio: RadioConfig = Field(default_factory=RadioConfig)
    wind: WindConfig | None = None
    failures: list[FailureEvent] = Field(default_factory=list, max_length=10_000)
    random_failures: RandomFailure = Field(default_factory=RandomFailure)
    record: str | None = None
    flush_every_wall: Positive = 1.0
    render: RenderConfig = Field(default_factory=RenderConfig)
    seed: int = 0
    curve: CurveServer | None = None
    insecure: bool = False
    paths: list[PlannedPath] = Field(default_factory=list, max_length=100_000)

    @model_validator(mode="after")
    def _consistent(self) -> SimConfig:
        d = len(self.bounds)
        for lo, hi in self.bounds:
            if not hi > lo:
                raise ValueError(f"bounds must have lo < hi, got {(lo, hi)}")
        for k, p in enumerate(self.positions):
            if len(p) != d:
                raise ValueError(f"positions[{k}] has {len(p)} coordinates, the world has {d}")
        if self.ids is not None and (
            len(self.ids) != len(self.positions) or len(set(self.ids)) != len(self.ids)
        ):
            raise ValueError("ids must be distinct and as many as positions")
        if self.wind is not None and len(self.wind.velocity) != d:
            raise ValueError(f"wind.velocity must have {d} components")
        roster = set(self.roster)
        for k, path in enumerate(self.paths):
            if path.agent_id not in roster:
                raise ValueError(f"paths[{k}] is for agent {path.agent_id}, not on the roster")
            if any(len(p) != d for p in path.points):
                raise ValueError(f"paths[{k}] has points of another dimension than the world's {d}")
        for k, ev in enumerate(self.failures):
            if ev.ids is not None and not set(ev.ids) <= roster:
                raise ValueError(
                    f"failures[{k}].ids names robots not in the roster: {sorted(set(ev.ids) - roster)}"
                )
        if (self.curve is None) == (not self.insecure):
            raise ValueError(
                "give `curve` (secret_key, clients: see `swarmcover keys new`) or `insecure = true` "
                "(plaintext: anyone who reaches the port can drive the robots), not both"
            )
        return self

    @property
    def roster(self) -> list[int]:
        return list(self.ids) if self.ids is not None else list(range(len(self.positions)))

    @property
    def dim(self) -> int:
        return len(self.bounds)

    def initial_positions(self) -> np.ndarray:
        return np.asarray(self.positions, dtype=np.float64)


def load_sim_config(path: str | Path | None = None, text: str | None = None) -> SimConfig:
    """Load from a ``.toml``/``.json`` file or a JSON string; ``ValueError`` names the file and key."""
    return load_config_file(SimConfig, path, text, "simulator config")
