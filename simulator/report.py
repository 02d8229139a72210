"""What a run of the simulator says about itself: the public snapshot a launcher reports from.

:func:`report` reads a :class:`~swarmcover.simulator.server.Simulator` once and returns a
:class:`SimReport` of plain values (lists, dicts, numbers), so that whoever writes the run's
summary needs none of the simulator's rooms.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FINAL_METRICS", "SimReport", "report"]

#: the quality series whose last value is the run's final one
FINAL_METRICS = ("energy_distance", "lloyd_cost", "blob_energy", "underserved")


@dataclass(frozen=True)
class SimReport:
    """A run as the simulator saw it.

    Attributes
    ----------
    agents : dict
        Per roster id: ``joined`` (said hello at least once), ``counters`` (from its last ``bye``
        or ``stats``, or None), ``states``, ``answered``, ``on_time`` (the simulator's own counts)
        and, when it reported one, ``schedule`` (``epoch``, ``stage``, ``cause``).
    metrics : dict of lists
        The quality series (``docs/scenarios.md``, ``summary.json``'s ``metrics``).
    events : list of dict
    messages : dict
        The radio's counters and the simulator's (received, sent, rejected, budgets, connections).
    final : dict
        The world at the end: ``t``, ``ticks``, the final and initial metrics,
        ``distance_travelled``, ``planned``, ``positions``.
    timing : dict
        Sense-to-command timing (:meth:`~swarmcover.simulator.fleetmetrics.FleetMetrics.timing`).
    """

    agents: dict[int, dict]
    metrics: dict[str, list]
    events: list[dict]
    messages: dict
    final: dict
    timing: dict


def _agent_rows(sim) -> dict[int, dict]:
    last: dict[int, dict] = {}
    for e in sim.events:
        if e["kind"] in ("bye", "stats") and "agent_id" in e:
            last[e["agent_id"]] = e
    rows = {}
    fm, ss = sim.fleet_metrics, sim.sessions
    for a, k in sim.world.index.items():
        row = {
            "joined": a in ss.epochs,
            "counters": last[a]["counters"] if a in last else None,
            "states": int(fm.states_to[k]),  # the simulator's own count, whatever the agent reports
            "answered": int(fm.answered_by[k]),
            "on_time": int(fm.on_time_by[k]),
        }
        if ss.schedule_epoch[k] >= 0:  # where it last said it was in its schedule
            row["schedule"] = {"epoch": int(ss.schedule_epoch[k]), "stage": int(ss.schedule_stage[k]),
                               "cause": ss.schedule_cause[k]}  # fmt: skip
        rows[a] = row
    return rows


def report(sim) -> SimReport:
    """Read ``sim`` (a :class:`~swarmcover.simulator.server.Simulator`) into a :class:`SimReport`."""
    c = sim.counts
    messages = {
        **sim.radio.counters.as_dict(),
        "rejected": c["rejected"],
        "simulator_received": c["messages_in"],
        "simulator_sent": c["messages_out"],
        "commands": c["commands"],
        "send_failed": c["send_failed"],
        # what members sent beyond their budgets (simulator/budgets.py), and impostors
        "over_budget": c["over_budget"],
        "stats_unasked": c["stats_unasked"],
        "mass_capped": c["mass_capped"],
        "impersonation": c["impersonation"],
        "events_suppressed": dict(sim.budgets.events_suppressed),
        # connections refused or closed, handshakes failed (simulator/connections.py)
        "connections": dict(sim.link.conns.counts),
    }
    m = {k: list(v) for k, v in sim.metrics.items()}
    final = {
        "t": sim.world.t,
        "ticks": sim.tick,
        **{k: (m[k][-1] if m.get(k) else None) for k in FINAL_METRICS},
        "initial_energy_distance": m["energy_distance"][0] if m.get("energy_distance") else None,
        "initial_lloyd_cost": m["lloyd_cost"][0] if m.get("lloyd_cost") else None,
        "distance_travelled": float(sim.world.travelled.sum()),
        "planned": bool(sim.cfg.paths),
        "positions": sim.world.x.tolist(),
    }
    return SimReport(_agent_rows(sim), m, list(sim.events), messages, final, sim.timing())
