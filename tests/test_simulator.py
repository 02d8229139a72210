"""The simulator with real agent processes over real ZeroMQ on loopback."""

import numpy as np
import pytest
from simfleet import BOUNDS, TARGET, lockstep, positions

import swarmcover as sc
from swarmcover.metrics import energy_distance
from swarmcover.simulator.recording import load_recording

pytestmark = pytest.mark.integration


def test_lockstep_matches_flow(fleets, rng):
    n, eps, tick, vmax, ticks = 20, 0.08, 0.02, 0.5, 100
    x0 = positions(rng, n)
    # a radio that reaches everyone: with range = the law's radius an agent keeps a neighbour that
    # left range at its last heard position for beacon_ttl (see docs/simulator.md)
    fleet = fleets(lockstep(x0, eps, vmax, tick, lockstep_timeout_wall=10.0, radio={"range": 2.0}), gain=1.0)
    fleet.run(max_ticks=ticks)
    sim = fleet.sim
    assert sim.tick == ticks and sim.counts["rejected"] == 0 and sim.counts["lockstep_timeouts"] == 0
    law = sc.BlobLaw(sim.target, eps, 1.0 / n)
    ref = sc.flow(law, x0, ticks * tick, speed_limit=vmax, gain=1.0, fixed_step=tick)
    assert np.abs(sim.world.x - ref.x).max() < 1e-6
    assert np.abs(ref.x - np.asarray(x0)).max() > 0.1  # the fleet really moved
    # the field patches: sent when the held one stops covering, not every tick (the same result)
    assert n <= sim.counts["patches_sent"] < sim.counts["states_sent"] / 3, sim.counts


def test_failure_recovery_after_sigkill_of_40_percent(fleets, tmp_path, rng, record_property):
    import signal
    import time

    n, eps, tick, vmax = 30, 0.6 / np.sqrt(30), 0.02, 0.5
    x0 = positions(rng, n)
    cfg = lockstep(
        x0, eps, vmax, tick, lockstep_timeout_wall=0.5, failure_timeout_wall=0.5, record=str(tmp_path / "run")
    )
    fleet = fleets(cfg)
    sim = fleet.sim
    sim.start()
    sim.advance(100)  # 2 world seconds: converged (energy distance flat)
    killed = sorted(int(a) for a in rng.choice(n, 12, replace=False))  # 40 %
    killed_at = sim.world.t
    for a in killed:
        fleet.procs[a].send_signal(signal.SIGKILL)
    for a in killed:
        fleet.procs[a].wait(timeout=10)
    survivors = np.array([a for a in range(n) if a not in killed])
    # the reference: a fresh fleet of the survivors' size, same law and parameters, run to convergence
    left = n - len(killed)
    fresh_law = sc.BlobLaw(sim.target, eps, 1.0 / left)
    fresh = sc.flow(
        fresh_law, positions(rng, left), 4.0, speed_limit=vmax, gain=sc.gain_for(eps, vmax), fixed_step=tick
    )
    goal = 1.1 * energy_distance(fresh.x, sim.target)
    recovered_at = None
    t0 = time.monotonic()
    while sim.world.t < killed_at + 3.0:
        sim.advance(10)
        ed = energy_distance(sim.world.x[survivors], sim.target)
        if ed <= goal and recovered_at is None:
            recovered_at = sim.world.t
    sim.finish()
    assert set(np.flatnonzero(sim.world.failed)) == set(killed)
    ed = energy_distance(sim.world.x[survivors], sim.target)
    assert ed <= goal, f"survivors' energy distance {ed:.4f} above 1.1 x fresh {goal / 1.1:.4f}"
    assert recovered_at is not None
    print(
        f"recovery: energy distance {ed:.4f} vs fresh {goal / 1.1:.4f}; within 10% after "
        f"{recovered_at - killed_at:.2f} world s"
    )
    record_property("recovery_world_seconds", recovered_at - killed_at)
    record_property("recovery_wall_seconds", time.monotonic() - t0)
    rec = load_recording(tmp_path / "run")
    detected = {e["agent_id"]: e for e in rec.events if e["kind"] == "detected_failure"}
    assert set(detected) == set(killed)
    for e in detected.values():
        assert e["t"] >= killed_at
        heard = {int(r): t for r, t in e["last_heard_by"].items()}
        assert heard and set(heard) <= set(survivors.tolist())  # when each survivor last heard it
        assert all(t <= killed_at + tick for t in heard.values())
    k = list(rec.meta["roster"]).index(killed[0])
    assert rec.status[0, k] == 1 and rec.status[-1, k] == 3


