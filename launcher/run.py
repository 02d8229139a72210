"""Running a scenario: the simulator (in this process), one agent OS process per robot, supervision,
the failure schedule carried out with real signals, Ctrl-C, and the run folder.

The run folder (``--out``, or ``runs/<name>/<UTC time>``) holds ``scenario.toml`` (the file as
given), ``scenario.json`` (every ``auto`` decided, the overrides applied), ``agents/`` (each
agent's config), ``logs/`` (each agent's output), ``recording/`` (see
:mod:`swarmcover.simulator.recording`), ``summary.json``, ``metrics.png`` and ``final.png``.

Modes (``only``): ``"all"`` (the simulator and every agent here), ``"sim"`` (the simulator only;
agents connect from elsewhere over TCP) and ``"agents"`` (some agents only, connecting to a
simulator elsewhere; runs until Ctrl-C, SIGTERM, or all of them exit).
"""

from __future__ import annotations

import logging
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, TextIO

from swarmcover.agentspec import AgentConfig, SimBody
from swarmcover.local import resolve_kernel
from swarmcover.simulator.world import Snapshot

from .cluster import ClusterInfo
from .hosts import has_display
from .keys import FleetKeys, open_keys
from .modes import run_agents_only, run_simulated
from .processes import ProcessPool, check_agent_command
from .progress import Progress
from .report import text_summary
from .resolve import ResolvedScenario
from .summary import summarize, write_report, write_scenario_json
from .supervise import Supervisor
from .vehicles import fly_vehicles

__all__ = ["Launch", "LaunchResult"]

log = logging.getLogger("swarmcover.launch")


@dataclass(frozen=True)
class LaunchResult:
    """How a launch ended: the run folder, its summary (as written), and whether it was interrupted."""

    run_dir: Path
    summary: dict
    interrupted: bool


