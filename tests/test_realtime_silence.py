"""Silence in real time, with real agent processes over real ZeroMQ on loopback: who counts as
failed when the simulator falls behind, and how a stalled agent comes back."""

import pytest
from simfleet import lockstep, positions

pytestmark = pytest.mark.integration


def test_a_simulator_that_falls_behind_does_not_declare_its_agents_failed(fleets, rng):
    """Real time, overloaded: each tick takes longer than ``failure_timeout_wall`` (an observer
    holds the loop, as a starved simulator would). Agents that answer every state they are sent
    are not silent, however slowly the states come; an agent that stops answering still is."""
    import signal
    import time

    n = 4
    cfg = lockstep(positions(rng, n), 0.2, 0.5, tick=0.05, clock="realtime", duration=60.0,
                   failure_timeout_wall=0.3, command_ttl_wall=2.0)  # fmt: skip
    fleet = fleets(cfg, rate_hz=20.0)
    sim = fleet.sim
    slow = {"ticks": 0}

    def overloaded(_snap) -> None:
        if slow["ticks"] < 6 and sim.tick > 10:  # six ticks of 0.5 wall s each
            slow["ticks"] += 1
            time.sleep(0.5)

    sim.observers.append(overloaded)
    sim.start()
    sim.advance(30)
    detected = [e for e in sim.events if e["kind"] == "detected_failure"]
    assert slow["ticks"] == 6 and not detected, detected
    assert sim.fleet_metrics.answered_by.min() >= 25  # every agent answered nearly every state
    fleet.procs[2].send_signal(signal.SIGKILL)  # the control: a dead agent is still found
    deadline = time.monotonic() + 30
    while not any(e["kind"] == "detected_failure" for e in sim.events):
        assert time.monotonic() < deadline, "the dead agent was never detected"
        sim.advance(1)
    assert [e["agent_id"] for e in sim.events if e["kind"] == "detected_failure"] == [2]
    sim.finish()


def test_the_floor_agent_stalled_past_the_timeout_says_hello_again_and_recovers(tmp_path, rng):
    """``benchmarks/floor_agent.py`` (stdlib and pyzmq only) follows the protocol's fail-safe: its
    process stopped (SIGSTOP) past ``failure_timeout_wall`` is declared failed, and once it runs
    again, left without states, it says hello again and is re-admitted (``recovered``)."""
    import json
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from harness import stop_all
    from simfleet import agent_cfg

    from swarmcover.simulator.config import SimConfig
    from swarmcover.simulator.server import Simulator

    floor = Path(__file__).resolve().parents[1] / "benchmarks" / "floor_agent.py"
    cfg = lockstep(positions(rng, 2), 0.2, 0.5, tick=0.05, clock="realtime", duration=600.0,
                   failure_timeout_wall=0.3, wait_for_agents_wall=60.0)  # fmt: skip
    sim = Simulator(SimConfig.model_validate({"endpoint": "tcp://127.0.0.1:*", "insecure": True, **cfg}))
    procs = []
    try:
        for a in (0, 1):
            path = tmp_path / f"agent_{a}.json"
            path.write_text(json.dumps(agent_cfg(a, sim)))
            procs.append(subprocess.Popen([sys.executable, str(floor), str(path)]))
        sim.start()
        assert sim.world.connected.all()

        def advance_until(kind: str, what: str) -> dict:
            deadline = time.monotonic() + 30
            while not (got := [e for e in sim.events if e["kind"] == kind and e.get("agent_id") == 0]):
                assert time.monotonic() < deadline, f"{what}: {[e['kind'] for e in sim.events]}"
                sim.advance(1)
            return got[0]

        sim.advance(10)
        procs[0].send_signal(signal.SIGSTOP)
        advance_until("detected_failure", "the stopped agent was never declared failed")
        procs[0].send_signal(signal.SIGCONT)
        advance_until("recovered", "the agent never said hello again")
        answered = int(sim.sessions.cmd_tick[0])
        deadline = time.monotonic() + 30
        while sim.sessions.cmd_tick[0] <= answered + 5:  # it answers states again
            assert time.monotonic() < deadline, "the recovered agent answers no state"
            sim.advance(1)
        assert not sim.world.failed.any()
        assert [e["kind"] for e in sim.events if e.get("agent_id") == 1 and e["kind"] != "joined"] == []
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
        stop_all(procs)
        sim.finish()
