"""Agent OS processes: started by command, each in its own process group, never left behind.

Each agent runs ``python -m swarmcover.cli.main agent --config FILE --parent-pid PID`` (or the
scenario's own ``agents.command``), in a new session (so a Ctrl-C at the terminal reaches only the
launcher, which stops the agents in order) with its output in ``logs/agent_NNNN.log``. Our agents
also watch the launcher (``--parent-pid``: ``PR_SET_PDEATHSIG`` on Linux and a watchdog thread
everywhere) so that they exit when the launcher is killed outright.

Agents run ``nice`` (default 10) steps below the launcher: the simulator is one process keeping
the world's clock for all of them, and under a fair scheduler hundreds of busy agents would each
get as much CPU as it does. Measured on 2 cores (``benchmarks/fleet.py``, 40 s runs): 200 agents
at 10 Hz 88 % of commands on time at equal priority, 98.6 % with the agents at nice 10; 100 at
20 Hz 95 % and 99.7 %. The priority is set right after the process starts, before a Python agent
has started any thread (threads inherit it; a program that starts threads at once may keep some
at the launcher's priority).

On Linux agents are also batch processes (``[agents] scheduling = "batch"``, ``SCHED_BATCH``): an
agent woken by its state does not preempt the process running, the simulator or another agent in
the middle of its tick; it runs when that one blocks or its slice ends. Otherwise hundreds of
agents woken a fraction of a millisecond apart cut each other's ticks short, and each comes back
to caches the others have emptied. Measured on 2 cores (``benchmarks/fleet.py``, 30 s runs,
alternated with ``"normal"``; docs/performance.md): our agents' CPU per command 0.60 to 0.94 ms
against 0.67 to 1.31 at 200 agents at 10 Hz, and commands within a tick 63 to 99.96 % against 40
to 98 %; zero-work agents at 400 and 10 Hz 8.9 commands a second each against 4.8 and 5.6.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from swarmcover.agentspec import AgentConfig

__all__ = [
    "AgentProcess",
    "Priority",
    "ProcessPool",
    "agent_argv",
    "check_agent_command",
    "lower_priority",
    "processes_mentioning",
    "signal_group",
]

log = logging.getLogger("swarmcover.launch")


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes (other than this one) whose command line contains ``text``, for
    example a run folder: what a launch left running. Reads Linux's ``/proc``; empty elsewhere."""
    found, needle, me = [], text.encode(), os.getpid()
    proc = Path("/proc")
    for d in proc.iterdir() if proc.is_dir() else ():
        if d.name.isdigit() and int(d.name) != me:
            try:
                if needle in (d / "cmdline").read_bytes():
                    found.append(int(d.name))
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def check_agent_command(command: list[str] | None) -> None:
    """``ValueError`` naming the program if a scenario's ``agents.command`` could not be started:
    not found on ``PATH`` (or, with a ``/`` in it, not at that path) or not executable."""
    if command is None:
        return
    program = command[0]
    if shutil.which(program) is None:
        where = "at that path" if os.sep in program else "on PATH"
        why = "is not executable" if os.path.isfile(program) else f"was not found {where}"
        raise ValueError(f"agents.command: the program {program!r} {why}")


def agent_argv(command: list[str] | None, cfg_path: Path, log_level: str) -> list[str]:
    """The command that starts an agent with the config file ``cfg_path``: ``command`` with its
    ``{config}`` filled in, or our agent (this Python), tied to this process (``--parent-pid``)."""
    if command is not None:
        return [part.replace("{config}", str(cfg_path)) for part in command]
    return [sys.executable, "-m", "swarmcover.cli.main", "agent", "--config", str(cfg_path),
            "--parent-pid", str(os.getpid()), "--log-level", log_level]  # fmt: skip


@dataclass(frozen=True)
class Priority:
    """How agent processes share the CPU with the launcher: ``nice`` steps below it, and with
    ``batch`` (Linux) in ``SCHED_BATCH``, where a waking process does not preempt a running one."""

    nice: int = 0
    batch: bool = False


def lower_priority(pid: int, priority: Priority) -> None:
    """Run process ``pid`` ``priority.nice`` steps below this one and, with ``priority.batch``, as
    a batch process (both allowed to anyone, for their own processes). Where the system has no
    batch policy, or the process is gone already, it is logged and left as it is."""
    try:
        if priority.nice:
            os.setpriority(os.PRIO_PROCESS, pid, min(19, os.getpriority(os.PRIO_PROCESS, 0) + priority.nice))
        if priority.batch:
            if not hasattr(os, "SCHED_BATCH"):
                log.info("pid %d: no batch scheduling on this system; left as it is", pid)
                return
            os.sched_setscheduler(pid, os.SCHED_BATCH, os.sched_param(0))
    except OSError as exc:
        log.info("pid %d: priority not lowered: %s", pid, exc)


