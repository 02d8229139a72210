"""A fleet of agent processes flying vehicles, with no simulator: ``[vehicles] body = "mavlink"``
or ``"ros2"`` in a scenario (``docs/bodies.md``).

The launcher starts one agent per robot, each in direct mode (CurveZMQ between agents, the run's
keys), its body the vehicle at the robot's endpoint (``connect`` with ``{port}`` = ``port + id``,
or ``namespace`` with ``{id}``), its field from its own copy of the target. The world here is
the vehicles themselves: each agent appends its body's states to ``telemetry/agent_NNNN.jsonl``
in the run folder, and :class:`VehicleFleet` reads those files as they grow to sample the same
coverage metrics the simulator samples, so ``summary.json``, ``metrics.png`` and ``final.png``
come out of a vehicle run as out of a simulated one. Time is wall time (real time).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np
from pydantic import Field

from swarmcover.agentspec import AgentConfig, CurveKeys, DirectPeers, LocalTarget, MavlinkBody, Peer, Ros2Body
from swarmcover.vehiclespec import GeoPoint, VehicleSettings

if TYPE_CHECKING:  # pragma: no cover
    from .keys import FleetKeys
    from .resolve import ResolvedScenario

__all__ = ["VehicleFleet", "VehiclesSection", "fly_vehicles"]

_Port = Annotated[int, Field(ge=1, le=65535)]


class VehiclesSection(VehicleSettings):
    """Agents fly vehicles instead of the simulator's bodies (``body = "none"``: the simulator);
    the settings every vehicle shares are :class:`swarmcover.vehiclespec.VehicleSettings`."""

    body: Literal["none", "mavlink", "ros2"] = "none"
    connect: str = Field(default="udpin:127.0.0.1:{port}", max_length=400)
    port: _Port = 14550
    namespace: str = Field(default="robot{id}", max_length=200)
    domain_id: Annotated[int, Field(ge=0, le=232)] = 0
    peers: str = Field(default="tcp://127.0.0.1:{port}", max_length=400)
    peer_port: _Port = 7100
    geo_origin: GeoPoint | None = None


def _fill(pattern: str, agent_id: int, port: int) -> str:
    return pattern.replace("{id}", str(agent_id)).replace("{port}", str(port))


class VehicleFleet:
    """The agents' configs for a vehicle fleet, and the world read back from their telemetry."""

    def __init__(self, rs: ResolvedScenario, run_dir: Path) -> None:
        self.rs, self.v = rs, rs.scenario.vehicles
        self.folder = Path(run_dir) / "telemetry"
        self.ids = list(rs.roster)
        d = len(rs.scenario.domain.bounds)
        self.positions = np.full((len(self.ids), d), np.nan)  # latest heard, NaN until heard
        self.heard = np.full(len(self.ids), -math.inf)  # unix time of each one's latest line
        self._offsets = dict.fromkeys(self.ids, 0)
        self.metrics: dict[str, list] = {"t": [], "energy_distance": [], "lloyd_cost": [], "alive": []}
        self.travelled = np.zeros(len(self.ids))
        self.counters: dict[int, dict] = {}
        self._next_sample = 0.0

    def endpoint(self, a: int) -> str:
        return _fill(self.v.peers, a, self.v.peer_port + a)

    def agent_config(self, a: int, keys: FleetKeys | None) -> AgentConfig:
        """Robot ``a``'s agent: the scenario's law, a vehicle body, direct peers, its own target."""
        v, s = self.v, self.rs.scenario
        shared = {"origin": v.origin, "scale": v.scale, "arm": v.arm, "fence_horizon": v.fence_horizon,
                  "heartbeat_timeout": v.heartbeat_timeout, "connect_timeout": v.connect_timeout}  # fmt: skip
        body: MavlinkBody | Ros2Body
        if v.body == "mavlink":
            body = MavlinkBody(connect=_fill(v.connect, a, v.port + a), geo_origin=v.geo_origin, **shared)
        else:
            body = Ros2Body(namespace=_fill(v.namespace, a, v.port + a), domain_id=v.domain_id, **shared)
        t = s.target
        target = LocalTarget(means=t.means, covs=t.covs, weights=t.weights, truncate=t.truncate,
                             floor=t.floor, objective=s.law.objective, zones=list(t.zones))  # fmt: skip
        roster: list[str | Peer]
        if keys is None:
            curve, roster = None, [self.endpoint(b) for b in self.ids]
        else:
            curve = CurveKeys(secret_key=str(keys.agent_secret(a)))
            roster = [Peer(agent_id=b, endpoint=self.endpoint(b), public_key=str(keys.agent_public(b)))
                      for b in self.ids]  # fmt: skip
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.rs.agent_config(
            a, body, curve=curve, peers=DirectPeers(bind=self.endpoint(a), roster=roster), target=target,
            telemetry=str(self.folder / f"agent_{a:04d}.jsonl"),
        )  # fmt: skip

    def read(self) -> None:
        """Take the lines the agents appended since the last call (a torn last line waits)."""
        for k, a in enumerate(self.ids):
            path = self.folder / f"agent_{a:04d}.jsonl"
            try:
                with open(path, "rb") as f:
                    f.seek(self._offsets[a])
                    data = f.read()
            except OSError:  # not written yet
                continue
            end = data.rfind(b"\n") + 1
            self._offsets[a] += end
            for line in data[:end].splitlines():
                try:
                    row = json.loads(line)
                    if "counters" in row:  # the agent's last line: its final counters
                        self.counters[a] = row["counters"]
                        continue
                    p = np.asarray(row["position"], dtype=np.float64)
                except (ValueError, KeyError, TypeError):
                    continue
                if p.shape == self.positions[k].shape and np.all(np.isfinite(p)):
                    if np.all(np.isfinite(self.positions[k])):
                        self.travelled[k] += float(np.linalg.norm(p - self.positions[k]))
                    self.positions[k], self.heard[k] = p, float(row.get("t", 0.0))

    def live(self, now_unix: float, within: float) -> np.ndarray:
        """Which robots were heard within ``within`` seconds of ``now_unix``."""
        return now_unix - self.heard <= within

    def sample(self, t: float, now_unix: float) -> None:
        """One row of the metrics at run time ``t``, over the robots heard lately."""
        import swarmcover as sc

        live = self.live(now_unix, within=2.0)
        x = self.positions[live]
        self.metrics["t"].append(float(t))
        self.metrics["alive"].append(int(live.sum()))
        if len(x):
            self.metrics["energy_distance"].append(float(sc.metrics.energy_distance(x, self.rs.target)))
            self.metrics["lloyd_cost"].append(float(sc.metrics.lloyd_cost(x, self.rs.target)))
        else:
            self.metrics["energy_distance"].append(None)
            self.metrics["lloyd_cost"].append(None)

    def changes(self, now_unix: float, within: float = 2.0) -> list[tuple[str, int]]:
        """Since the last call: ``("joined", id)`` for robots heard for the first time,
        ``("detected_failure", id)`` for robots silent for ``within`` s (no telemetry: the agent
        died, or its vehicle fell silent and it stopped making states), ``("rejoined", id)`` for
        robots heard again."""
        live = self.live(now_unix, within)
        before = getattr(self, "_live", np.zeros_like(live))
        seen = getattr(self, "_seen", np.zeros_like(live))
        self._live, self._seen = live, seen | live
        out = [("detected_failure", a) for a in np.asarray(self.ids)[before & ~live].tolist()]
        out += [
            ("rejoined" if s else "joined", a)
            for a, s, n in zip(self.ids, seen, live & ~before, strict=True)
            if n
        ]
        return out

    def poll(self, t: float, now_unix: float, every: float) -> bool:
        """Read, and sample when ``every`` seconds have passed; whether a row was added."""
        self.read()
        if t < self._next_sample:
            return False
        self._next_sample = t + every
        self.sample(t, now_unix)
        return True

    def snapshot(self, t: float, now_unix: float):
        """The fleet as the simulator's :class:`~swarmcover.simulator.world.Snapshot` (for failure selection
        and ``final.png``): live if heard in the last 2 s, failed if heard before, waiting (at the
        domain's centre) if never."""
        from swarmcover.simulator.world import Snapshot, Status

        heard = np.all(np.isfinite(self.positions), axis=1)
        lo = np.array([b[0] for b in self.rs.scenario.domain.bounds])
        hi = np.array([b[1] for b in self.rs.scenario.domain.bounds])
        x = np.where(heard[:, None], self.positions, 0.5 * (lo + hi))
        status = np.where(
            self.live(now_unix, 2.0), Status.LIVE, np.where(heard, Status.FAILED, Status.WAITING)
        )
        return Snapshot(t=t, ids=np.asarray(self.ids), positions=x, commands=np.zeros_like(x),
                        status=status.astype(np.uint8))  # fmt: skip

    def final(self, t: float, now_unix: float) -> dict:
        """``summary.json``'s ``final`` for a vehicle run (read once more: the agents' last lines)."""
        self.read()
        self.sample(t, now_unix)
        m, snap = self.metrics, self.snapshot(t, now_unix)
        return {
            "t": t,
            "alive": m["alive"][-1],
            "energy_distance": m["energy_distance"][-1],
            "lloyd_cost": m["lloyd_cost"][-1],
            "initial_energy_distance": next((v for v in m["energy_distance"] if v is not None), None),
            "initial_lloyd_cost": next((v for v in m["lloyd_cost"] if v is not None), None),
            "distance_travelled": float(self.travelled.sum()),
            "planned": False,
            "positions": snap.positions.tolist(),
            "status": snap.status.tolist(),
        }

    def pictures(self, run_dir: Path, summary: dict, title: str) -> None:
        """``metrics.png`` and, in 2-D, ``final.png`` (the last positions over the target)."""
        import logging

        from .report import final_png, metrics_png

        log = logging.getLogger("swarmcover.launch")
        try:
            metrics_png(run_dir / "metrics.png", summary["metrics"], summary["events"], title)
        except Exception:  # a plot must never cost the run its summary
            log.exception("could not draw metrics.png")
        if len(self.rs.scenario.domain.bounds) != 2:
            return
        f = summary["final"]
        try:
            snap = self.snapshot(f["t"], 0.0)
            snap = type(snap)(**{**vars(snap), "status": np.asarray(f["status"], dtype=np.uint8)})
            ed = f["energy_distance"]
            hud = [f"{title}   t = {f['t']:.1f} s   heard {f['alive']}/{len(self.ids)}",
                   f"energy distance {ed if ed is not None else float('nan'):.4f}"]  # fmt: skip
            history = [v for v in self.metrics["energy_distance"] if v is not None]
            final_png(run_dir / "final.png", self.rs.sim, self.rs.target, snap, hud, history)
        except Exception:
            log.exception("could not draw final.png")


