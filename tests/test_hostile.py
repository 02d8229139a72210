"""Issue 22: one message must not end a run. Hostile input against real agent processes and
simulators on loopback; each test fails on the code before the fix it names."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from harness import start_agent, stop_all, udp_body_start, udp_body_tick
from launching import free_port

from swarmcover.protocol import Beacon, Command, State, Stats, decode, encode

pytestmark = pytest.mark.integration

LAUNCH = Path(__file__).resolve().parents[1] / "launch"

_HUGE_HELLO = b'{"v":1,"kind":"hello","agent_id":' + b"1" * 5000 + b',"epoch":1,"seq":1,"t":0.0}'


class _UdpBody:
    """A real body speaking the protocol over UDP: an integrator at ``x``, one state per tick."""

    def __init__(self, port: int, x) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port, self.x = port, np.asarray(x, dtype=float)
        self.epoch, self.seq, self.tick = time.time_ns() % (1 << 40), 0, 0

    def step(self, timeout: float = 1.0) -> Command | None:
        """One state out, the agent's command for it back (None when none came in time)."""
        self.tick += 1
        self.seq += 1
        st = State(agent_id=0, epoch=self.epoch, seq=self.seq, t=time.time(), position=self.x.tolist(),
                   world_time=0.02 * self.tick, tick=self.tick)  # fmt: skip
        self.sock.sendto(encode(st)[0], ("127.0.0.1", self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            cmd = decode([data]).message
            if isinstance(cmd, Command) and cmd.tick == self.tick:
                self.x = np.clip(self.x + 0.02 * np.asarray(cmd.velocity), 0.0, 1.0)
                return cmd
        return None


def _commands_to(sock: socket.socket) -> int:
    """Commands that arrived at ``sock`` so far (non-blocking)."""
    sock.setblocking(False)
    got = 0
    while True:
        try:
            data, _ = sock.recvfrom(65536)
        except BlockingIOError:
            return got
        got += isinstance(decode([data]).message, Command)


def test_udp_agent_survives_junk_and_is_not_hijacked():
    """A UDP-body agent: a 5 KB header with a 5000-digit integer (it used to exit with code 2),
    a forged state with epoch 2^63 - 1 and a position 0.9 away (it used to lock the real body out
    and steer the robot), forged states in the body's own epoch from another address (they used
    to take the commands): the agent stays up, answers only its body, every tick."""
    port, pub = free_port(socket.SOCK_DGRAM), f"tcp://127.0.0.1:{free_port()}"
    cfg = {
        "agent_id": 0, "bounds": [[0, 1], [0, 1]], "eps": 0.2, "mass": 1.0, "speed_limit": 0.5,
        "rate_hz": 200.0, "state_timeout": 5.0, "insecure": True,
        "body": {"kind": "udp", "listen": f"127.0.0.1:{port}"},
        "peers": {"kind": "direct", "bind": pub, "roster": [pub]},
        "target": {"means": [[0.6, 0.6]], "covs": [0.02]},
    }  # fmt: skip
    proc = start_agent(cfg)
    body = _UdpBody(port, [0.2, 0.2])
    attacker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    attacker.bind(("127.0.0.1", 0))
    try:
        deadline = time.monotonic() + 20.0
        while body.step(0.5) is None:  # start-up: the first state is answered
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        for tick in range(60):
            if tick == 5:
                attacker.sendto(_HUGE_HELLO, ("127.0.0.1", port))
            if tick == 10:
                forged = State(agent_id=0, epoch=(1 << 63) - 1, seq=1, t=time.time(), position=[0.95, 0.95],
                               world_time=1.0, tick=10_000)  # fmt: skip
                attacker.sendto(encode(forged)[0], ("127.0.0.1", port))
            if tick >= 20:
                forged = State(agent_id=0, epoch=body.epoch, seq=body.seq + 1000 + tick, t=time.time(),
                               position=[0.95, 0.95], world_time=1.0, tick=body.tick + 1)  # fmt: skip
                attacker.sendto(encode(forged)[0], ("127.0.0.1", port))
            cmd = body.step(2.0)
            assert proc.poll() is None, f"agent exited {proc.returncode}: {proc.communicate()[1][-2000:]}"
            assert cmd is not None, f"no command for the body's tick {body.tick}"
        assert _commands_to(attacker) == 0
        assert np.linalg.norm(body.x - [0.6, 0.6]) < np.linalg.norm(np.array([0.2, 0.2]) - [0.6, 0.6])
    finally:
        body.sock.close()
        attacker.close()
        stop_all([proc])


def _direct_fleet(rng, liar: bool, ticks: int = 400) -> tuple[float, dict]:
    """5 agents in direct mode (UDP bodies integrated here, beacons PUB/SUB between agents) and a
    sixth roster endpoint: robot 5 parked at the target's centre, honest (mass 1/5) or, with
    ``liar``, claiming mass 1.0, and then also id 6 sending positions that jump across the map
    and id 7 standing still inside the map's no-go zone (on the fleet's way to the target).
    Returns the five agents' final energy distance and agent 0's counters."""
    import swarmcover as sc
    from swarmcover.protocol import Beacon, StatsRequest

    n, dt, speed = 5, 0.02, 0.5
    target = sc.GaussianMixture([[0.6, 0.6]], [0.02], bounds=[(0, 1), (0, 1)])
    udp = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    pub = [f"tcp://127.0.0.1:{free_port()}" for _ in range(n + 1)]
    ctx = zmq.Context()
    lie = ctx.socket(zmq.PUB)
    lie.setsockopt(zmq.LINGER, 0)
    lie.bind(pub[n])
    body = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    body.bind(("127.0.0.1", 0))
    body.settimeout(0.2)
    procs = []
    try:
        for i in range(n):
            cfg = {
                "agent_id": i, "bounds": [[0, 1], [0, 1]], "eps": 0.2, "mass": 1 / n, "speed_limit": speed,
                "r_min": 0.05, "rate_hz": 200.0, "state_timeout": 5.0, "insecure": True,
                "body": {"kind": "udp", "listen": f"127.0.0.1:{udp[i]}"},
                "peers": {"kind": "direct", "bind": pub[i], "roster": pub},
                "target": {"means": [[0.6, 0.6]], "covs": [0.02], "smoothing": 0.2,
                           "zones": [{"kind": "disk", "center": [0.3, 0.3], "radius": 0.08}]},
            }  # fmt: skip
            procs.append(start_agent(cfg))
        x = 0.05 + 0.1 * np.random.default_rng(3).random((n, 2))
        epoch, seq, lseq = time.time_ns(), 0, 0
        for tick in range(1, ticks + 1):
            lseq += 1
            env = {"epoch": 1, "seq": lseq, "t": time.time()}
            lie.send_multipart(
                encode(Beacon(agent_id=5, **env, position=[0.6, 0.6], mass=1.0 if liar else 1 / n))
            )
            if liar:
                jumper = Beacon(agent_id=6, **env, position=rng.random(2).tolist(), mass=0.2)
                lie.send_multipart(encode(jumper))
                lie.send_multipart(encode(Beacon(agent_id=7, **env, position=[0.3, 0.31], mass=0.2)))
            if tick == 1:
                v, seq = udp_body_start(body, udp, x, dt, epoch, seq, procs)
            else:
                v, _, seq = udp_body_tick(body, udp, x, tick, dt, epoch, seq, 1.0)
            x = np.clip(x + dt * v, 0, 1)
            off = x - 0.3  # the zone is solid: a body that would enter it stops at its edge
            r = np.linalg.norm(off, axis=1)
            inside = r < 0.08
            x[inside] = 0.3 + off[inside] * (0.08 * (1 + 1e-6) / np.maximum(r[inside], 1e-12))[:, None]
        seq += 1
        body.sendto(
            encode(StatsRequest(agent_id=0, epoch=epoch, seq=seq, t=time.time()))[0], ("127.0.0.1", udp[0])
        )
        counters: dict = {}
        deadline = time.monotonic() + 5.0
        while not counters and time.monotonic() < deadline:
            try:
                msg = decode([body.recvfrom(65536)[0]]).message
            except TimeoutError:
                continue
            if isinstance(msg, Stats):
                counters = msg.counters.model_dump()
        return float(sc.metrics.energy_distance(x, target)), counters
    finally:
        body.close()
        lie.close(linger=0)
        ctx.term()
        stop_all(procs)


def test_direct_mode_liars_are_capped_rejected_and_quarantined(rng):
    """Direct mode (no simulator: positions are the senders' word), 5 agents with UDP bodies and
    a robot parked at the target's centre. Claiming mass 1.0 there, it counts as one robot of the
    fleet's mass; a peer claiming positions that jump across the map, and one claiming to stand
    inside a no-go zone, are refused and quarantined (both: two quarantines).
    The fleet ends within 10 % of the energy distance it reaches beside an honest robot there
    (plus 0.01 for real-time noise; without the mass cap it was 1.8 x)."""
    clean, honest = _direct_fleet(rng, liar=False)
    assert honest["mass_capped"] == 0 and honest["impossible"] == 0, honest
    attacked, counters = _direct_fleet(rng, liar=True)
    print(
        f"\ndirect mode, 5 agents: energy distance clean {clean:.4f}, with liars {attacked:.4f}; {counters}"
    )
    assert counters["mass_capped"] > 0 and counters["impossible"] > 0 and counters["quarantined"] >= 2, (
        counters
    )
    assert attacked <= 1.1 * clean + 0.01, (clean, attacked)


def test_a_peer_claiming_ever_higher_epochs_restarts_its_neighbours_once_per_annealing():
    """Direct mode, 3 agents with UDP bodies following an annealed schedule, and a member whose
    every beacon (one per tick, 300 ticks of 0.02 world s) claims a newer restart. Each agent takes
    up the first at once and then at most one per holdoff (1 world s: the after-losses schedule's
    annealing), as its own beacons show; the rest are counted in ``epochs_deferred``. Before, each
    agent took up every one of them and never left the restart's first stage."""
    from swarmcover.protocol import PhaseInfo, StatsRequest

    n, dt, ticks = 3, 0.02, 300
    udp = [free_port(socket.SOCK_DGRAM) for _ in range(n)]
    pub = [f"tcp://127.0.0.1:{free_port()}" for _ in range(n + 1)]
    stages = [{"eps": 0.3, "smoothing": 0.3, "duration": 1.0}, {"eps": 0.15, "smoothing": 0.15}]
    after = [{"eps": 0.2, "smoothing": 0.2, "duration": 1.0}, {"eps": 0.15, "smoothing": 0.15}]
    ctx = zmq.Context()
    lie, watch = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
    for sock in (lie, watch):
        sock.setsockopt(zmq.LINGER, 0)
    lie.bind(pub[n])
    watch.setsockopt(zmq.SUBSCRIBE, b"")
    watch.connect(pub[0])
    body = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    body.bind(("127.0.0.1", 0))
    body.settimeout(0.2)
    procs = []
    try:
        for i in range(n):
            cfg = {
                "agent_id": i, "bounds": [[0, 1], [0, 1]], "mass": 1 / (n + 1), "speed_limit": 0.5,
                "schedule": {"stages": stages, "after_losses": after}, "r_min": 0.05, "rate_hz": 200.0,
                "state_timeout": 5.0, "insecure": True,
                "body": {"kind": "udp", "listen": f"127.0.0.1:{udp[i]}"},
                "peers": {"kind": "direct", "bind": pub[i], "roster": pub},
                "target": {"means": [[0.6, 0.6]], "covs": [0.02]},
            }  # fmt: skip
            procs.append(start_agent(cfg))
        x = 0.2 + 0.1 * np.random.default_rng(5).random((n, 2))
        epoch, seq, told = time.time_ns(), 0, []
        for tick in range(1, ticks + 1):
            env = {"epoch": 1, "seq": tick, "t": time.time()}
            lie.send_multipart(encode(Beacon(agent_id=n, **env, position=[0.6, 0.6], mass=1 / (n + 1),
                                             phase=PhaseInfo(epoch=tick, age=0.0))))  # fmt: skip
            if tick == 1:  # start-up: the first state again until every agent has answered it
                v, seq = udp_body_start(body, udp, x, dt, epoch, seq, procs)
            else:
                v, _, seq = udp_body_tick(body, udp, x, tick, dt, epoch, seq, 1.0)
            x = np.clip(x + dt * v, 0, 1)
            while watch.poll(0):
                b = decode(watch.recv_multipart()).message
                if isinstance(b, Beacon) and b.agent_id == 0 and b.phase is not None:
                    told.append((tick, b.phase.epoch, b.phase.age))
        seq += 1
        body.sendto(
            encode(StatsRequest(agent_id=0, epoch=epoch, seq=seq, t=time.time()))[0], ("127.0.0.1", udp[0])
        )
        counters: dict = {}
        deadline = time.monotonic() + 5.0
        while not counters and time.monotonic() < deadline:
            try:
                msg = decode([body.recvfrom(65536)[0]]).message
            except TimeoutError:
                continue
            if isinstance(msg, Stats):
                counters = msg.counters.model_dump()
    finally:
        body.close()
        lie.close(linger=0)
        watch.close(linger=0)
        ctx.term()
        stop_all(procs)
    changes = [(t, e, round(a, 2)) for k, (t, e, a) in enumerate(told) if k and e != told[k - 1][1]]
    print(f"\nagent 0 took up {len(changes)} of {ticks} claimed restarts: {changes}; {counters}")
    assert told and max(e for _, e, _ in told) > 1  # the liar was heard
    # a take-up anneals again only when it joins a phase less than half through its annealing: a
    # neighbour's epoch dated from that neighbour's start, taken up when agent 0's holdoff ends,
    # may be nearly annealed already (seen twice in CI: epoch 102, started at tick 102, taken up at
    # tick 151 at age 0.98 s, and the liar's next one a tick later, which did start afresh)
    restarts = [t for t, _, a in changes if a < 0.5 * 1.0]
    # apart by about the holdoff (1 world s), not every tick; less by how much earlier the honest
    # neighbours took the same epoch up (agent 0 then dates its start from theirs) and by the
    # beacons' time on the wire as the watcher sees them: 0.90 s was seen on a loaded machine, and
    # once a gap of about half a second after an epoch taken from a neighbour (8 take-ups in 6 s)
    gaps = np.diff(restarts) * dt
    assert len(restarts) >= 1 and np.all(gaps >= 0.5), (gaps, changes)
    assert 1 <= len(changes) <= 1 + ticks * dt / 0.5, changes  # 6 world s: the first at once
    assert counters["epochs_deferred"] >= ticks - 10 * len(changes), counters


def test_a_member_claiming_mass_one_moves_the_fleet_no_more_than_an_honest_robot(fleets):
    """Lockstep, 8 real agent processes, run twice from the same start with agent 7 parked on the
    larger bump's centre (speed limit 1e-9): an honest robot there, then a captured one whose
    config says mass 1.0 (not 1/8), so its beacons claim it. The simulator relays at most the
    fleet's per-robot mass (counted), so the others see the honest robot: every robot ends where it
    ended in the honest run (lockstep is deterministic), so the energy distance is the honest
    run's. Without the caps the liar's neighbours end elsewhere (energy distance 0.225 against
    0.271 in this configuration: mass at a peak can even look better; it is still a lie)."""
    from simfleet import agent_cfg, lockstep, positions

    import swarmcover as sc

    n = 8
    x0 = positions(np.random.default_rng(11), n)
    x0[n - 1] = [0.7, 0.6]
    ed, capped, x = {}, {}, {}
    for liar in (False, True):
        fleet = fleets(lockstep(x0, 0.15, 0.5, lockstep_timeout_wall=5.0), start=list(range(n - 1)))
        sim = fleet.sim
        fleet.procs[n - 1] = start_agent(
            agent_cfg(n - 1, sim, mass=1.0 if liar else 1.0 / n, speed_limit=1e-9)
        )
        sim.start()
        sim.advance(200)
        x[liar] = np.array(sim.world.x)
        ed[liar] = float(sc.metrics.energy_distance(x[liar], sim.target))
        capped[liar] = sim.counts["mass_capped"]
        fleet.close()
    print(f"\nlockstep, 8 agents: energy distance honest {ed[False]:.4f}, mass liar {ed[True]:.4f}")
    assert capped[False] == 0 and capped[True] >= 100, capped
    assert np.allclose(x[True], x[False], rtol=0, atol=1e-6), np.abs(x[True] - x[False]).max()
    assert ed[True] <= 1.1 * ed[False], ed
