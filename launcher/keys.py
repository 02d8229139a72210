"""CurveZMQ keys for a fleet: the simulator's key pair and one per agent, as zcert files.

Layout of a keys folder (what ``swarmcover keys new DIR`` writes and ``--keys DIR`` reads)::

    DIR/server.key              the simulator's public certificate (give it to every agent host)
    DIR/server.key_secret       the simulator's key pair (stays on the simulator's host)
    DIR/agents/agent_NNNN.key          agent NNNN's public certificate (the simulator's allow-list)
    DIR/agents/agent_NNNN.key_secret   agent NNNN's key pair (only on the host that runs it)

Secret files are created readable by their owner only (mode 0600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq.auth

__all__ = ["FleetKeys", "make_keys", "open_keys"]


@dataclass(frozen=True)
class FleetKeys:
    """Paths of a keys folder."""

    root: Path

    @property
    def server_public(self) -> Path:
        return self.root / "server.key"

    @property
    def server_secret(self) -> Path:
        return self.root / "server.key_secret"

    @property
    def clients(self) -> Path:
        return self.root / "agents"

    def agent_public(self, agent_id: int) -> Path:
        return self.clients / f"agent_{agent_id:04d}.key"

    def agent_secret(self, agent_id: int) -> Path:
        return self.clients / f"agent_{agent_id:04d}.key_secret"


def _new_pair(folder: Path, name: str) -> None:
    old = os.umask(0o077)  # the secret file is never readable by others, not even for an instant
    try:
        zmq.auth.create_certificates(folder, name)
    finally:
        os.umask(old)
    os.chmod(folder / f"{name}.key", 0o644)


def make_keys(root: str | Path, agent_ids: list[int]) -> FleetKeys:
    """Create the simulator's key pair and one per agent under ``root`` (new or empty)."""
    keys = FleetKeys(Path(root))
    if keys.server_secret.exists() or (keys.clients.exists() and any(keys.clients.iterdir())):
        raise ValueError(
            f"{keys.root} already holds keys; choose another folder (keys are never overwritten)"
        )
    keys.clients.mkdir(parents=True, exist_ok=True)
    _new_pair(keys.root, "server")
    for a in agent_ids:
        _new_pair(keys.clients, f"agent_{a:04d}")
    return keys


def open_keys(root: str | Path, agent_ids: list[int], sim: bool, agents: bool) -> FleetKeys:
    """A keys folder made by :func:`make_keys`, checked for what this launcher runs: the simulator
    (``sim``: its secret and the agents' public keys) and/or ``agents`` (the server's public key
    and each agent's secret)."""
    keys = FleetKeys(Path(root))
    need = []
    if sim:
        need += [keys.server_secret] + [keys.agent_public(a) for a in agent_ids]
    if agents:
        need += [keys.server_public] + [keys.agent_secret(a) for a in agent_ids]
    missing = [str(p) for p in need if not p.is_file()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"keys folder {keys.root}: missing {', '.join(missing[:3])}{more}")
    return keys
