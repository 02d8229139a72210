"""The run folder's records: ``scenario.json`` at the start; ``summary.json``, ``metrics.png`` and
``final.png`` at the end, from the simulator's public report (or a vehicle fleet's telemetry) and
the launcher's own account of its processes."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .report import SUMMARY_SCHEMA, final_png, metrics_png, write_json_atomic
from .resolve import ResolvedScenario

__all__ = [
    "METRIC_KEYS",
    "agent_rows",
    "build_summary",
    "summarize",
    "write_pictures",
    "write_report",
    "write_scenario_json",
]

log = logging.getLogger("swarmcover.launch")

#: the metrics series a summary always has (empty when no simulator ran here)
METRIC_KEYS = ("t", "energy_distance", "lloyd_cost", "blob_energy", "alive", "distance", "underserved",
               "on_time")  # fmt: skip


def write_scenario_json(d: Path, rs: ResolvedScenario, overrides: list[str]) -> None:
    """``scenario.json``: the scenario with its overrides, every ``auto`` as decided."""
    resolved = {
        "source": str(rs.source.resolve()),
        "overrides": overrides,
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
            "smoothing": rs.smoothing,
        },
        "simulator": rs.sim.model_dump(mode="json"),
    }
    write_json_atomic(d / "scenario.json", resolved)


def agent_rows(ids: list[int], procs: dict, sim_agents: dict[int, dict] | None,
               fleet_counters: dict | None) -> list[dict]:  # fmt: skip
    """One row per agent: its processes (``procs``: the pool's, by id), and what the simulator
    (``sim_agents``, from its report) or a vehicle fleet's telemetry (``fleet_counters``) said."""
    rows = []
    for a in ids:
        p = procs.get(a)
        row = {
            "id": a,
            "pid": p.pid if p else None,
            "pids": p.pids if p else [],
            "fate": p.fate if p else "not started here",
            "exit_code": p.exit_code if p else None,
            "restarts": p.restarts if p else 0,
        }
        if p is not None and p.node is not None:
            row["node"] = p.node
        if fleet_counters is not None:
            row["counters"] = fleet_counters.get(a)
        if sim_agents is not None:
            row.update(sim_agents[a])
        rows.append(row)
    return rows


def build_summary(*, rs: ResolvedScenario, overrides: list[str], mode: str, run_dir: Path,
                  started_at: datetime, interrupted: bool, agents: list[dict], events: list[dict],
                  metrics: dict, messages: dict, final: dict, timing: dict | None) -> dict:  # fmt: skip
    """``summary.json``'s content (its schema: docs/scenarios.md)."""
    ended = datetime.now(timezone.utc)
    return {
        "schema": SUMMARY_SCHEMA,
        "scenario": {
            "name": rs.scenario.name,
            "file": str(rs.source),
            "description": rs.scenario.description,
            "overrides": overrides,
        },
        "mode": mode,
        "fleet_size": len(rs.roster),
        "launcher_pid": os.getpid(),
        "started_at": started_at.isoformat(),
        "ended_at": ended.isoformat(),
        "wall_seconds": (ended - started_at).total_seconds(),
        "agents": agents,
        "events": events,
        "metrics": metrics,
        "messages": messages,
        "timing": timing,
        "final": final,
        "interrupted": interrupted,
        "run_folder": str(run_dir),
    }


def write_pictures(d: Path, summary: dict, rs: ResolvedScenario, sim, end_status: list[int]) -> None:
    """``metrics.png`` and (2-D) ``final.png`` of a simulated run; a picture that cannot be drawn is
    logged, never costs the run its summary."""
    title = f"{rs.scenario.name}: {len(rs.roster)} robots"
    try:
        metrics_png(d / "metrics.png", summary["metrics"], summary["events"], title)
    except Exception:
        log.exception("could not draw metrics.png")
    if sim.cfg.dim != 2:
        return
    try:
        snap = sim.world.snapshot()
        if end_status:  # the statuses as the world ended, not after the byes
            snap = dataclasses.replace(snap, status=np.asarray(end_status, dtype=np.uint8))
        f = summary["final"]
        hud = [
            f"{rs.scenario.name}   t = {snap.t:.1f}   alive {f['alive']}/{len(snap.ids)}",
            f"energy distance {f['energy_distance'] or float('nan'):.4f}",
        ]
        final_png(d / "final.png", sim.cfg, sim.target, snap, hud, summary["metrics"]["energy_distance"])
    except Exception:
        log.exception("could not draw final.png")


_NO_MESSAGES = {"sent": 0, "delivered": 0, "dropped": 0, "rejected": 0}


def summarize(launch, started_at: datetime) -> dict:
    """``summary.json`` of ``launch`` (a :class:`~swarmcover.launcher.run.Launch` that has run)."""
    ids = launch.rs.roster if launch.only != "agents" else launch.agent_ids
    procs = launch.pool.procs if launch.pool is not None else {}
    if launch.fleet is not None:  # a vehicle fleet: what its telemetry said (the agents' last lines)
        final = launch.fleet.final(time.monotonic() - launch.started_wall, time.time())
        agents = agent_rows(ids, procs, None, launch.fleet.counters)
        metrics, events, messages, timing = launch.fleet.metrics, launch.events, _NO_MESSAGES, None
    elif launch.sim is not None:
        r = launch.sim.report()
        agents = agent_rows(ids, procs, r.agents, None)
        final = {**r.final, "alive": launch.end_state[0], "status": launch.end_state[1]}
        metrics, events, messages, timing = r.metrics, r.events, r.messages, r.timing
    else:
        agents = agent_rows(ids, procs, None, None)
        metrics, events, messages = {k: [] for k in METRIC_KEYS}, launch.events, _NO_MESSAGES
        final, timing = {}, None
    mode = "vehicles" if launch.fleet is not None else launch.only
    summary = build_summary(
        rs=launch.rs, overrides=launch.overrides, run_dir=launch.run_dir, started_at=started_at, mode=mode,
        interrupted=launch.interrupted, agents=agents, events=events, metrics=metrics,
        messages=dict(messages), final=final, timing=timing,
    )  # fmt: skip
    if launch.cluster is not None:  # where Ray placed the agents (each row also names its node)
        placed = launch.pool.describe() if hasattr(launch.pool, "describe") else {}
        summary["cluster"] = {**launch.cluster.describe(), **placed}
    return summary


def write_report(launch, summary: dict) -> None:
    """``summary.json`` and the run's pictures, in its folder."""
    write_json_atomic(launch.run_dir / "summary.json", summary)
    if launch.fleet is not None:
        launch.fleet.pictures(
            launch.run_dir, summary, f"{launch.rs.scenario.name}: {len(launch.rs.roster)} vehicles"
        )
    elif launch.sim is not None:
        write_pictures(launch.run_dir, summary, launch.rs, launch.sim, launch.end_state[1])
