"""Agent configuration: the README's example loads; bad configs fail naming the key, before anything runs."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from swarmcover.agentspec import AgentConfig, load_config

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_block(tag: str) -> str:
    text = README.read_text()
    blocks = re.findall(r"```toml\n(# " + re.escape(tag) + r"\n.*?)```", text, flags=re.S)
    assert len(blocks) == 1, f"README should hold exactly one toml block starting '# {tag}'"
    return blocks[0]


@pytest.mark.unit
def test_readme_hardware_config_loads(tmp_path):
    f = tmp_path / "robot3.toml"
    f.write_text(_readme_block("robot3.toml"))
    cfg = load_config(str(f))
    assert isinstance(cfg, AgentConfig)
    assert cfg.body.kind == "udp" and cfg.peers.kind == "direct" and cfg.target is not None
    assert cfg.dim == 2 and len(cfg.peers.roster) == 2


BASE = '{"agent_id": 1, "bounds": [[0, 1], [0, 1]], "eps": 0.1, "mass": 0.1, "speed_limit": 1.0%s}'


@pytest.mark.unit
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (', "eps_typo": 1', "eps_typo"),
        (', "rate_hz": -3', "rate_hz"),
        (', "beacon_ttl": 1.0, "forget_after": 0.5', "forget_after"),
        (', "body": {"kind": "udp"}', "target"),
        (', "body": {"kind": "serial"}', "body"),
        (', "mass": NaN', "mass"),
        ("{", "cannot parse"),
        (', "bounds": [[1, 0]]', "bounds"),
        (', "schedule": {"stages": [{"eps": 0.2}, {"eps": 0.05}]}', "last stage's eps 0.05"),
    ],
)
def test_bad_config_names_the_problem(extra, named):
    with pytest.raises(ValueError, match=named):
        load_config(text=BASE % extra)


@pytest.mark.unit
def test_eps_beside_a_schedule_is_its_last_stage():
    """A launcher writes ``eps`` always (every agent of docs/protocol.md takes it); beside a
    schedule it is the last stage's, and swarmcover's agent runs the schedule."""
    sched = ', "insecure": true, "schedule": {"stages": [{"eps": 0.3, "duration": 2.0}, {"eps": 0.1}]}'
    cfg = load_config(text=BASE % sched)
    assert cfg.eps == 0.1 and [s.eps for s in cfg.schedule.stages] == [0.3, 0.1]
    alone = load_config(text=BASE.replace('"eps": 0.1, ', "") % sched)
    assert alone.eps is None and alone.schedule is not None
    with pytest.raises(ValueError, match="give `eps`"):
        load_config(text=BASE.replace('"eps": 0.1, ', "") % ', "insecure": true')


@pytest.mark.integration
def test_missing_config_file_is_a_clear_cli_error(tmp_path):
    missing = tmp_path / "nope.toml"
    r = subprocess.run([sys.executable, "-m", "swarmcover.cli.main", "agent", "--config", str(missing)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode != 0
    assert "not found" in r.stderr and str(missing) in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.unit
def test_typo_in_config_file_names_file_and_key(tmp_path):
    f = tmp_path / "a.toml"
    f.write_text("agent_id = 1\nbounds = [[0, 1]]\neps = 0.1\nmass = 0.5\nspeed_limit = 1.0\nrate_hzz = 5\n")
    with pytest.raises(ValueError, match=r"a\.toml: rate_hzz"):
        load_config(str(f))


@pytest.mark.unit
def test_direct_peers_count_the_others_in_the_roster():
    """The start's hold waits for every roster peer but the agent itself (by endpoint or id)."""
    from swarmcover.agentspec import DirectPeers, Peer

    mine = "tcp://127.0.0.1:7101"
    plain = DirectPeers(bind=mine, roster=[mine, "tcp://127.0.0.1:7102", "tcp://127.0.0.1:7103"])
    assert plain.others(1) == 2 and plain.start_wait == 5.0
    peers = [Peer(agent_id=a, endpoint=f"tcp://10.0.0.{a}:7101", public_key="k") for a in (1, 2)]
    keyed = DirectPeers(bind=mine, roster=peers)
    assert keyed.others(1) == 1 and keyed.others(9) == 2
    with pytest.raises(ValueError):
        DirectPeers(bind=mine, start_wait=-1.0)
