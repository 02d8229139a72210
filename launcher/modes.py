"""The two ways a launch runs here besides flying vehicles (``vehicles.fly_vehicles``):
:func:`run_simulated` (the simulator in this process and, unless ``--only sim``, every agent as a
process) and :func:`run_agents_only` (``--only agents``: some agents, for a simulator elsewhere).
Each takes the :class:`~swarmcover.launcher.run.Launch` whose run it carries out."""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

from swarmcover.simulator.world import Snapshot, Status

from .hosts import law_line, public_endpoint, warm_agents_cache
from .progress import Progress
from .report import prepare_plotting

if TYPE_CHECKING:
    from .run import Launch

__all__ = ["run_agents_only", "run_simulated"]

log = logging.getLogger("swarmcover.launch")


def _on_wait(launch: Launch, joined: int) -> None:
    launch.sup.reap()
    if launch.only == "all" and launch.pool is not None and not launch.pool.running_ids():
        launch.say(
            f"every agent process exited before the run started; see the logs in {launch.run_dir / 'logs'}"
        )
        launch.sim.stop()
    launch.progress_line(
        lambda: (
            f"  waiting for agents: {joined}/{len(launch.rs.roster)} joined "
            f"({time.monotonic() - launch.started_wall:.0f} s)"
        )
    )


def _on_snapshot(launch: Launch, snap: Snapshot) -> None:
    launch.sup.reap()
    launch.apply_failures(snap)

    ed = launch.sim.fleet_metrics.latest("energy_distance")

    def live() -> int:
        return int(Status.alive(snap.status).sum())

    def line() -> str:
        return (
            f"  t {snap.t:7.1f}/{launch.rs.sim.duration:g}  live {live()}/{len(snap.ids)}  "
            f"energy distance {ed:.4f}  commands {launch.sim.counts['commands']}  "
            f"rejected {launch.sim.counts['rejected']}"
        )

    if launch.progress is None:
        launch.progress_line(line)
    else:
        brief = f"live {live()}/{len(snap.ids)}, energy distance {ed:.3g}"
        launch.progress.update(snap.t, lambda: brief, line)


def run_simulated(launch: Launch) -> None:
    """The simulator in this process, the agents (all, or none with ``only = "sim"``) as processes."""
    from swarmcover.simulator.server import Simulator

    rs = launch.rs
    launch.setup_keys()
    raw = rs.sim.model_dump()
    raw["record"] = str(launch.run_dir / "recording") if rs.scenario.simulator.record else None
    if launch.keys is not None:
        raw["insecure"] = False
        raw["curve"] = {"secret_key": str(launch.keys.server_secret), "clients": str(launch.keys.clients)}
    prepare_plotting()
    import zmq

    try:
        launch.sim = Simulator(type(rs.sim).model_validate(raw))
    except zmq.ZMQError as exc:
        raise ValueError(f"the simulator cannot listen at {raw['endpoint']}: {exc}") from None
    launch.sim.event(
        "launch",
        None,
        scenario=rs.scenario.name,
        mode=launch.only,
        pid=os.getpid(),
        run_folder=str(launch.run_dir),
    )
    launch.say(
        f"swarmcover launch: {rs.scenario.name}: {len(rs.roster)} robots, {rs.sim.duration:g} world s, "
        f"{law_line(launch.rs)}, speed limit {rs.speed_limit:.4g}, simulator at {launch.sim.endpoint}"
    )
    launch.say(f"  run folder {launch.run_dir}")
    if launch.only == "sim":
        launch.say(
            "  simulator only: start the agents elsewhere with\n"
            f"    swarmcover launch {rs.source} --only agents "
            f"--connect {public_endpoint(launch.sim.endpoint)} --agents 0-{len(rs.roster) - 1} "
            + ("--insecure" if launch.keys is None else f"--keys {launch.keys.root}")
            + (
                ""
                if launch.keys is None
                else "\n  (copy server.key and each host's agents/agent_NNNN.key_secret there)"
            )
        )
    live = rs.sim.render.enabled and not launch.headless
    frames = rs.scenario.render.frames
    if live or frames:
        from swarmcover.simulator.live import LiveView, WindowUnavailable

        if frames:
            rc = launch.sim.cfg.render.model_copy(update={"frames_dir": str(launch.run_dir / "frames")})
            launch.sim.cfg = launch.sim.cfg.model_copy(update={"render": rc})
        try:
            launch.view = LiveView(launch.sim, headless=not live)
        except WindowUnavailable as e:
            log.warning("%s; running headless (--headless says so without trying)", e)
            launch.headless = True
            launch.view = LiveView(launch.sim, headless=True) if frames else None
        if launch.view is not None:
            launch.view.attach()
    launch.sim.observers.append(lambda snap: _on_snapshot(launch, snap))
    if launch.only == "all":
        warm_agents_cache(launch.rs, launch.say)
        launch.sup.open_pool(launch.agent_ids)
        if not _start_agents(launch):
            return
        launch.say(f"  started {len(launch.agent_ids)} agent processes; waiting for them to join")
    launch.sim.start(on_wait=lambda joined: _on_wait(launch, joined))
    if launch.interrupted or not launch.sim.running:
        return
    launch.say(
        f"  {int(launch.sim.world.connected.sum())}/{len(rs.roster)} agents joined in "
        f"{time.monotonic() - launch.started_wall:.1f} s; running"
    )
    launch.progress = Progress(launch.out, rs.sim.duration, every=launch.progress_every)
    launch.apply_failures(launch.sim.world.snapshot())  # failures at t = 0
    launch.sim.advance()


def _start_agents(launch: Launch) -> bool:
    """Start the launcher's agents in id order; False if a signal came first (the rest are not
    started: a Ctrl-C during a large start-up stops it there)."""
    for a in launch.agent_ids:
        if launch.interrupted:
            return False
        launch.sup.start(a, launch.agent_config(a))
    return True


def run_agents_only(launch: Launch) -> None:
    """Some agents only, connecting to a simulator elsewhere, until Ctrl-C or all of them exit."""
    launch.setup_keys()
    warm_agents_cache(launch.rs, launch.say)
    launch.sup.open_pool(launch.agent_ids)
    if not _start_agents(launch):
        return
    launch.say(
        f"swarmcover launch: {len(launch.agent_ids)} agents of {launch.rs.scenario.name} connecting to "
        f"{launch.connect}; Ctrl-C stops them"
    )
    if launch.sup.failures:
        launch.say("  (the failure schedule is carried out by the launcher that runs the simulator)")
    while not launch.interrupted and launch.pool.running_ids():
        launch.sup.reap()
        time.sleep(0.05)
        launch.progress_line(
            lambda: (
                f"  {len(launch.pool.running_ids())}/{len(launch.agent_ids)} agents running "
                f"({time.monotonic() - launch.started_wall:.0f} s)"
            )
        )
    launch.sup.reap()
