"""Agent processes placed on a Ray cluster: ``swarmcover launch FILE --cluster ray[://ADDRESS]``.

The simulator runs here, on a node of the cluster (the head, as a rule); Ray places the agents.
One placement group holds a bundle of ``cluster.cpus_per_agent`` CPUs per agent, spread over the
nodes or packed onto few (``cluster.strategy``): Ray decides which node runs which robot. On
each node that got bundles, one small actor (:class:`AgentHost`, scheduled in that node's first
bundle) starts that node's agent processes by command, exactly as
:class:`~swarmcover.launcher.processes.ProcessPool` does on one machine, watches them, signals
them (the failure schedule's ``kill``, ``terminate``, ``restart``), and hands their logs back.

- **Secrets.** Each agent's config and CurveZMQ key files reach its node as Ray messages and are
  written only into the actor's private folder on that node's local disk (``mkdtemp``: mode 0700,
  files 0600), removed when the run ends (a lost node's stays on its own disk); nothing is written
  to a shared disk.
- **Supervision.** An agent whose process dies is reported as on one machine (``process_exited``,
  its exit code); a node or actor that Ray reports dead takes its agents with it (reported as
  SIGKILLed). A ``restart`` starts an agent on the node that holds its bundle now: Ray moves a
  lost node's bundles to nodes with room; where it has not, the restart fails (an event, not the
  run's end). The nodes are polled without waiting, so a node that hangs stalls nothing. Each agent
  watches its actor (``--parent-pid``), and Ray ends the actors when the launcher goes, so no
  agent outlives the run.
- **Logs and byes.** The agents' output is brought back into ``logs/`` of the run folder when each
  agent ends and at the end of the run; byes and counters come over the wire, as always.

Ray is imported only here, and only when ``--cluster`` is given (the ``ray`` extra).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from swarmcover.agentspec import AgentConfig, CurveKeys

from .processes import AgentProcess, Priority, ProcessPool, agent_argv, lower_priority, signal_group

__all__ = ["AgentHost", "ClusterInfo", "RayPool", "connect", "parse_cluster"]

log = logging.getLogger("swarmcover.launch")

_POLL_EVERY = 0.05  # wall seconds a poll of the nodes' agents is reused for


def parse_cluster(text: str) -> str | None:
    """``--cluster`` as given: ``ray`` (the cluster this machine belongs to: ``RAY_ADDRESS``, else
    the one ``ray start`` left running here) or ``ray://HOST:PORT`` (the head's GCS address, as
    ``ray start --head`` prints it). Returns the address for ``ray.init`` (None: Ray's own choice)."""
    if text == "ray":
        return None
    if text.startswith("ray://") and len(text) > len("ray://"):
        return text[len("ray://") :]
    raise ValueError(f"--cluster {text!r}: expected ray or ray://HOST:PORT")


@dataclass(frozen=True)
class ClusterInfo:
    """The cluster a launch runs on: the address asked for, this node, and every live node."""

    address: str
    node_id: str  # the launcher's (the simulator's) node
    node_ip: str  # where agents on other nodes reach the simulator
    nodes: list[dict]

    def describe(self) -> dict:
        return {"kind": "ray", "address": self.address, "head_node": self.node_id, "nodes": self.nodes}


def connect(address: str | None) -> ClusterInfo:
    """Join the Ray cluster at ``address`` as its driver (``ValueError`` naming what is missing)."""
    try:
        import ray
    except ImportError:
        raise ValueError("--cluster ray needs Ray: pip install 'swarmcover[ray]'") from None
    try:
        ray.init(address=address or "auto", log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=False)  # fmt: skip
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or os.environ.get("RAY_ADDRESS") or "this machine"
        raise ValueError(
            f"--cluster: no Ray cluster at {where} ({str(exc).splitlines()[0][:200]}); start one with "
            "`ray start --head`"
        ) from None
    ctx = ray.get_runtime_context()
    nodes = [
        {"node_id": n["NodeID"], "ip": n["NodeManagerAddress"], "cpus": n["Resources"].get("CPU", 0.0)}
        for n in ray.nodes()
        if n["Alive"]
    ]
    return ClusterInfo(address or "auto", ctx.get_node_id(), ray.util.get_node_ip_address(), nodes)


def disconnect() -> None:
    import ray

    ray.shutdown()


class AgentHost:
    """Runs inside a Ray actor on one node: that node's agent processes (see the module docstring)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="swarmcover-agents-"))  # 0700, this node's disk
        self.procs: dict[int, subprocess.Popen] = {}

    def where(self) -> dict:
        import ray

        return {"node_id": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(),
                "pid": os.getpid(), "dir": str(self.dir)}  # fmt: skip

    def start(self, agent_id: int, config_json: str, files: dict[str, bytes], command: list[str] | None,
              log_level: str, priority: Priority) -> int:  # fmt: skip
        """Write the agent's config and key files (private) and start its process; its pid."""
        folder = self.dir / f"agent_{agent_id:04d}"
        folder.mkdir(mode=0o700, exist_ok=True)
        for name, data in files.items():
            path = folder / Path(name).name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        cfg = folder / "config.json"
        cfg.write_text(config_json, encoding="utf-8")
        argv = agent_argv(command, cfg, log_level)
        with open(folder / "agent.log", "ab") as out:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, close_fds=True)  # fmt: skip
        lower_priority(p.pid, priority)
        self.procs[agent_id] = p
        return p.pid

    def poll(self) -> dict[int, int | None]:
        return {a: p.poll() for a, p in self.procs.items()}

    def signal(self, agent_id: int, sig: int) -> int | None:
        p = self.procs.get(agent_id)
        return None if p is None else signal_group(p, sig)

    def stop(self, grace: float) -> dict[int, int | None]:
        """SIGTERM every running agent, SIGKILL whoever is left after ``grace``; their exit codes."""
        live = [a for a, p in self.procs.items() if p.poll() is None]
        for a in live:
            self.signal(a, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for a in live:
            try:
                self.procs[a].wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.signal(a, signal.SIGKILL)
        for p in self.procs.values():
            try:
                p.wait(2.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
                pass
        return self.poll()

    def log(self, agent_id: int) -> bytes:
        try:
            return (self.dir / f"agent_{agent_id:04d}" / "agent.log").read_bytes()
        except OSError:
            return b""

    def close(self) -> None:
        self.stop(1.0)
        shutil.rmtree(self.dir, ignore_errors=True)


class _Remote:
    """An agent process on a node, as :class:`AgentProcess` sees a local one (pid, poll, wait)."""

    def __init__(self, pool: RayPool, agent_id: int, pid: int) -> None:
        self.pool, self.agent_id, self.pid = pool, agent_id, pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.pool.status(self.agent_id, self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"agent {self.agent_id}", timeout)
            time.sleep(_POLL_EVERY)
        return self.returncode


class RayPool(ProcessPool):
    """:class:`ProcessPool` whose processes Ray places (see the module docstring)."""

    def __init__(self, run_dir: Path, command: list[str] | None, priority: Priority, ids: list[int],
                 cpus_per_agent: float, strategy: str, place_timeout: float) -> None:  # fmt: skip
        import ray
        from ray.util.placement_group import placement_group, placement_group_table
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        super().__init__(run_dir, command, priority)
        self.ray = ray
        total = ray.cluster_resources().get("CPU", 0.0)
        need = len(ids) * cpus_per_agent
        if need > total + 1e-9:
            raise ValueError(
                f"--cluster: {len(ids)} agents at {cpus_per_agent:g} CPU each need {need:g} CPUs; the cluster"
                f" has {total:g}: lower cluster.cpus_per_agent or add nodes"
            )
        self.pg = placement_group([{"CPU": cpus_per_agent}] * len(ids), strategy=strategy.upper())
        try:
            ray.get(self.pg.ready(), timeout=place_timeout)
        except ray.exceptions.GetTimeoutError:
            ray.util.remove_placement_group(self.pg)
            free = ray.available_resources().get("CPU", 0.0)
            raise ValueError(
                f"--cluster: Ray could not place {len(ids)} agents at {cpus_per_agent:g} CPU each within "
                f"{place_timeout:g} s ({free:g} CPUs free); lower cluster.cpus_per_agent or add nodes"
            ) from None
        self._table, self._in_bundle = placement_group_table, PlacementGroupSchedulingStrategy
        self.bundle_of = {a: i for i, a in enumerate(ids)}  # each agent's bundle (Ray may move it)
        bundles = placement_group_table(self.pg)["bundles_to_node_id"]
        self.node_of = {a: bundles[i] for i, a in enumerate(ids)}
        self.hosts, self.where = {}, {}
        for i in sorted(bundles):
            if bundles[i] not in self.hosts:
                self.hosts[bundles[i]] = self._host_in(i)
        found = ray.get([h.where.remote() for h in self.hosts.values()])
        self.where = dict(zip(self.hosts, found, strict=True))
        self.lost: set[str] = set()  # nodes whose actor Ray reports dead
        self._codes: dict[int, int | None] = {}
        self._asked: dict[str, object] = {}  # node -> its unanswered poll
        self._polled = 0.0

    def _host_in(self, bundle: int):
        """A new :class:`AgentHost` actor on the node that holds ``bundle`` (it takes no CPU itself)."""
        host = self.ray.remote(num_cpus=0, max_restarts=0)(AgentHost)
        return host.options(scheduling_strategy=self._in_bundle(self.pg, bundle)).remote()

    def _call(self, node: str, method: str, *args, timeout: float = 30.0):
        """``method(*args)`` on ``node``'s actor; None if Ray says it died (the node marked lost) or
        if it did not answer within ``timeout`` seconds."""
        if node in self.lost:
            return None
        try:
            return self.ray.get(getattr(self.hosts[node], method).remote(*args), timeout=timeout)
        except self.ray.exceptions.ActorDiedError:
            self._lose(node)
        except (self.ray.exceptions.ActorUnavailableError, self.ray.exceptions.GetTimeoutError) as exc:
            log.warning("cluster node %s: %s did not answer: %s", node, method, type(exc).__name__)
        return None

    def _lose(self, node: str) -> None:
        if node not in self.lost:
            log.error("cluster node %s: its agents' host died (node lost?); its agents count as killed", node)
            self.lost.add(node)

    def status(self, agent_id: int, pid: int) -> int | None:
        """Agent ``agent_id``'s exit code (None: running), from the nodes' latest answers. Never
        waits: each node is asked again every :data:`_POLL_EVERY` seconds once it has answered, so
        a node that hangs holds back only its own agents' news; an agent on a lost node counts as
        SIGKILLed."""
        if self._asked:
            refs = list(self._asked.values())
            ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
            for node, ref in [(n, r) for n, r in self._asked.items() if r in ready]:
                del self._asked[node]
                try:
                    self._codes.update(self.ray.get(ref))
                except self.ray.exceptions.ActorDiedError:
                    self._lose(node)
                except self.ray.exceptions.RayActorError:  # unavailable for now: ask again
                    pass
        now = time.monotonic()
        if now - self._polled >= _POLL_EVERY:
            self._polled = now
            for node, host in self.hosts.items():
                if node not in self.lost and node not in self._asked:
                    self._asked[node] = host.poll.remote()
        if self.node_of[agent_id] in self.lost:
            return -signal.SIGKILL
        return self._codes.get(agent_id)

    def _node_for(self, agent_id: int) -> str:
        """The node agent ``agent_id`` starts on: its bundle's. Ray moves the bundles of a lost
        node to others when they have room; where it has not (yet), the agent cannot start."""
        node = self.node_of[agent_id]
        if node not in self.lost:
            return node
        moved = self._table(self.pg)["bundles_to_node_id"].get(self.bundle_of[agent_id])
        if moved is None or moved in self.lost:
            raise ValueError(
                f"agent {agent_id}: its node {node} is lost and Ray has not placed its CPU share elsewhere"
                " (no room on the other nodes?)"
            )
        if moved not in self.hosts:
            self.hosts[moved] = self._host_in(self.bundle_of[agent_id])
            where = self._call(moved, "where")
            if where is None:
                raise ValueError(f"agent {agent_id}: node {moved}, where Ray moved it, did not answer")
            self.where[moved] = where
        log.info("agent %d: moved with its CPU share from lost node %s to %s", agent_id, node, moved)
        self.node_of[agent_id] = moved
        return moved

    def start(self, agent_id: int, config: AgentConfig, log_level: str = "WARNING") -> AgentProcess:
        """Send the agent's config and keys to its node's actor, which starts its process there."""
        node = self._node_for(agent_id)
        folder = f"{self.where[node]['dir']}/agent_{agent_id:04d}"
        files = {}
        if config.curve is not None:  # the key files travel as bytes; the config names their copies
            secret, server = Path(config.curve.secret_key), config.curve.server_key
            files[secret.name] = secret.read_bytes()
            remote_server = None
            if server is not None:
                files[Path(server).name] = Path(server).read_bytes()
                remote_server = f"{folder}/{Path(server).name}"
            curve = CurveKeys(secret_key=f"{folder}/{secret.name}", server_key=remote_server)
            config = config.model_copy(update={"curve": curve})
        local = self.run_dir / "agents" / f"agent_{agent_id:04d}.json"  # the run's record (no secrets in it)
        text = config.model_dump_json(indent=1, exclude_unset=True)
        local.write_text(text, encoding="utf-8")
        pid = self._call(node, "start", agent_id, text, files, self.command, log_level, self.priority)
        if pid is None:
            raise ValueError(f"agent {agent_id}: node {node} did not start it (lost, or not answering)")
        self._codes[agent_id] = None
        return self._record(agent_id, _Remote(self, agent_id, pid), node)

    def signal(self, agent_id: int, sig: int) -> int | None:
        p = self.procs.get(agent_id)
        if p is None or not p.running():
            return None
        return self._call(self.node_of[agent_id], "signal", agent_id, int(sig))

    def reap(self) -> list[AgentProcess]:
        ended = super().reap()
        for p in ended:
            self._fetch_log(p.agent_id)
        return ended

    def terminate(self) -> None:
        for a in self.running_ids():
            self.signal(a, signal.SIGTERM)

    def shutdown(self, grace: float = 1.5) -> None:
        """Stop every node's agents, bring their logs back, and give the cluster its resources back."""
        for node in self.hosts:
            codes = self._call(node, "stop", grace, timeout=grace + 30.0)
            if codes is not None:
                self._codes.update(codes)
        self._polled = time.monotonic()
        for a, p in self.procs.items():
            if p.exit_code is None:
                p.exit_code = p.popen.poll()
                if p.fate == "running":
                    p.fate = "completed"
            self._fetch_log(a)
        for node, h in self.hosts.items():
            self._call(node, "close")
            self.ray.kill(h)
        self.ray.util.remove_placement_group(self.pg)

    def _fetch_log(self, agent_id: int) -> None:
        data = self._call(self.node_of[agent_id], "log", agent_id)
        if data is not None:
            (self.run_dir / "logs" / f"agent_{agent_id:04d}.log").write_bytes(data)

    def describe(self) -> dict:
        """For ``summary.json``: the placement and each node's agents."""
        return {
            "placement": {a: n for a, n in sorted(self.node_of.items())},
            "hosts": {n: {k: v for k, v in w.items() if k != "dir"} for n, w in self.where.items()},
            "lost": sorted(self.lost),
            "python": sys.version.split()[0],
        }