def test_beacon_loss_and_latency_still_converge(fleets, rng):
    n, eps, tick, vmax = 20, 0.6 / np.sqrt(20), 0.02, 0.5
    x0 = (0.05 + 0.2 * rng.random((n, 2))).tolist()  # a depot in a corner
    lossy = fleets(lockstep(x0, eps, vmax, tick, radio={"loss": 0.2, "latency": 0.05}))
    lossy.run(max_ticks=200)
    law = sc.BlobLaw(lossy.sim.target, eps, 1.0 / n)
    ideal = sc.flow(law, x0, 200 * tick, speed_limit=vmax, gain=sc.gain_for(eps, vmax), fixed_step=tick)
    ed_lossy = energy_distance(lossy.sim.world.x, lossy.sim.target)
    ed_ideal = energy_distance(ideal.x, lossy.sim.target)
    ed_start = energy_distance(np.asarray(x0), lossy.sim.target)
    c = lossy.sim.radio.counters
    print(f"loss+latency: energy distance {ed_lossy:.4f}, lossless flow {ed_ideal:.4f}, start {ed_start:.4f}")
    assert 0.15 < c.dropped_loss / (c.delivered + c.dropped_loss) < 0.25
    # converged: within 15% of the ideal radio's fleet, far below where it started
    assert ed_lossy <= 1.15 * ed_ideal and ed_lossy < 0.5 * ed_start


def test_headless_frames_show_live_and_failed_robots(fleets, tmp_path, rng, monkeypatch):
    import pygame

    from swarmcover.simulator.live import LiveView
    from swarmcover.simulator.render import STATUS_COLOURS

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    x0 = [[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]]
    frames = {"enabled": True, "frames_dir": str(tmp_path / "frames"), "frame_every": 0.25}
    cfg = lockstep(x0, 0.15, 0.05, 0.05, failures=[{"t": 0.1, "kind": "fail", "ids": [0]}], render=frames)
    fleet = fleets(cfg)
    view = LiveView(fleet.sim, headless=True)
    view.attach()
    fleet.run(max_ticks=10)
    view.close()
    assert len(view.frames_saved) >= 2
    pygame.init()
    img = pygame.image.load(str(tmp_path / "frames" / "final.png"))
    snap = fleet.sim.world.snapshot()
    assert list(snap.status) == [3, 1, 1, 1]
    w, h = img.get_size()
    for (x, y), s in zip(snap.positions, snap.status, strict=True):
        px = (round(x * (w - 1)), round((1 - y) * (h - 1)))
        assert tuple(img.get_at(px))[:3] == STATUS_COLOURS[int(s)], f"robot at {px} with status {s}"
    assert STATUS_COLOURS[3] != STATUS_COLOURS[1]
    pygame.quit()


def test_recording_cut_by_sigkill_is_readable(tmp_path, rng):
    import glob
    import json
    import signal
    import subprocess
    import sys
    import time

    from harness import start_agent, stop_all

    from swarmcover.launcher.keys import make_keys

    keys = make_keys(tmp_path / "keys", [0, 1, 2])
    run = tmp_path / "run"
    port_sock = __import__("socket").socket()
    port_sock.bind(("127.0.0.1", 0))
    port = port_sock.getsockname()[1]
    port_sock.close()
    endpoint = f"tcp://127.0.0.1:{port}"
    cfg = dict(
        bounds=BOUNDS,
        target=TARGET,
        positions=positions(rng, 3),
        eps=0.2,
        speed_limit=0.2,
        tick=0.05,
        clock="realtime",
        endpoint=endpoint,
        record=str(run),
        flush_every_wall=0.2,
        curve={"secret_key": str(keys.server_secret), "clients": str(keys.clients)},  # the real, secure path
    )
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarmcover.cli.main",
            "sim",
            "--json",
            json.dumps(cfg),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    procs = [sim]
    try:
        for a in range(3):
            procs.append(
                start_agent(
                    {
                        "agent_id": a,
                        "bounds": [[0, 1], [0, 1]],
                        "eps": 0.2,
                        "mass": 1 / 3,
                        "speed_limit": 0.2,
                        "body": {"kind": "sim", "endpoint": endpoint},
                        "curve": {
                            "secret_key": str(keys.agent_secret(a)),
                            "server_key": str(keys.server_public),
                        },
                    }
                )
            )
        deadline = time.monotonic() + 60
        while len(glob.glob(str(run / "chunks" / "*.npz"))) < 3:
            assert time.monotonic() < deadline, "no chunks written"
            assert sim.poll() is None, sim.stderr.read().decode()
            time.sleep(0.05)  # polling the file system: there is no event to wait on
        sim.send_signal(signal.SIGKILL)
        sim.wait(timeout=10)
    finally:
        stop_all(procs)
    # plain numpy, as the docs say, without this package
    chunks = [np.load(f) for f in sorted(glob.glob(str(run / "chunks" / "*.npz")))]
    t = np.concatenate([c["t"] for c in chunks])
    pos = np.concatenate([c["positions"] for c in chunks])
    assert len(t) >= 3 and np.all(np.diff(t) > 0) and pos.shape == (len(t), 3, 2)
    assert not glob.glob(str(run / "chunks" / "*.tmp"))
    rec = load_recording(run)
    assert np.array_equal(rec.t, t) and rec.status.shape == (len(t), 3)
    assert any(e["kind"] == "joined" for e in rec.events)
    assert rec.status[-1].tolist() == [1, 1, 1]


