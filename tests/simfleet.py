"""Test helpers: a real Simulator (in a thread of the test process) serving real agent OS processes."""

from __future__ import annotations

import threading

import numpy as np
from harness import start_agent, stop_all

from swarmcover.simulator.config import SimConfig
from swarmcover.simulator.server import Simulator

BOUNDS = [(0.0, 1.0), (0.0, 1.0)]
TARGET = {"means": [[0.3, 0.4], [0.7, 0.6]], "covs": [0.01, 0.02]}


def agent_cfg(i: int, sim: Simulator, keys=None, **over) -> dict:
    cfg = {
        "agent_id": i,
        "bounds": [list(b) for b in sim.cfg.bounds],
        "eps": sim.cfg.eps,
        "mass": 1.0 / len(sim.world.ids),
        "speed_limit": sim.cfg.speed_limit,
        "rate_hz": 1000.0,
        "state_timeout": 5.0,
        "beacon_ttl": 2.0,
        "forget_after": 4.0,
        "body": {"kind": "sim", "endpoint": sim.endpoint},
    }
    if keys is not None:
        cfg["curve"] = {"secret_key": str(keys.agent_secret(i)), "server_key": str(keys.server_public)}
    elif sim.link.guard is None:
        cfg["insecure"] = True
    cfg.update(over)
    return cfg


class Fleet:
    """A simulator and its agent processes; ``close()`` kills every process and stops the simulator."""

    def __init__(self, cfg: dict, keys=None, start: list[int] | None = None, **agent_over) -> None:
        """``keys`` (a :class:`swarmcover.launcher.keys.FleetKeys`): CURVE for the simulator and every agent;
        ``start``: the robots whose agents start now (default: all; :meth:`start_agent` for more)."""
        if keys is not None:
            cfg = {**cfg, "curve": {"secret_key": str(keys.server_secret), "clients": str(keys.clients)}}
        base = {"endpoint": "tcp://127.0.0.1:*", **({} if "curve" in cfg else {"insecure": True})}
        self.sim = Simulator(SimConfig.model_validate({**base, **cfg}))
        self.procs = {}
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.keys, self.agent_over = keys, agent_over
        for a in self.sim.world.roster if start is None else start:
            self.start_agent(a)

    def start_agent(self, a: int) -> None:
        self.procs[a] = start_agent(agent_cfg(a, self.sim, self.keys, **self.agent_over))

    def run(self, max_ticks: int | None = None) -> None:
        """Run the simulator in this thread (until its duration or ``max_ticks``)."""
        self.sim.run(max_ticks=max_ticks)

    def run_in_thread(self) -> None:
        """Run the simulator in a thread of its own (its clock real time, or lockstep); :meth:`join`
        waits for it and raises what it raised."""

        def target() -> None:
            try:
                self.sim.run()
            except BaseException as exc:  # handed to join()
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"the simulator is still running after {timeout} s")
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            self.sim.stop()
            self.thread.join(10.0)
        stop_all(list(self.procs.values()))
        if not self.sim.link.closed:
            self.sim.close()


def positions(rng: np.random.Generator, n: int) -> list[list[float]]:
    return (0.3 + 0.4 * rng.random((n, 2))).tolist()


def lockstep(x0, eps: float, speed_limit: float, tick: float = 0.02, **over) -> dict:
    """A lockstep simulator config on the unit square with the two-bump test target."""
    cfg = dict(
        bounds=BOUNDS,
        target=TARGET,
        positions=x0,
        eps=eps,
        speed_limit=speed_limit,
        tick=tick,
        clock="lockstep",
        lockstep_timeout_wall=5.0,
    )
    cfg.update(over)
    return cfg
