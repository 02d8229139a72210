"""The simulator with real agent processes over real ZeroMQ on loopback."""

import numpy as np
import pytest
from simfleet import BOUNDS, TARGET, Fleet, positions

import swarmcover as sc
from simulator.recording import load_recording
from swarmcover.metrics import energy_distance


@pytest.fixture
def fleets():
    made = []
    try:
        yield lambda cfg, **over: made.append(Fleet(cfg, **over)) or made[-1]
    finally:
        for f in made:
            f.close()


def test_lockstep_matches_flow(fleets, rng):
    n, eps, tick, vmax, ticks = 20, 0.08, 0.02, 0.5, 100
    x0 = positions(rng, n)
    # a radio that reaches everyone: with range = the law's radius an agent keeps a neighbour that
    # left range at its last heard position for beacon_ttl (see docs/simulator.md)
    fleet = fleets(
        dict(
            bounds=BOUNDS,
            target=TARGET,
            positions=x0,
            eps=eps,
            speed_limit=vmax,
            tick=tick,
            clock="lockstep",
            lockstep_timeout_wall=10.0,
            radio={"range": 2.0},
        ),
        gain=1.0,
    )
    fleet.run(max_ticks=ticks)
    sim = fleet.sim
    assert sim.tick == ticks and sim.counts["rejected"] == 0 and sim.counts["lockstep_timeouts"] == 0
    law = sc.BlobLaw(sim.target, eps, 1.0 / n)
    ref = sc.flow(law, x0, ticks * tick, speed_limit=vmax, gain=1.0, fixed_step=tick)
    assert np.abs(sim.world.x - ref.x).max() < 1e-6
    assert np.abs(ref.x - np.asarray(x0)).max() > 0.1  # the fleet really moved


def test_failure_recovery_after_sigkill_of_40_percent(fleets, tmp_path, rng, record_property):
    import signal
    import time

    n, eps, tick, vmax = 40, 0.6 / np.sqrt(40), 0.02, 0.5
    x0 = positions(rng, n)
    cfg = dict(
        bounds=BOUNDS,
        target=TARGET,
        positions=x0,
        eps=eps,
        speed_limit=vmax,
        tick=tick,
        clock="lockstep",
        lockstep_timeout_wall=0.5,
        failure_timeout_wall=0.5,
        record=str(tmp_path / "run"),
    )
    fleet = fleets(cfg)
    sim = fleet.sim
    sim.start()
    sim.advance(100)  # 2 world seconds: converged (energy distance flat)
    killed = sorted(int(a) for a in rng.choice(n, 16, replace=False))
    killed_at = sim.world.t
    for a in killed:
        fleet.procs[a].send_signal(signal.SIGKILL)
    for a in killed:
        fleet.procs[a].wait(timeout=10)
    survivors = np.array([a for a in range(n) if a not in killed])
    # the reference: a fresh fleet of the survivors' size, same law and parameters, run to convergence
    law24 = sc.BlobLaw(sim.target, eps, 1.0 / 24)
    fresh = sc.flow(
        law24, positions(rng, 24), 4.0, speed_limit=vmax, gain=sc.gain_for(eps, vmax), fixed_step=tick
    )
    goal = 1.1 * energy_distance(fresh.x, sim.target)
    recovered_at = None
    t0 = time.monotonic()
    while sim.world.t < killed_at + 6.0:
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
    base = dict(
        bounds=BOUNDS,
        target=TARGET,
        positions=x0,
        eps=eps,
        speed_limit=vmax,
        tick=tick,
        clock="lockstep",
        lockstep_timeout_wall=5.0,
    )
    lossy = fleets({**base, "radio": {"loss": 0.2, "latency": 0.05}})
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

    from simulator.live import LiveView
    from simulator.render import STATUS_COLOURS

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    x0 = [[0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]]
    cfg = dict(
        bounds=BOUNDS,
        target=TARGET,
        positions=x0,
        eps=0.15,
        speed_limit=0.05,
        tick=0.05,
        clock="lockstep",
        lockstep_timeout_wall=5.0,
        events=[{"t": 0.1, "kind": "fail", "ids": [0]}],
        render={"enabled": True, "frames_dir": str(tmp_path / "frames"), "frame_every": 0.25},
    )
    fleet = fleets(cfg)
    view = LiveView(fleet.sim, headless=True)
    fleet.sim.observers.append(view.on_snapshot)
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
    )
    sim = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "swarmcover_cli.main",
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

    from simulator.recording import Recorder
    from simulator.world import Snapshot

    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    cfg = dict(bounds=BOUNDS, target=TARGET, positions=positions(rng, 3), eps=0.2, speed_limit=0.2)
    from simulator.config import SimConfig

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
        [sys.executable, "-m", "swarmcover_cli.main", "replay", str(tmp_path / "run"), "--headless"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    frames = sorted((tmp_path / "run" / "replay").glob("frame_*.png"))
    assert len(frames) == 3  # every world second over 0..2 s
    missing = subprocess.run(
        [sys.executable, "-m", "swarmcover_cli.main", "replay", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "not a recording" in missing.stderr
