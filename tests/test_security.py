"""CurveZMQ and ZAP: only the fleet's keys get in, and a key speaks only for its own agent.

Real simulator (in this process), real agent processes, and real attackers on loopback: a
plaintext client, a CURVE client with a key not on the allow-list, a fleet member claiming another
member's id, and random bytes on the port. The pass criterion in each case: zero of their messages
accepted, every attempt counted and recorded as an event.
"""

from __future__ import annotations

import os
import socket
import stat
import time

import numpy as np
import pytest
import zmq
import zmq.auth
from simfleet import lockstep, positions

from swarmcover.agentspec import AgentConfig
from swarmcover.launcher.keys import make_keys, open_keys
from swarmcover.protocol import Hello, encode
from swarmcover.simulator.config import SimConfig
from swarmcover.simulator.security import load_allow_list

pytestmark = pytest.mark.integration


def _client(ctx: zmq.Context, endpoint: str, keys: tuple[bytes, bytes, bytes] | None) -> zmq.Socket:
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        s.curve_publickey, s.curve_secretkey, s.curve_serverkey = keys
    s.connect(endpoint)
    return s


def _hello(agent_id: int) -> list[bytes]:
    return encode(
        Hello(agent_id=agent_id, epoch=time.time_ns(), seq=1, t=time.time(), name="intruder", rate_hz=10)
    )


