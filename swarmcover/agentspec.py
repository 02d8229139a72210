"""The agent config file: what an agent process is told at its start (``swarmcover agent --config``,
``{config}`` in a scenario's ``agents.command``; ``docs/protocol.md``, "The agent config file").

A pydantic model, unknown keys rejected, from TOML, JSON or the command line. It lives in the core
(not in ``agents/``) because two sides share it: the launcher builds one per robot and writes it,
typed, and the agent process reads it; neither imports the other."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from swarmcover.configfile import NonNegative, Positive, Strict, load_config_file
from swarmcover.settings import AgentTimes
from swarmcover.vehiclespec import GeoPoint, VehicleSettings
from swarmcover.zonespec import Region

__all__ = [
    "AgentConfig",
    "CurveKeys",
    "DirectPeers",
    "LocalTarget",
    "MavlinkBody",
    "Peer",
    "Ros2Body",
    "ScheduleSpec",
    "SimBody",
    "SimPeers",
    "StageSpec",
    "UdpBody",
    "VehicleBody",
    "load_config",
]


class SimBody(Strict):
    """The body is the simulator (or a test harness): a ZeroMQ DEALER connected to its ROUTER."""

    kind: Literal["sim"] = "sim"
    endpoint: str = "tcp://127.0.0.1:5555"


class UdpBody(Strict):
    """A hardware-style body: ``State`` headers arrive as UDP datagrams on ``listen`` (host:port);
    ``Command`` headers go back to the sender of the latest state."""

    kind: Literal["udp"] = "udp"
    listen: str = "127.0.0.1:0"


class VehicleBody(VehicleSettings):
    """What every vehicle body shares (``agents/bodies/vehicle.py``, ``docs/bodies.md``):
    :class:`swarmcover.vehiclespec.VehicleSettings`."""


class MavlinkBody(VehicleBody):
    """A MAVLink vehicle (PX4, ArduPilot) at ``connect`` (pymavlink's ``udpin:HOST:PORT``,
    ``udpout:HOST:PORT``, ``tcp:HOST:PORT`` or a serial device at ``baud``); this controller
    speaks as MAVLink system ``system_id``. Positions from ``LOCAL_POSITION_NED``, or from
    ``GLOBAL_POSITION_INT`` relative to ``geo_origin = [lat, lon]`` when given."""

    kind: Literal["mavlink"] = "mavlink"
    connect: str = Field(min_length=1, max_length=400)
    baud: Annotated[int, Field(ge=1, le=10_000_000)] = 57600
    system_id: Annotated[int, Field(ge=1, le=255)] = 245
    geo_origin: GeoPoint | None = None


class Ros2Body(VehicleBody):
    """A ROS 2 robot, spoken to over DDS directly (cyclonedds, no ROS install): ``Twist`` on
    ``rt/<namespace>/cmd_vel`` out, ``Odometry`` on ``rt/<namespace>/odom`` in (or
    ``PoseStamped`` on ``rt/<namespace>/pose`` with ``odometry = "pose"``), DDS domain
    ``domain_id``; the robot's odometry frame is taken as ``x`` east, ``y`` north."""

    kind: Literal["ros2"] = "ros2"
    namespace: str = Field(default="", max_length=200, pattern=r"^[A-Za-z0-9_/]*$")
    domain_id: Annotated[int, Field(ge=0, le=232)] = 0
    odometry: Literal["odom", "pose"] = "odom"


class SimPeers(Strict):
    """Beacons travel through the simulator's radio (over the body link)."""

    kind: Literal["sim"] = "sim"


class Peer(Strict):
    """A peer in direct mode: its id, where it publishes, and (CURVE) its public certificate."""

    agent_id: Annotated[int, Field(ge=0, lt=1 << 31)]
    endpoint: str
    public_key: str | None = None


class DirectPeers(Strict):
    """Agents publish beacons on ``bind`` and subscribe to every endpoint in ``roster`` (no
    simulator). With CURVE every roster entry is a :class:`Peer` with its ``public_key``: the
    agent's PUB admits only those keys, and a beacon is accepted only from the peer whose key the
    connection it came on was authenticated with. At its start an agent holds still (zero
    commands, beacons sent) until it has heard every other peer of its roster or ``start_wait``
    seconds have passed since its first state: moving before it knows where its neighbours are,
    its separation could not act, and the fleet's arrangement would depend on which process
    happened to start first."""

    kind: Literal["direct"] = "direct"
    bind: str
    roster: list[str | Peer] = Field(default_factory=list, max_length=4096)
    start_wait: NonNegative = 5.0

    def others(self, agent_id: int) -> int:
        """How many peers of the roster are not this agent (by id, or by its own endpoint)."""

        def own(p: str | Peer) -> bool:
            if isinstance(p, Peer):
                return p.agent_id == agent_id or p.endpoint == self.bind
            return p == self.bind

        return sum(not own(p) for p in self.roster)