class Launch:
    """One run of a resolved scenario. :meth:`run` blocks; it installs SIGINT/SIGTERM handlers
    (the first stops the run in order, a second one stops at once) and restores them after."""

    def __init__(
        self,
        rs: ResolvedScenario,
        run_dir: Path,
        *,
        headless: bool = False,
        only: Literal["all", "sim", "agents"] = "all",
        agent_ids: list[int] | None = None,
        connect: str | None = None,
        overrides: list[str] | None = None,
        progress_every: float = 5.0,
        out: TextIO | None = None,
        insecure: bool = False,
        keys: str | Path | None = None,
        cluster: ClusterInfo | None = None,
    ) -> None:
        if only == "agents" and connect is None:
            raise ValueError("--only agents needs --connect ENDPOINT (the simulator's address)")
        if insecure and keys is not None:
            raise ValueError("--insecure and --keys contradict each other")
        if only == "agents" and not insecure and keys is None:
            raise ValueError(
                "--only agents needs --keys DIR (the fleet's keys, from `swarmcover keys new` or "
                "the simulator's run folder) or --insecure"
            )
        if only != "sim":  # checked now: agents that cannot start stop the launch before anything does
            check_agent_command(rs.scenario.agents.command)
            if rs.scenario.agents.command is None:
                resolve_kernel(rs.scenario.agents.kernel)  # "c" on an install that did not build it
        self.rs = rs
        self.run_dir = Path(run_dir)
        self.headless = headless or not has_display()
        self.only = only
        self.agent_ids = list(rs.roster) if agent_ids is None else agent_ids
        self.connect = connect
        self.overrides = list(overrides or [])
        self.progress_every = progress_every
        self.out = out if out is not None else sys.stdout
        self.insecure = insecure
        given = None
        if keys is not None:  # checked now: a missing key stops the launch before anything starts
            given = open_keys(Path(keys), self.agent_ids, sim=only != "agents", agents=only != "sim")
        self.cluster = cluster  # the Ray cluster the agents are placed on (None: this machine)
        self.sup = Supervisor(rs, self.run_dir, self.event, given, cluster is not None)  # the agent processes
        self.interrupted = False
        self._signals = 0
        self._raise_on_signal = True
        self.end_state: tuple[int, list[int]] = (0, [])
        self.sim = None
        self.fleet = None  # a vehicle fleet's world (launcher/vehicles.py), when the agents fly vehicles
        self.vehicles = rs.scenario.vehicles.body != "none"
        if self.vehicles and only != "all":
            raise ValueError("a vehicle fleet has no simulator: launch it whole (no --only)")
        if cluster is not None and (only != "all" or self.vehicles):
            raise ValueError("--cluster is for a whole simulated launch (not --only, not vehicles)")
        self.view = None
        self.events: list[dict] = []  # launcher events when no simulator runs here
        self._last_progress = 0.0
        self.started_wall = 0.0
        self.progress: Progress | None = None  # the world's progress, once it runs

    # ---------------------------------------------------------------- folder
    def _make_folder(self) -> None:
        d = self.run_dir
        if d.exists() and any(d.iterdir()):
            raise ValueError(f"run folder {d} already exists and is not empty; choose another --out")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.rs.source, d / "scenario.toml")
        write_scenario_json(d, self.rs, self.overrides)

    # ---------------------------------------------------------------- events
    def event(self, kind: str, agent_id: int | None = None, **details) -> None:
        if self.sim is not None:
            self.sim.event(kind, agent_id, **details)
        else:
            row = {"t": time.monotonic() - self.started_wall, "kind": kind}
            if agent_id is not None:
                row["agent_id"] = agent_id
            self.events.append({**row, **details})

    def say(self, line: str) -> None:
        if self.progress is not None:  # above the live bar
            self.progress.say(line)
        else:
            print(line, file=self.out, flush=True)

    # ---------------------------------------------------------------- signals
    def _on_signal(self, signum, _frame) -> None:
        self._signals += 1
        self.interrupted = True
        if self.sim is not None:
            self.sim.stop()
        if self._signals > 1 and self._raise_on_signal:
            raise KeyboardInterrupt

    # ---------------------------------------------------------------- supervision
    @property
    def pool(self) -> ProcessPool | None:
        return self.sup.pool

    @property
    def keys(self) -> FleetKeys | None:
        return self.sup.keys

    def setup_keys(self) -> None:
        """The run's keys: given (``--keys``), or new ones in ``keys/`` of the run folder."""
        if self.insecure:
            self.say("  INSECURE: plaintext links, no authentication (--insecure)")
            return
        self.sup.make_keys()

    def agent_config(self, a: int) -> AgentConfig:
        if self.fleet is not None:
            return self.fleet.agent_config(a, self.keys)
        endpoint = self.connect if self.connect is not None else self.sim.endpoint
        return self.rs.agent_config(a, SimBody(endpoint=endpoint), curve=self.sup.curve_for(a))

    def apply_failures(self, snap: Snapshot) -> None:
        self.sup.apply_failures(snap, None if self.only == "sim" else self.agent_config)

    def progress_line(self, line: Callable[[], str], force: bool = False) -> None:
        """Say ``line()`` if ``progress_every`` wall seconds have passed since the last one (or ``force``)."""
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self.say(line())

    # ---------------------------------------------------------------- run
    def run(self) -> LaunchResult:
        if self.only != "agents" and not self.vehicles:  # a fleet too big for this machine is refused first
            from swarmcover.simulator.radio import check_memory

            check_memory(len(self.rs.roster), len(self.rs.sim.bounds))
        self._make_folder()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self.started_wall = time.monotonic()
        started_at = datetime.now(timezone.utc)
        try:
            try:
                if self.only == "agents":
                    run_agents_only(self)
                elif self.vehicles:
                    fly_vehicles(self)
                else:
                    run_simulated(self)
            except KeyboardInterrupt:
                self.interrupted = True
                self.say("second interrupt: stopping at once")
            finally:
                self._raise_on_signal = False  # from here on, cleanup must run to the end
                if self.progress is not None:
                    self.progress.close()
                    self.progress = None
                if self.interrupted:
                    self.event("interrupted", None, signals=self._signals)
                if self.sim is not None and not self.sim.link.closed:
                    w = self.sim.world  # the world as it ended, before the agents say bye
                    self.end_state = (int(w.live_mask().sum()), w.status().tolist())
                    if self.pool is not None:  # agents say bye (with their counters) to a listening world
                        self.pool.terminate()
                        self.sim.collect(0.5, until=lambda: not self.pool.running_ids())
                        self.sim.collect(0.05)  # a bye sent just before its process exited
                    self.sim.finish()
                if self.view is not None:
                    self.view.close()
                if self.pool is not None:
                    self.pool.shutdown(grace=1.0 if self.interrupted else 1.5)
            if self.sim is not None and not self.sim.done():
                self.interrupted = True  # the window was closed, or every agent died before the start
            summary = summarize(self, started_at)
            write_report(self, summary)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        self.say(text_summary(summary))
        return LaunchResult(self.run_dir, summary, self.interrupted)