def test_only_the_fleet_gets_in_and_no_key_speaks_for_another(fleets, rng, tmp_path):
    n = 3
    keys = make_keys(tmp_path / "keys", list(range(n)))
    fleet = fleets(lockstep(positions(rng, n), 0.2, 0.1, lockstep_timeout_wall=5.0), keys=keys)
    sim = fleet.sim
    sim.start()
    assert sorted(e["agent_id"] for e in sim.events if e["kind"] == "joined") == [0, 1, 2]
    ctx = zmq.Context()

    server_public, _ = zmq.auth.load_certificate(keys.server_public)
    stranger_public, stranger_secret = zmq.curve_keypair()
    member_public, member_secret = zmq.auth.load_certificate(keys.agent_secret(1))
    attackers = {
        "plaintext": _client(ctx, sim.endpoint, None),
        "unknown_key": _client(ctx, sim.endpoint, (stranger_public, stranger_secret, server_public)),
        "wrong_server_key": _client(
            ctx, sim.endpoint, (stranger_public, stranger_secret, zmq.curve_keypair()[0])
        ),
        "impostor": _client(ctx, sim.endpoint, (member_public, member_secret, server_public)),
    }
    try:
        for name, s in attackers.items():
            s.send_multipart(_hello(2 if name == "impostor" else 0), zmq.NOBLOCK)
        host, port = sim.endpoint.rsplit("/", 1)[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as raw:
            raw.sendall(np.random.default_rng(7).bytes(4096))  # random bytes on the port
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                sim.advance(max_ticks=1)
                g = sim.link.conns.counts
                if g["auth_denied"] >= 1 and g["handshake_failed"] >= 3 and sim.counts["impersonation"] >= 1:
                    break
        sim.advance(max_ticks=20)
    finally:
        for s in attackers.values():
            s.close(linger=0)
        ctx.term()
    g, c = sim.link.conns.counts, sim.counts
    kinds = [e["kind"] for e in sim.events]
    print(f"\nguard {g}; impersonation {c['impersonation']}; rejected {c['rejected']}")
    assert g["auth_denied"] >= 1, "the unknown key was not refused by ZAP"
    # the plaintext client, the garbage, the wrong server key (client side: no ZAP call) and the
    # refused key each fail a handshake; each is counted and recorded
    assert g["handshake_failed"] >= 3, g
    assert c["impersonation"] >= 1 and "impersonation" in kinds
    assert kinds.count("auth_denied") >= 1 and kinds.count("handshake_failed") >= 3
    # nothing from them was accepted: the only joins are the fleet's, agent 2 still answers as itself
    assert sorted(e["agent_id"] for e in sim.events if e["kind"] in ("joined", "rejoined")) == [0, 1, 2]
    assert sim.world.live_mask().all() and (sim.sessions.cmd_tick == sim.tick).all()


def test_keys_are_private_and_never_overwritten(tmp_path):
    keys = make_keys(tmp_path / "k", [0, 5])
    for f in (keys.server_secret, keys.agent_secret(0), keys.agent_secret(5)):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    assert stat.S_IMODE(os.stat(keys.server_public).st_mode) == 0o644
    assert sorted(load_allow_list(keys.clients)) == [0, 5]
    with pytest.raises(ValueError, match="already holds keys"):
        make_keys(tmp_path / "k", [1])
    with pytest.raises(ValueError, match=r"agent_0007\.key_secret"):
        open_keys(tmp_path / "k", [0, 7], sim=False, agents=True)
    open_keys(tmp_path / "k", [0, 5], sim=True, agents=True)
    (keys.clients / "agent_0009.key").write_text("public-key = garbage\n")
    with pytest.raises(ValueError, match=r"agent_0009\.key"):
        load_allow_list(keys.clients)


def test_plaintext_only_when_asked_for():
    base = {"bounds": [[0, 1]], "positions": [[0.5], [0.2]], "eps": 0.1, "speed_limit": 1}
    with pytest.raises(ValueError, match=r"give `curve`.*or `insecure = true`"):
        SimConfig.model_validate(base)
    SimConfig.model_validate({**base, "insecure": True})
    agent = {"agent_id": 0, "bounds": [[0, 1]], "eps": 0.1, "mass": 0.5, "speed_limit": 1}
    with pytest.raises(ValueError, match=r"give `curve`.*or `insecure = true`"):
        AgentConfig.model_validate(agent)
    with pytest.raises(ValueError, match="not both"):
        AgentConfig.model_validate(
            {**agent, "insecure": True, "curve": {"secret_key": "a", "server_key": "b"}}
        )


def test_direct_peers_over_curve_admit_only_the_roster_and_name_each_sender(tmp_path):
    """Two agents' direct links (CURVE) and a stranger: the stranger's subscription gets nothing,
    and each received message is attributed to the peer whose key authenticated its connection."""
    from swarmcover.agents.links import PeerLinks

    keys = make_keys(tmp_path / "keys", [0, 1])
    pair = {a: zmq.auth.load_certificate(keys.agent_secret(a)) for a in (0, 1)}
    public = {a: pair[a][0] for a in (0, 1)}
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    eps = [f"tcp://127.0.0.1:{p}" for p in ports]
    roster = [(0, eps[0]), (1, eps[1])]
    ctxs = {a: zmq.Context() for a in (0, 1, "stranger")}  # one per agent process (one ZAP handler each)
    links = {a: PeerLinks(ctxs[a], eps[a], roster, pair[a], public) for a in (0, 1)}
    ctx = ctxs["stranger"]
    stranger = ctx.socket(zmq.SUB)
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.setsockopt(zmq.SUBSCRIBE, b"")
    stranger.curve_publickey, stranger.curve_secretkey = zmq.curve_keypair()
    stranger.curve_serverkey = public[0]
    stranger.connect(eps[0])
    try:
        got: list = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not got:  # PUB/SUB joins late: send until one arrives
            links[0].send([b"from-0"])
            if links[1].subs[0][0].poll(50):
                got = links[1].receive()
        assert got == [[b"from-0"]] or got[0] == [b"from-0"]
        assert set(links[1].expected) == {0}, links[1].expected
        for _ in range(20):
            links[0].send([b"from-0"])
        assert not stranger.poll(500), "a subscriber with an unknown key received a beacon"
    finally:
        stranger.close(linger=0)
        for link in links.values():
            link.close()
        for c in ctxs.values():
            c.term()
