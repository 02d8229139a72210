"""The agent's configuration: :mod:`swarmcover.agentspec` (the model the launcher writes and the
agent reads), under the name the agent's modules have always imported it by."""

from swarmcover.agentspec import (
    AgentConfig,
    CurveKeys,
    DirectPeers,
    LocalTarget,
    MavlinkBody,
    Peer,
    Ros2Body,
    ScheduleSpec,
    SimBody,
    SimPeers,
    StageSpec,
    UdpBody,
    VehicleBody,
    load_config,
)

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