class LocalTarget(Strict):
    """A target the agent computes its own field from (hardware: the demand map is on board),
    a Gaussian mixture (``covs`` isotropic variances) or uniform when ``means`` is empty, with
    the scenario's no-go ``zones`` (the target is zero there, and a direct peer's beacon from
    inside one is impossible)."""

    RENAMED: ClassVar[dict[str, str]] = {"target_smoothing": "smoothing"}

    means: list[list[float]] = Field(default_factory=list, max_length=256)
    covs: list[Positive] = Field(default_factory=list, max_length=256)
    weights: list[Annotated[float, Field(ge=0.0)]] | None = None
    truncate: Positive | None = None
    floor: Positive = 1e-3
    smoothing: Annotated[float, Field(ge=0.0)] = 0.0
    objective: Literal["density", "service"] = "density"
    zones: list[Region] = Field(default_factory=list, max_length=64)


class StageSpec(Strict):
    """One stage of a coverage schedule (see :class:`swarmcover.schedule.Stage`)."""

    eps: Positive
    smoothing: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    duration: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0


class ScheduleSpec(Strict):
    """The fleet's schedules: ``stages`` (epoch 0) and ``after_losses`` (every restart; default:
    ``stages`` again); ``restart_losses`` lost neighbours start a restart (0: never)."""

    stages: list[StageSpec] = Field(min_length=1, max_length=256)
    after_losses: list[StageSpec] = Field(default_factory=list, max_length=256)
    restart_losses: Annotated[int, Field(ge=0, le=1_000_000)] = 1


class CurveKeys(Strict):
    """CurveZMQ for the link to the simulator: this agent's key pair (a zcert ``.key_secret``
    file) and the simulator's public certificate (``.key``), as ``swarmcover keys new`` makes them."""

    secret_key: str
    server_key: str | None = None


class AgentConfig(AgentTimes):
    """Everything an agent process needs; see ``docs/protocol.md`` for the meaning of the times."""

    agent_id: Annotated[int, Field(ge=0, lt=1 << 31)]
    name: str = Field(default="", max_length=200)
    bounds: list[tuple[float, float]] = Field(min_length=1, max_length=2)
    boundary: Literal["reflect", "free"] = "reflect"
    eps: Positive | None = None  # the law at one eps for ever; with a `schedule`, its last stage's
    schedule: ScheduleSpec | None = None
    cutoff: Positive = 4.0
    mass: Annotated[float, Field(gt=0.0, le=1.0)]
    speed_limit: Positive
    gain: Positive | None = None
    mismatch: Positive = 0.5
    r_min: Positive | None = None
    drift_tau: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0  # world s; 0: no wind estimate
    rate_hz: Annotated[float, Field(gt=0.0, le=1000.0)] = 10.0
    max_clock_skew: Annotated[float, Field(ge=0.0)] | None = None
    body: SimBody | UdpBody | MavlinkBody | Ros2Body = Field(default_factory=SimBody, discriminator="kind")
    peers: SimPeers | DirectPeers = Field(default_factory=SimPeers, discriminator="kind")
    target: LocalTarget | None = None
    curve: CurveKeys | None = None
    insecure: bool = False
    telemetry: str | None = Field(default=None, max_length=4096)  # a JSONL file the body's states go to

    @model_validator(mode="after")
    def _consistent(self) -> AgentConfig:
        for lo, hi in self.bounds:
            if not hi > lo:
                raise ValueError(f"bounds must have lo < hi, got {(lo, hi)}")
        if self.eps is None and self.schedule is None:
            raise ValueError("give `eps` (one mollifier for ever) or a `schedule` of stages")
        if self.eps is not None and self.schedule is not None and self.eps != self.schedule.stages[-1].eps:
            raise ValueError(
                f"eps {self.eps!r} with a schedule must be its last stage's eps "
                f"{self.schedule.stages[-1].eps!r} (what an agent that runs no schedule uses)"
            )
        if self.body.kind != "sim" and self.target is None:
            raise ValueError(
                f"a {self.body.kind} body sends no field patches: give the agent a local `target`"
            )
        origin = getattr(self.body, "origin", None)
        if origin is not None and len(origin) != len(self.bounds):
            raise ValueError(f"body.origin has {len(origin)} coordinates for a {len(self.bounds)}-D domain")
        if self.peers.kind == "sim" and self.body.kind != "sim":
            raise ValueError("peers via the simulator need a sim body; use direct peers")
        if (self.curve is None) == (not self.insecure):
            raise ValueError(
                "give `curve` (secret_key, server_key: see `swarmcover keys new`) or `insecure = true` "
                "(plaintext: anyone who reaches the simulator can pose as this robot), not both"
            )
        if self.curve is not None and self.body.kind == "sim" and self.curve.server_key is None:
            raise ValueError(
                "curve.server_key (the simulator's public certificate) is needed with a sim body"
            )
        if self.curve is not None and self.peers.kind == "direct":
            bad = [p for p in self.peers.roster if not isinstance(p, Peer) or p.public_key is None]
            if bad:
                raise ValueError(
                    "with curve, every peers.roster entry needs agent_id, endpoint and public_key"
                )
        return self

    @property
    def dim(self) -> int:
        return len(self.bounds)


def load_config(path: str | None = None, text: str | None = None) -> AgentConfig:
    """Load a config from a ``.toml``/``.json`` file or a JSON string; ``ValueError`` names the key."""
    return load_config_file(AgentConfig, path, text, "agent config")
