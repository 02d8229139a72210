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

import dataclasses
import logging
import math
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal, TextIO

import numpy as np

from swarmcover.local import resolve_kernel
from swarmcover.simulator.faults import select
from swarmcover.simulator.world import Snapshot, Status

from .keys import FleetKeys, make_keys, open_keys
from .processes import ProcessPool, check_agent_command
from .progress import Progress
from .report import SUMMARY_SCHEMA, final_png, metrics_png, prepare_plotting, text_summary, write_json_atomic
from .resolve import ResolvedScenario

_METRIC_KEYS = (
    "t",
    "energy_distance",
    "lloyd_cost",
    "blob_energy",
    "alive",
    "distance",
    "underserved",
    "on_time",
)
_FINAL_METRICS = ("energy_distance", "lloyd_cost", "blob_energy", "underserved")

__all__ = ["Launch", "LaunchResult", "default_run_dir", "has_display", "parse_ids"]

log = logging.getLogger("swarmcover.launch")


def has_display() -> bool:
    """Whether a window can be opened: SDL is not told to use no display, and on X11/Wayland
    systems a display is set (macOS and Windows always have one)."""
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_run_dir(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / name / stamp


def parse_ids(text: str, roster: list[int] | None) -> list[int]:
    """``"0-9,12,20-24"`` to a sorted list of ids, each checked against ``roster`` (if given)."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            ids = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise ValueError(f"--agents {text!r}: {part!r} is not an id or a range like 0-9") from None
        if len(ids) > 100_000 or len(out) > 100_000:
            raise ValueError(f"--agents {text!r}: more than 100000 ids")
        out.update(ids)
    if len(out) > 100_000 or any(a < 0 or a >= 1 << 31 for a in out):
        raise ValueError(f"--agents {text!r}: ids must be 0..2^31-1, at most 100000 of them")
    bad = sorted(out - set(roster)) if roster is not None else []
    if bad:
        raise ValueError(f"--agents {text!r}: ids {bad[:10]} are not on the roster (0..{len(roster) - 1})")
    return sorted(out)


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
        self.keys_dir = Path(keys) if keys is not None else None
        self.keys: FleetKeys | None = None
        if self.keys_dir is not None:  # checked now: a missing key stops the launch before anything starts
            self.keys = open_keys(self.keys_dir, self.agent_ids, sim=only != "agents", agents=only != "sim")
        self.interrupted = False
        self._signals = 0
        self._raise_on_signal = True
        self._end: tuple[int, list[int]] = (0, [])
        self.sim = None
        self.fleet = None  # a vehicle fleet's world (launcher/vehicles.py), when the agents fly vehicles
        self.vehicles = rs.scenario.vehicles.body != "none"
        if self.vehicles and only != "all":
            raise ValueError("a vehicle fleet has no simulator: launch it whole (no --only)")
        self.view = None
        self.pool: ProcessPool | None = None
        self.events: list[dict] = []  # launcher events when no simulator runs here
        self.rng = np.random.default_rng(rs.scenario.seed + 2)
        self._failures = sorted(rs.process_failures, key=lambda f: f.t)
        self._next_failure = 0
        self._last_progress = 0.0
        self._started_wall = 0.0
        self.progress: Progress | None = None  # the world's progress, once it runs

    # ---------------------------------------------------------------- folder
    def _make_folder(self) -> None:
        d = self.run_dir
        if d.exists() and any(d.iterdir()):
            raise ValueError(f"run folder {d} already exists and is not empty; choose another --out")
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.rs.source, d / "scenario.toml")
        rs = self.rs
        resolved = {
            "source": str(rs.source.resolve()),
            "overrides": self.overrides,
            "scenario": rs.scenario.model_dump(mode="json"),
            "decided": {
                "eps": rs.eps,
                "schedule": [vars(st) for st in rs.schedule.stages],
                "after_losses": [vars(st) for st in rs.after_losses.stages] if rs.after_losses else None,
                "drift_tau": rs.drift_tau,
                "spacing": rs.spacing,
                "speed_limit": rs.speed_limit,
                "rate_hz": rs.rate_hz,
                "r_min": rs.r_min,
                "target_smoothing": rs.smoothing,
            },
            "simulator": rs.sim.model_dump(mode="json"),
        }
        write_json_atomic(d / "scenario.json", resolved)

    # ---------------------------------------------------------------- events
    def event(self, kind: str, agent_id: int | None = None, **details) -> None:
        if self.sim is not None:
            self.sim.event(kind, agent_id, **details)
        else:
            row = {"t": time.monotonic() - self._started_wall, "kind": kind}
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
    def _setup_keys(self) -> None:
        """The run's keys: given (``--keys``), or new ones in ``keys/`` of the run folder."""
        if self.insecure:
            self.say("  INSECURE: plaintext links, no authentication (--insecure)")
            return
        if self.keys is None:
            self.keys = make_keys(self.run_dir / "keys", list(self.rs.roster))

    def _curve_for(self, a: int) -> dict | None:
        if self.keys is None:
            return None
        return {"secret_key": str(self.keys.agent_secret(a)), "server_key": str(self.keys.server_public)}

    def _start_agent(self, a: int, restart: bool = False) -> None:
        endpoint = self.connect if self.connect is not None else self.sim.endpoint
        cfg = self.rs.agent_config(a, endpoint, self._curve_for(a))
        p = self.pool.start(a, cfg, self.rs.scenario.agents.log_level)
        self.event("restarted" if restart else "process_started", a, pid=p.pid)

    def _apply_failures(self, snap: Snapshot) -> None:
        world_t = snap.t
        while (
            self._next_failure < len(self._failures)
            and self._failures[self._next_failure].t <= world_t + 1e-9
        ):
            f = self._failures[self._next_failure]
            self._next_failure += 1
            if self.only == "sim":
                self.event(
                    "skipped_process_failure",
                    None,
                    failure=f.model_dump(mode="json"),
                    why="the agents run on other hosts",
                )
                continue
            if f.kind == "restart":
                for a in select(f, self.pool.gone_ids(), snap.ids, snap.positions, self.rng):
                    self._start_agent(a, restart=True)
                continue
            sig = signal.SIGKILL if f.kind == "kill" else signal.SIGTERM
            for a in select(f, self.pool.running_ids(), snap.ids, snap.positions, self.rng):
                pid = self.pool.signal(a, sig)
                if pid is not None:
                    self.pool.procs[a].fate = "killed" if f.kind == "kill" else "terminated"
                    self.event("killed" if f.kind == "kill" else "terminated", a, pid=pid, signal=sig.name)

    def _reap(self) -> None:
        if self.pool is None:
            return
        for p in self.pool.reap():
            self.event("process_exited", p.agent_id, pid=p.pid, exit_code=p.exit_code)
            log.warning(
                "agent %d (pid %d) exited by itself: %s; see %s",
                p.agent_id,
                p.pid,
                p.fate,
                self.run_dir / "logs" / f"agent_{p.agent_id:04d}.log",
            )

    def _progress(self, line: Callable[[], str], force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self.say(line())

    def _on_wait(self, joined: int) -> None:
        self._reap()
        if self.only == "all" and self.pool is not None and not self.pool.running_ids():
            self.say(
                "every agent process exited before the run started; see the logs in "
                + str(self.run_dir / "logs")
            )
            self.sim.stop()
        self._progress(
            lambda: (
                f"  waiting for agents: {joined}/{len(self.rs.roster)} joined "
                f"({time.monotonic() - self._started_wall:.0f} s)"
            )
        )

    def _on_snapshot(self, snap) -> None:
        self._reap()
        self._apply_failures(snap)

        m = self.sim.metrics
        ed = m["energy_distance"][-1] if m["energy_distance"] else math.nan

        def live() -> int:
            return int(Status.alive(snap.status).sum())

        def line() -> str:
            return (
                f"  t {snap.t:7.1f}/{self.rs.sim.duration:g}  live {live()}/{len(snap.ids)}  "
                f"energy distance {ed:.4f}  commands {self.sim.counts['commands']}  "
                f"rejected {self.sim.counts['rejected']}"
            )

        if self.progress is None:
            self._progress(line)
        else:
            self.progress.update(
                snap.t, lambda: f"live {live()}/{len(snap.ids)}, energy distance {ed:.3g}", line
            )

    # ---------------------------------------------------------------- run
    def run(self) -> LaunchResult:
        if self.only != "agents" and not self.vehicles:  # a fleet too big for this machine is refused first
            from swarmcover.simulator.radio import check_memory

            check_memory(len(self.rs.roster), len(self.rs.sim.bounds))
        self._make_folder()
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._started_wall = time.monotonic()
        started_at = datetime.now(timezone.utc)
        try:
            try:
                if self.only == "agents":
                    self._run_agents_only()
                elif self.vehicles:
                    self._run_vehicles()
                else:
                    self._run_with_sim()
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
                    self._end = (int(w.live_mask().sum()), w.status().tolist())
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
            summary = self._summary(started_at)
            self._write_report(summary)
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        self.say(text_summary(summary))
        return LaunchResult(self.run_dir, summary, self.interrupted)

    def _run_with_sim(self) -> None:
        from swarmcover.simulator.server import Simulator

        rs = self.rs
        self._setup_keys()
        raw = rs.sim.model_dump()
        raw["record"] = str(self.run_dir / "recording") if rs.scenario.simulator.record else None
        if self.keys is not None:
            raw["insecure"] = False
            raw["curve"] = {"secret_key": str(self.keys.server_secret), "clients": str(self.keys.clients)}
        prepare_plotting()
        import zmq

        try:
            self.sim = Simulator(type(rs.sim).model_validate(raw))
        except zmq.ZMQError as exc:
            raise ValueError(f"the simulator cannot listen at {raw['endpoint']}: {exc}") from None
        self.sim.event(
            "launch",
            None,
            scenario=rs.scenario.name,
            mode=self.only,
            pid=os.getpid(),
            run_folder=str(self.run_dir),
        )
        self.say(
            f"swarmcover launch: {rs.scenario.name}: {len(rs.roster)} robots, {rs.sim.duration:g} world s, "
            f"{self._law_line()}, speed limit {rs.speed_limit:.4g}, simulator at {self.sim.endpoint}"
        )
        self.say(f"  run folder {self.run_dir}")
        if self.only == "sim":
            self.say(
                "  simulator only: start the agents elsewhere with\n"
                f"    swarmcover launch {rs.source} --only agents "
                f"--connect {self._public(self.sim.endpoint)} --agents 0-{len(rs.roster) - 1} "
                + ("--insecure" if self.keys is None else f"--keys {self.keys.root}")
                + (
                    ""
                    if self.keys is None
                    else "\n  (copy server.key and each host's agents/agent_NNNN.key_secret there)"
                )
            )
        live = rs.sim.render.enabled and not self.headless
        frames = rs.scenario.render.frames
        if live or frames:
            from swarmcover.simulator.live import LiveView, WindowUnavailable

            if frames:
                rc = self.sim.cfg.render.model_copy(update={"frames_dir": str(self.run_dir / "frames")})
                self.sim.cfg = self.sim.cfg.model_copy(update={"render": rc})
            try:
                self.view = LiveView(self.sim, headless=not live)
            except WindowUnavailable as e:
                log.warning("%s; running headless (--headless says so without trying)", e)
                self.headless = True
                self.view = LiveView(self.sim, headless=True) if frames else None
            if self.view is not None:
                self.view.attach()
        self.sim.observers.append(self._on_snapshot)
        if self.only == "all":
            self._warm_agents_cache()
            self.pool = ProcessPool(self.run_dir, rs.scenario.agents.command, rs.scenario.agents.nice)
            for a in self.agent_ids:
                self._start_agent(a)
            self.say(f"  started {len(self.agent_ids)} agent processes; waiting for them to join")
        self.sim.start(on_wait=self._on_wait)
        if self.interrupted or not self.sim.running:
            return
        self.say(
            f"  {int(self.sim.world.connected.sum())}/{len(rs.roster)} agents joined in "
            f"{time.monotonic() - self._started_wall:.1f} s; running"
        )
        self.progress = Progress(self.out, rs.sim.duration, every=self.progress_every)
        self._apply_failures(self.sim.world.snapshot())  # failures at t = 0
        self.sim.advance()

    def _run_vehicles(self) -> None:
        """Agents flying vehicles (launcher/vehicles.py): start them, watch their telemetry for the
        run's duration (wall seconds), carry out the failure schedule on their processes."""
        from .vehicles import VehicleFleet

        rs = self.rs
        self._setup_keys()
        prepare_plotting()
        self.fleet = fleet = VehicleFleet(rs, self.run_dir)
        self.pool = ProcessPool(self.run_dir, rs.scenario.agents.command, rs.scenario.agents.nice)
        v = rs.scenario.vehicles
        self.event("launch", None, scenario=rs.scenario.name, mode="vehicles", pid=os.getpid(),
                   run_folder=str(self.run_dir))  # fmt: skip
        self.say(f"swarmcover launch: {rs.scenario.name}: {len(rs.roster)} agents flying {v.body} vehicles "
                 f"(no simulator), {rs.sim.duration:g} s, {self._law_line()}, "
                 f"speed limit {rs.speed_limit:.4g}")  # fmt: skip
        self.say(f"  run folder {self.run_dir}")
        for a in self.agent_ids:
            p = self.pool.start(a, fleet.agent_config(a, self.keys), rs.scenario.agents.log_level)
            self.event("process_started", a, pid=p.pid)
        self.progress = Progress(self.out, rs.sim.duration, every=self.progress_every)
        every = rs.scenario.simulator.metrics_every
        while not self.interrupted and self.pool.running_ids():
            t = time.monotonic() - self._started_wall
            if t >= rs.sim.duration:
                break
            self._reap()
            if fleet.poll(t, time.time(), every):
                for kind, a in fleet.changes(time.time()):  # silent: its agent or its vehicle is gone
                    self.event(kind, a)
                self._apply_failures(fleet.snapshot(t, time.time()))
                m = fleet.metrics

                def line(t=t, m=m) -> str:
                    ed = m["energy_distance"][-1]
                    return (
                        f"  t = {t:6.1f} s   heard {m['alive'][-1]}/{len(rs.roster)}   energy distance "
                        + (f"{ed:.4f}" if ed is not None else "-")
                    )

                self.progress.update(t, lambda m=m: f"heard {m['alive'][-1]}/{len(rs.roster)}", line)
            time.sleep(0.05)
        self._reap()

    def _law_line(self) -> str:
        st = self.rs.schedule.stages
        if len(st) == 1:
            return f"eps {self.rs.eps:.4g}"
        span = self.rs.schedule.duration
        return f"eps {st[0].eps:.4g} -> {st[-1].eps:.4g} in {len(st)} stages over {span:.0f} s"

    @staticmethod
    def _public(endpoint: str) -> str:
        if "0.0.0.0" in endpoint or "*" in endpoint.split("//", 1)[-1].split(":")[0]:
            import socket

            return endpoint.replace("0.0.0.0", socket.gethostname()).replace(
                "//*", "//" + socket.gethostname()
            )
        return endpoint

    def _warm_agents_cache(self) -> None:
        """Compile the agents' kernels here, once, into numba's cache: on a fresh install the
        agents then load them instead of each compiling them at once (seconds of CPU apiece)."""
        if self.rs.scenario.agents.command is not None or self.rs.scenario.agents.kernel != "numba":
            return  # another agent program, or agents that compile nothing
        from swarmcover.domain import Box
        from swarmcover.law import warm_local_velocity

        t0 = time.monotonic()
        warm_local_velocity(Box(self.rs.sim.bounds), self.rs.scenario.domain.boundary)
        if time.monotonic() - t0 > 1.0:
            self.say(f"  compiled the agents' kernels in {time.monotonic() - t0:.1f} s (once per install)")

    def _run_agents_only(self) -> None:
        self._setup_keys()
        self._warm_agents_cache()
        self.pool = ProcessPool(self.run_dir, self.rs.scenario.agents.command, self.rs.scenario.agents.nice)
        for a in self.agent_ids:
            self._start_agent(a)
        self.say(
            f"swarmcover launch: {len(self.agent_ids)} agents of {self.rs.scenario.name} connecting to "
            f"{self.connect}; Ctrl-C stops them"
        )
        if self._failures:
            self.say("  (the failure schedule is carried out by the launcher that runs the simulator)")
        while not self.interrupted and self.pool.running_ids():
            self._reap()
            time.sleep(0.05)
            self._progress(
                lambda: (
                    f"  {len(self.pool.running_ids())}/{len(self.agent_ids)} agents running "
                    f"({time.monotonic() - self._started_wall:.0f} s)"
                )
            )
        self._reap()

    # ---------------------------------------------------------------- report
    def _summary(self, started_at: datetime) -> dict:
        sim = self.sim
        if self.fleet is not None:  # read first: the agents' last lines carry their counters
            fleet_final = self.fleet.final(time.monotonic() - self._started_wall, time.time())
        agents = []
        procs = self.pool.procs if self.pool is not None else {}
        for a in self.rs.roster if self.only != "agents" else self.agent_ids:
            p = procs.get(a)
            row = {
                "id": a,
                "pid": p.pid if p else None,
                "pids": p.pids if p else [],
                "fate": p.fate if p else "not started here",
                "exit_code": p.exit_code if p else None,
                "restarts": p.restarts if p else 0,
            }
            if self.fleet is not None:  # a vehicle fleet: what its telemetry said
                row["counters"] = self.fleet.counters.get(a)
            if sim is not None:
                row["joined"] = a in sim.sessions.epochs
                last = [e for e in sim.events if e.get("agent_id") == a and e["kind"] in ("bye", "stats")]
                row["counters"] = last[-1]["counters"] if last else None
                k = sim.world.index[a]  # the simulator's own count, whatever the agent reports
                row["states"] = int(sim.fleet_metrics.states_to[k])
                row["answered"] = int(sim.fleet_metrics.answered_by[k])
                row["on_time"] = int(sim.fleet_metrics.on_time_by[k])
                if sim.sessions.schedule_epoch[k] >= 0:  # where it last said it was in its schedule
                    row["schedule"] = {
                        "epoch": int(sim.sessions.schedule_epoch[k]),
                        "stage": int(sim.sessions.schedule_stage[k]),
                        "cause": sim.sessions.schedule_cause[k],
                    }
            agents.append(row)
        metrics: dict[str, list] = {k: [] for k in _METRIC_KEYS}
        events = self.events
        messages: dict = {"sent": 0, "delivered": 0, "dropped": 0, "rejected": 0}
        final: dict = {}
        if sim is not None:
            metrics = {k: list(v) for k, v in sim.metrics.items()}
            events = list(sim.events)
            rc = sim.radio.counters.as_dict()
            messages = {
                **rc,
                "rejected": sim.counts["rejected"],
                "simulator_received": sim.counts["messages_in"],
                "simulator_sent": sim.counts["messages_out"],
                "commands": sim.counts["commands"],
                "send_failed": sim.counts["send_failed"],
                # what members sent beyond their budgets (simulator/budgets.py), and impostors
                "over_budget": sim.counts["over_budget"],
                "stats_unasked": sim.counts["stats_unasked"],
                "mass_capped": sim.counts["mass_capped"],
                "impersonation": sim.counts["impersonation"],
                "events_suppressed": dict(sim.budgets.events_suppressed),
                # connections refused or closed, handshakes failed (simulator/connections.py)
                "connections": dict(sim.link.conns.counts),
            }
            m = metrics
            final = {
                "t": sim.world.t,
                "ticks": sim.tick,
                "alive": self._end[0],
                **{k: (m[k][-1] if m[k] else None) for k in _FINAL_METRICS},
                "initial_energy_distance": m["energy_distance"][0] if m["energy_distance"] else None,
                "initial_lloyd_cost": m["lloyd_cost"][0] if m["lloyd_cost"] else None,
                "distance_travelled": float(sim.world.travelled.sum()),
                "planned": bool(sim.cfg.paths),
                "positions": sim.world.x.tolist(),
                "status": self._end[1],
            }
        if self.fleet is not None:
            final, metrics = fleet_final, self.fleet.metrics
        ended = datetime.now(timezone.utc)
        return {
            "schema": SUMMARY_SCHEMA,
            "scenario": {
                "name": self.rs.scenario.name,
                "file": str(self.rs.source),
                "description": self.rs.scenario.description,
                "overrides": self.overrides,
            },
            "mode": "vehicles" if self.fleet is not None else self.only,
            "fleet_size": len(self.rs.roster),
            "launcher_pid": os.getpid(),
            "started_at": started_at.isoformat(),
            "ended_at": ended.isoformat(),
            "wall_seconds": (ended - started_at).total_seconds(),
            "agents": agents,
            "events": events,
            "metrics": metrics,
            "messages": messages,
            "timing": sim.timing() if sim is not None else None,
            "final": final,
            "interrupted": self.interrupted,
            "run_folder": str(self.run_dir),
        }

    def _write_report(self, summary: dict) -> None:
        d = self.run_dir
        write_json_atomic(d / "summary.json", summary)
        sim = self.sim
        if self.fleet is not None:
            self.fleet.pictures(d, summary, f"{self.rs.scenario.name}: {len(self.rs.roster)} vehicles")
            return
        if sim is None:
            return
        try:
            metrics_png(
                d / "metrics.png",
                summary["metrics"],
                summary["events"],
                f"{self.rs.scenario.name}: {len(self.rs.roster)} robots",
            )
        except Exception:  # a plot must never cost the run its summary
            log.exception("could not draw metrics.png")
        if sim.cfg.dim == 2:
            try:
                snap = sim.world.snapshot()
                if self._end[1]:  # the statuses as the world ended, not after the byes
                    snap = dataclasses.replace(snap, status=np.asarray(self._end[1], dtype=np.uint8))
                f = summary["final"]
                hud = [
                    f"{self.rs.scenario.name}   t = {snap.t:.1f}   alive {f['alive']}/{len(snap.ids)}",
                    f"energy distance {f['energy_distance'] or float('nan'):.4f}",
                ]
                final_png(
                    d / "final.png", sim.cfg, sim.target, snap, hud, summary["metrics"]["energy_distance"]
                )
            except Exception:
                log.exception("could not draw final.png")