def test_replay_renders_a_recording(tmp_path, rng, monkeypatch):
    import subprocess
    import sys

    from swarmcover.simulator.recording import Recorder
    from swarmcover.simulator.world import Snapshot

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    cfg = dict(
        bounds=BOUNDS, target=TARGET, positions=positions(rng, 3), eps=0.2, speed_limit=0.2, insecure=True
    )
    from swarmcover.simulator.config import SimConfig

    meta = {
        "roster": [0, 1, 2],
        "bounds": BOUNDS,
        "config": SimConfig.model_validate(cfg).model_dump(mode="json"),
    }
    rec = Recorder(tmp_path / "run", meta)
    for k in range(5):
        x = np.asarray(cfg["positions"]) + 0.01 * k
        rec.snapshot(
            Snapshot(0.5 * k, np.arange(3), x, np.zeros((3, 2)), np.array([1, 3, 1], dtype=np.uint8)), 0.0
        )
    rec.close()
    r = subprocess.run(
        [sys.executable, "-m", "swarmcover.cli.main", "replay", str(tmp_path / "run"), "--headless"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    frames = sorted((tmp_path / "run" / "replay").glob("frame_*.png"))
    assert len(frames) == 3  # every world second over 0..2 s
    missing = subprocess.run(
        [sys.executable, "-m", "swarmcover.cli.main", "replay", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "no such run folder" in missing.stderr
    (tmp_path / "empty").mkdir()
    for args, why in [
        (["replay", str(tmp_path / "empty")], "not a recording"),
        (["replay", str(tmp_path / "run"), "--gif", str(tmp_path / "run.png")], "must end in .gif"),
        (["replay", str(tmp_path / "run"), "--gif", str(tmp_path / "no" / "run.gif")], "no such folder"),
        (["replay", str(tmp_path / "run"), "--gif", str(tmp_path / "a.gif"), "--width", "9"], "--width"),
    ]:
        bad = subprocess.run([sys.executable, "-m", "swarmcover.cli.main", *args], capture_output=True,
                             text=True, timeout=120)  # fmt: skip
        assert bad.returncode == 2 and why in bad.stderr, (args, bad.stderr)
    assert not (tmp_path / "a.gif").exists() and not (tmp_path / "a.gif.tmp").exists()


def test_hostile_messages_rejected_and_a_restarted_agent_rejoins(fleets, rng):
    import signal
    import time

    import zmq
    from harness import start_agent
    from simfleet import agent_cfg

    from swarmcover.control import saturate
    from swarmcover.protocol import Command, Hello, encode
    from swarmcover.simulator.world import Status

    x0 = [[0.3, 0.3], [0.5, 0.5], [0.7, 0.7]]
    fleet = fleets(lockstep(x0, 0.2, 0.1, lockstep_timeout_wall=0.5, failure_timeout_wall=0.5))
    sim = fleet.sim
    sim.start()
    sim.advance(5)
    ctx = zmq.Context()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(sim.endpoint)
    try:
        env = {"epoch": 1, "seq": 1, "t": time.time()}
        hostile = [
            [b"\x00\xffnot json"],
            [b'{"v": 1, "kind": "hello", "agent_id": 0, "epoch": 1, "seq": 1, "t": 1, "rate_hz": NaN}'],
            encode(Hello(agent_id=99, rate_hz=10.0, **env)),  # not on the roster
            encode(Command(agent_id=0, velocity=[1.0, 1.0], tick=sim.tick + 1, eps=0.2, **env)),  # forged id
            encode(Hello(agent_id=0, rate_hz=10.0, **env)),  # an older epoch than agent 0's
        ]
        before = sim.counts["rejected"]
        for frames in hostile:
            rogue.send_multipart(frames)
        deadline = time.monotonic() + 20
        while sim.counts["rejected"] < before + len(hostile):
            assert time.monotonic() < deadline, sim.counts
            sim.advance(1)
        rogue.send_multipart(
            encode(Command(agent_id=0, velocity=[0.0, -0.1], tick=sim.tick + 1, eps=0.2, **env))
        )
        ref = sc.BlobLaw(sim.target, 0.2, 1 / 3)
        want = saturate(sc.gain_for(0.2, 0.1) * ref.velocities(sim.world.x, method="pairwise"), 0.1)
        sim.advance(1)  # every command applied is the agent's own; the forged one never is
        assert np.allclose(sim.world.command, want, rtol=1e-9, atol=1e-12)
        assert sim.counts["rejected"] == before + len(hostile) + 1
    finally:
        rogue.close()
        ctx.term()
    # SIGKILL agent 1: detected; a new process with the same id (a new epoch) is re-admitted
    fleet.procs[1].send_signal(signal.SIGKILL)
    fleet.procs[1].wait(timeout=10)
    deadline = time.monotonic() + 20
    while not sim.world.failed[1]:
        assert time.monotonic() < deadline, "agent 1 never detected"
        sim.advance(1)
    fleet.procs["1b"] = start_agent(agent_cfg(1, sim))
    while sim.world.status()[1] != Status.LIVE or sim.sessions.cmd_tick[1] != sim.tick:
        assert time.monotonic() < deadline + 40, "agent 1 never rejoined"
        sim.advance(1)
    kinds = [(e["kind"], e.get("agent_id")) for e in sim.events]
    assert ("detected_failure", 1) in kinds and ("rejoined", 1) in kinds
    assert kinds.index(("detected_failure", 1)) < kinds.index(("rejoined", 1))
    sim.finish()


def test_realtime_fleet_converges_with_staggered_states(fleets, rng):
    n, eps, vmax = 12, 0.6 / np.sqrt(12), 0.5
    x0 = (0.05 + 0.2 * rng.random((n, 2))).tolist()
    cfg = lockstep(x0, eps, vmax, tick=0.05, clock="realtime", duration=4.0, command_ttl_wall=0.5)
    fleet = fleets(cfg, rate_hz=40.0, beacon_ttl=0.5, forget_after=1.0)
    fleet.run()
    sim = fleet.sim
    m = sim.metrics
    print(f"real time: energy distance {m['energy_distance'][0]:.4f} -> {m['energy_distance'][-1]:.4f}")
    assert sim.world.t >= 4.0 - 1e-9 and sim.counts["rejected"] == 0
    assert m["alive"][-1] == n and not sim.world.failed.any()
    law = sc.BlobLaw(sim.target, eps, 1.0 / n)
    ideal = sc.flow(law, x0, 4.0, speed_limit=vmax, gain=sc.gain_for(eps, vmax), fixed_step=0.05)
    ed_ideal = energy_distance(ideal.x, sim.target)
    assert m["energy_distance"][-1] < 0.6 * m["energy_distance"][0]
    # the same as the central flow within 10%: sensing-to-actuation delays cost little
    assert abs(m["energy_distance"][-1] - ed_ideal) <= 0.1 * ed_ideal
    assert sim.counts["commands"] >= 0.95 * n * sim.tick  # commands kept up with the ticks


def test_patch_resent_only_when_no_command_answered_it(rng):
    """A lagging agent (answering states a few ticks late) is not sent its patch again; one that
    never answered the patch's state is, after PATCH_RESEND_TICKS."""
    from swarmcover.protocol import decode
    from swarmcover.simulator.config import SimConfig
    from swarmcover.simulator.server import PATCH_RESEND_TICKS, Simulator

    cfg = {"endpoint": "tcp://127.0.0.1:*", "insecure": True, **lockstep(positions(rng, 4), 0.08, 0.5)}
    sim = Simulator(SimConfig.model_validate(cfg))
    try:
        sent = {0: [], 1: []}
        for t in range(30):
            sim.tick = t
            sim.sessions.cmd_tick[0] = t - 4  # robot 0 lags four ticks; robot 1 never answers
            for k in sent:
                if decode(sim.out.state(k)).patch is not None:
                    sent[k].append(t)
        assert sent[0] == [0]
        assert sent[1] == list(range(0, 30, PATCH_RESEND_TICKS))
    finally:
        sim.close()