def fly_vehicles(launch) -> None:
    """The agents of ``launch`` (a :class:`~swarmcover.launcher.run.Launch`) flying vehicles:
    start them, watch their telemetry for the run's duration (wall seconds), carry out the
    failure schedule on their processes."""
    from .hosts import law_line  # (the scenario module imports this one)
    from .progress import Progress
    from .report import prepare_plotting

    rs = launch.rs
    launch.setup_keys()
    prepare_plotting()
    launch.fleet = fleet = VehicleFleet(rs, launch.run_dir)
    launch.sup.open_pool(launch.agent_ids)
    v = rs.scenario.vehicles
    launch.event("launch", None, scenario=rs.scenario.name, mode="vehicles", pid=os.getpid(),
               run_folder=str(launch.run_dir))  # fmt: skip
    launch.say(f"swarmcover launch: {rs.scenario.name}: {len(rs.roster)} agents flying {v.body} vehicles "
             f"(no simulator), {rs.sim.duration:g} s, {law_line(launch.rs)}, "
             f"speed limit {rs.speed_limit:.4g}")  # fmt: skip
    launch.say(f"  run folder {launch.run_dir}")
    for a in launch.agent_ids:
        launch.sup.start(a, launch.agent_config(a))
    launch.progress = Progress(launch.out, rs.sim.duration, every=launch.progress_every)
    every = rs.scenario.simulator.metrics_every
    while not launch.interrupted and launch.pool.running_ids():
        t = time.monotonic() - launch.started_wall
        if t >= rs.sim.duration:
            break
        launch.sup.reap()
        if fleet.poll(t, time.time(), every):
            for kind, a in fleet.changes(time.time()):  # silent: its agent or its vehicle is gone
                launch.event(kind, a)
            launch.apply_failures(fleet.snapshot(t, time.time()))
            m = fleet.metrics

            def line(t=t, m=m) -> str:
                ed = m["energy_distance"][-1]
                return f"  t = {t:6.1f} s   heard {m['alive'][-1]}/{len(rs.roster)}   energy distance " + (
                    f"{ed:.4f}" if ed is not None else "-"
                )

            launch.progress.update(t, lambda m=m: f"heard {m['alive'][-1]}/{len(rs.roster)}", line)
        time.sleep(0.05)
    launch.sup.reap()
