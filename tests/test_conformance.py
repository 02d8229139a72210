"""The protocol's conformance suite (``swarmcover.testing``) against two agents: swarmcover's own,
and ``examples/protocol_agent.py``, written from docs/protocol.md alone (pyzmq and numpy only); and
against broken copies of the latter, which it must catch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from launching import summary_of

from swarmcover.testing import CHECKS, check_agent

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DOC_AGENT = ROOT / "examples" / "protocol_agent.py"
DOC_FILES = (DOC_AGENT, ROOT / "examples" / "protocol_law.py")
OURS = [sys.executable, "-m", "swarmcover.cli.main", "agent", "--config", "{config}"]


@pytest.mark.parametrize("command", [OURS, [sys.executable, str(DOC_AGENT), "--config", "{config}"]],
                         ids=["swarmcover-agent", "written-from-the-doc"])  # fmt: skip
def test_agents_pass_every_check(command):
    report = check_agent(command)
    assert [r.name for r in report.results] == list(CHECKS)
    assert report.passed, report.table()


# what an implementer who misread the page would write, and the check that must catch it
BROKEN = {
    "one-mirror-per-wall": ("for k in range(-kmax, kmax + 1):", "for k in (0,):", {"law", "corner"}),
    "no-coincident-direction": ("u = u if me < b else -u", "u = 0 * u", {"separation"}),
    "unknown-fields-taken": ("if not required <= keys or not keys <= required | optional:",
                             "if not required <= keys:", {"malformed"}),
    "no-ordering": ('raise Reject("order")', "pass", {"ordering"}),
    "beacon-twice-in-lockstep": ("if self.beacon_tick != tick:", "if True:", {"sensing_round"}),
}  # fmt: skip


def _broken(folder: Path, old: str, new: str) -> Path:
    """A copy of the doc's agent (both its files) in ``folder`` with ``old`` replaced by ``new``."""
    hits = 0
    for src in DOC_FILES:
        text = src.read_text(encoding="utf-8")
        hits += text.count(old)
        (folder / src.name).write_text(text.replace(old, new), encoding="utf-8")
    assert hits == 1, (old, hits)
    return folder / DOC_AGENT.name


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_suite_catches_a_broken_agent(name, tmp_path):
    old, new, must_fail = BROKEN[name]
    broken = _broken(tmp_path, old, new)
    report = check_agent([sys.executable, str(broken), "--config", "{config}"], timeout=3.0)
    failed = {r.name for r in report.failures()}
    assert must_fail <= failed, report.table()


def test_the_command_line_exits_with_the_verdict(tmp_path):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "swarmcover.cli.main", "conformance", "agent", *args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    ok = run("--", sys.executable, str(DOC_AGENT), "--config", "{config}")
    assert ok.returncode == 0 and f"{len(CHECKS)}/{len(CHECKS)} checks passed" in ok.stdout, (
        ok.stdout + ok.stderr
    )
    broken = _broken(tmp_path, 'raise Reject("order")', "pass")
    bad = run("--timeout", "3", "--", sys.executable, str(broken), "--config", "{config}")
    assert bad.returncode == 1 and "ordering         FAIL" in bad.stdout, bad.stdout + bad.stderr
    for args, says in (
        ((sys.executable, str(DOC_AGENT)), "{config}"),
        (("/no/such/agent", "{config}"), "cannot start"),
    ):
        refused = run("--", *args)
        assert refused.returncode == 2 and says in refused.stderr and "Traceback" not in refused.stderr


def test_the_doc_agent_drives_a_launched_fleet_as_ours_does(tmp_path, launches):
    """The agent written from the page alone, started by ``swarmcover launch`` (``agents.command``)
    with the config the launcher writes (the annealed quickstart's final ``eps`` beside its
    schedule), in lockstep with one ε for ever: the same world, tick by tick, as swarmcover's own
    agents. Its first state of all is a sensing round, before any patch."""
    scn = str(ROOT / "launch" / "quickstart.toml")
    common = ("--headless", "--set", 'control.clock="lockstep"', "--set", 'law.schedule="fixed"',
              "--set", "duration=3.0")  # fmt: skip
    doc = json.dumps([sys.executable, str(DOC_AGENT), "--config", "{config}"])
    finals = {}
    for name, extra in (("doc", ("--set", f"agents.command={doc}")), ("ours", ())):
        rc, so, se = launches.run(scn, *common, *extra, out=tmp_path / name)
        assert rc == 0, (so[-3000:], se[-3000:])
        s = summary_of(tmp_path / name)
        assert all(a["fate"] == "completed" and a["answered"] == a["states"] for a in s["agents"]), s[
            "agents"
        ]
        assert s["messages"]["rejected"] == 0
        finals[name] = s["final"]
    assert finals["doc"]["energy_distance"] < 0.5 * finals["doc"]["initial_energy_distance"]
    np.testing.assert_allclose(finals["doc"]["positions"], finals["ours"]["positions"], rtol=0, atol=1e-9)
