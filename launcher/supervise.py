"""The launcher's agent processes: started by command with their keys, reaped when they exit, and
the scenario's process failures (kill, terminate, restart) carried out with real signals.

Which robots a failure picks is the simulator's own rule (:func:`swarmcover.simulator.faults.select`),
applied to a snapshot of the world (or of a vehicle fleet's telemetry), with the launcher's RNG.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np

from swarmcover.agentspec import AgentConfig, CurveKeys
from swarmcover.simulator.faults import select
from swarmcover.simulator.world import Snapshot

from .keys import FleetKeys, make_keys
from .processes import Priority, ProcessPool
from .resolve import ResolvedScenario

__all__ = ["Supervisor"]

log = logging.getLogger("swarmcover.launch")


class Supervisor:
    """One launch's agent processes (see the module docstring). ``event(kind, agent_id, **details)``
    records what happened; ``keys`` are the fleet's, or None (plaintext)."""

    def __init__(self, rs: ResolvedScenario, run_dir: Path, event: Callable[..., None],
                 keys: FleetKeys | None, cluster: bool = False) -> None:  # fmt: skip
        self.rs, self.run_dir, self.event, self.keys = rs, run_dir, event, keys
        self.cluster = cluster  # place the agents on the Ray cluster this process has joined
        self.rng = np.random.default_rng(rs.scenario.seed + 2)
        self.failures = sorted(rs.process_failures, key=lambda f: f.t)
        self.next_failure = 0
        self.pool: ProcessPool | None = None

    def make_keys(self) -> FleetKeys:
        """New keys for the whole roster in ``keys/`` of the run folder, unless given."""
        if self.keys is None:
            self.keys = make_keys(self.run_dir / "keys", list(self.rs.roster))
        return self.keys

    def open_pool(self, ids: list[int]) -> ProcessPool:
        """The pool that starts agents ``ids``: here, or placed by Ray (``--cluster``)."""
        agents = self.rs.scenario.agents
        priority = Priority(agents.nice, agents.scheduling == "batch")
        if self.cluster:
            from .cluster import RayPool

            c = self.rs.scenario.cluster
            self.pool = RayPool(self.run_dir, agents.command, priority, ids, c.cpus_per_agent, c.strategy,
                                c.place_timeout)  # fmt: skip
        else:
            self.pool = ProcessPool(self.run_dir, agents.command, priority)
        return self.pool

    def curve_for(self, a: int) -> CurveKeys | None:
        if self.keys is None:
            return None
        return CurveKeys(secret_key=str(self.keys.agent_secret(a)), server_key=str(self.keys.server_public))

    def start(self, a: int, config: AgentConfig, restart: bool = False) -> None:
        """Start agent ``a``'s process with ``config`` (its agent config file's content). A restart
        that cannot start (its cluster node lost, its program gone) is an event, not the run's end."""
        try:
            p = self.pool.start(a, config, self.rs.scenario.agents.log_level)
        except ValueError as exc:
            if not restart:
                raise
            log.error("restart of agent %d failed: %s", a, exc)
            self.event("restart_failed", a, error=str(exc))
            return
        where = {} if p.node is None else {"node": p.node}
        self.event("restarted" if restart else "process_started", a, pid=p.pid, **where)

    def reap(self) -> None:
        """Processes that exited by themselves: an event each, and where their log is."""
        if self.pool is None:
            return
        for p in self.pool.reap():
            self.event("process_exited", p.agent_id, pid=p.pid, exit_code=p.exit_code)
            log.warning("agent %d (pid %d) exited by itself: %s; see %s", p.agent_id, p.pid, p.fate,
                        self.run_dir / "logs" / f"agent_{p.agent_id:04d}.log")  # fmt: skip

    def apply_failures(self, snap: Snapshot, config_for: Callable[[int], AgentConfig] | None) -> None:
        """The process failures due by ``snap.t``; ``config_for(a)`` makes a restarted agent's
        config (None: the agents run on other hosts, so the failures are only recorded as skipped)."""
        while self.next_failure < len(self.failures) and self.failures[self.next_failure].t <= snap.t + 1e-9:
            f = self.failures[self.next_failure]
            self.next_failure += 1
            if config_for is None or self.pool is None:
                self.event("skipped_process_failure", None, failure=f.model_dump(mode="json"),
                           why="the agents run on other hosts")  # fmt: skip
                continue
            if f.kind == "restart":
                for a in select(f, self.pool.gone_ids(), snap.ids, snap.positions, self.rng):
                    self.start(a, config_for(a), restart=True)
                continue
            sig = signal.SIGKILL if f.kind == "kill" else signal.SIGTERM
            for a in select(f, self.pool.running_ids(), snap.ids, snap.positions, self.rng):
                pid = self.pool.signal(a, sig)
                if pid is not None:
                    self.pool.procs[a].fate = "killed" if f.kind == "kill" else "terminated"
                    self.event("killed" if f.kind == "kill" else "terminated", a, pid=pid, signal=sig.name)