def signal_group(popen: subprocess.Popen, sig: int) -> int | None:
    """Send ``sig`` to the process group that ``popen`` leads; its pid, or None if it has ended."""
    if popen.poll() is not None:
        return None
    try:
        os.killpg(popen.pid, sig)
    except ProcessLookupError:
        return None
    return popen.pid


@dataclass
class AgentProcess:
    """One robot's controller process (the latest one for its id) and its history. ``popen`` is the
    process here, or one on a cluster node (:mod:`~swarmcover.launcher.cluster`): its ``pid``,
    ``poll()``, ``wait()`` and ``returncode``; ``node`` says which node (None: this machine)."""

    agent_id: int
    popen: subprocess.Popen
    pids: list[int] = field(default_factory=list)
    fate: str = "running"
    exit_code: int | None = None
    restarts: int = 0
    node: str | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None


class ProcessPool:
    """Start, signal, restart and reap agent processes; :meth:`shutdown` leaves none behind."""

    def __init__(
        self, run_dir: Path, command: list[str] | None = None, priority: Priority = Priority()
    ) -> None:
        self.run_dir = run_dir
        self.command = command
        self.priority = priority
        (run_dir / "agents").mkdir(parents=True, exist_ok=True)
        (run_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.procs: dict[int, AgentProcess] = {}

    def start(self, agent_id: int, config: AgentConfig, log_level: str = "WARNING") -> AgentProcess:
        """Write the agent's config into ``agents/`` (the keys the launcher set, none of the
        defaults: what a foreign agent must take) and start its process."""
        cfg_path = self.run_dir / "agents" / f"agent_{agent_id:04d}.json"
        cfg_path.write_text(config.model_dump_json(indent=1, exclude_unset=True), encoding="utf-8")
        argv = agent_argv(self.command, cfg_path, log_level)
        with open(self.run_dir / "logs" / f"agent_{agent_id:04d}.log", "ab") as out:
            try:
                popen = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:  # checked before the launch; gone or changed since
                raise ValueError(f"agent {agent_id}: cannot start {argv[0]!r}: {exc.strerror}") from None
        lower_priority(popen.pid, self.priority)
        return self._record(agent_id, popen)

    def _record(self, agent_id: int, popen, node: str | None = None) -> AgentProcess:
        """Agent ``agent_id``'s new process (``popen``), after its earlier ones."""
        prev = self.procs.get(agent_id)
        proc = AgentProcess(agent_id, popen, pids=[*(prev.pids if prev else []), popen.pid], node=node)
        if prev is not None:
            proc.restarts = prev.restarts + 1
        self.procs[agent_id] = proc
        return proc

    def signal(self, agent_id: int, sig: int) -> int | None:
        """Send ``sig`` to the process group of ``agent_id``'s process; its pid, or None if gone."""
        p = self.procs.get(agent_id)
        return None if p is None else signal_group(p.popen, sig)

    def running_ids(self) -> list[int]:
        return [a for a, p in self.procs.items() if p.running()]

    def gone_ids(self) -> list[int]:
        return [a for a, p in self.procs.items() if not p.running()]

    def reap(self) -> list[AgentProcess]:
        """Processes that ended since the last call and whose end nobody ordered (fate ``running``)."""
        ended = []
        for p in self.procs.values():
            code = p.popen.poll()
            if code is not None and p.exit_code is None:
                p.exit_code = code
                if p.fate == "running":
                    p.fate = f"exited ({code})" if code >= 0 else f"died ({signal.Signals(-code).name})"
                    ended.append(p)
        return ended

    def terminate(self) -> None:
        """SIGTERM every running agent (each says bye and exits); see :meth:`shutdown` to wait."""
        for p in self.procs.values():
            if p.running():
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass

    def shutdown(self, grace: float = 1.5) -> None:
        """SIGTERM every running agent (they say bye and exit within 50 ms), then SIGKILL whoever is
        left after ``grace`` seconds, and wait for all of them."""
        live = [p for p in self.procs.values() if p.running()]
        for p in live:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in live:
            try:
                p.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in live:
            if p.running():
                log.warning("agent %d (pid %d) ignored SIGTERM; killing it", p.agent_id, p.pid)
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in self.procs.values():
            try:
                p.popen.wait(2.0)
            except subprocess.TimeoutExpired:  # pragma: no cover - a process that survives SIGKILL
                log.error("agent %d (pid %d) did not exit", p.agent_id, p.pid)
            if p.exit_code is None:
                p.exit_code = p.popen.returncode
                if p.fate == "running":
                    p.fate = "completed"
