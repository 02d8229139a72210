"""Issue 19, sweeps: ``swarmcover sweep`` runs every combination of a grid over seeds through
``swarmcover launch``, survives being killed (a rerun completes only what is missing) and keeps
a failed case as a row with its error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from launching import processes_mentioning, wait_until

from swarmcover.launcher.sweep import parse_grid, parse_seeds, recovery_times

LAUNCH = Path(__file__).resolve().parents[1] / "launch"
KILL = 'failures=[{t = 6.0, kind = "kill", fraction = 0.25}]'


def _sweep(out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "swarmcover.cli.main", "sweep", str(LAUNCH / "quickstart.toml"),
            "--set", KILL, "--set", "fleet.size=4", "--set", "control.clock=\"lockstep\"", "--duration", "10",
            "--out", str(out), *args]  # fmt: skip


def _rows(out: Path) -> list[dict]:
    try:
        return json.loads((out / "sweep.json").read_text())["rows"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.integration
def test_a_sweep_killed_midway_resumes_with_only_the_missing_runs(tmp_path):
    """2 fractions x 3 seeds on the quickstart with 4 robots in lockstep (a quarter or half the
    fleet SIGKILLed at t = 6 s):
    the sweep is SIGKILLed once two cases are done; its running launches stop with it (tied to
    its life). The same command again runs only the four missing cases: six rows, the first two
    untouched, and sweep.png."""
    out = tmp_path / "sweep"
    cmd = _sweep(out, "--grid", "failures.0.fraction=0.25,0.5", "--seeds", "0-2", "--jobs", "2")
    first = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_until(lambda: len(_rows(out)) >= 2 or first.poll() is not None, 300.0, "two cases done")
        assert first.poll() is None, "the sweep ended before it could be killed"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        wait_until(lambda: not processes_mentioning(str(out)), 30.0, "the killed sweep's runs to stop")
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    done = {r["case"]: (out / r["folder"] / "summary.json").stat().st_mtime_ns for r in _rows(out)}
    assert len(done) >= 2, done
    second = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"6 cases ({len(done)} done before)" in second.stdout, second.stdout
    rows = _rows(out)
    assert len(rows) == 6 and not any("error" in r for r in rows), rows
    assert {(r["failures.0.fraction"], r["seed"]) for r in rows} == {
        (f, s) for f in (0.25, 0.5) for s in (0, 1, 2)
    }
    for name, mtime in done.items():  # not run again
        row = next(r for r in rows if r["case"] == name)
        assert (out / row["folder"] / "summary.json").stat().st_mtime_ns == mtime
    for r in rows:
        assert (
            r["final_energy_distance"] is not None and r["min_energy_distance"] <= r["final_energy_distance"]
        )
        assert r["alive"] == (3 if r["failures.0.fraction"] == 0.25 else 2), r
        assert len(r["recovery"]) == 1 and r["recovery"][0]["t"] == pytest.approx(6.0, abs=0.2), r["recovery"]
    assert (out / "sweep.png").stat().st_size > 10_000


@pytest.mark.integration
def test_a_case_that_fails_is_a_row_with_its_error_and_the_others_finish(tmp_path):
    """A grid value the scenario refuses (a fraction of 7) ends that case's launch with an error:
    its row says why; the other case runs; the sweep exits 0, and a rerun does not retry it."""
    out = tmp_path / "sweep"
    cmd = _sweep(out, "--grid", "failures.0.fraction=0.5,7.0", "--seeds", "0")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = {row["failures.0.fraction"]: row for row in _rows(out)}
    assert "error" not in rows[0.5] and rows[0.5]["final_energy_distance"] is not None
    assert rows[7.0]["rc"] == 2 and "fraction" in rows[7.0]["error"], rows[7.0]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "2 cases (2 done before)" in again.stdout, again.stdout


@pytest.mark.unit
def test_grid_and_seed_syntax():
    grid = parse_grid(["failures.0.fraction=0.1,0.2", "radio.loss=0", "fleet.center=[1.0, 2.0],[3.0, 4.0]"])
    assert grid == {
        "failures.0.fraction": [0.1, 0.2],
        "radio.loss": [0],
        "fleet.center": [[1.0, 2.0], [3.0, 4.0]],
    }
    assert parse_seeds("0-3,7") == [0, 1, 2, 3, 7]
    for bad in (["fleet.size"], ["=1,2"], ["a=1", "a=2"]):
        with pytest.raises(ValueError, match="--grid"):
            parse_grid(bad)
    with pytest.raises(ValueError, match="--seeds"):
        parse_seeds("3-1")


@pytest.mark.unit
def test_recovery_is_measured_from_the_failure_to_the_coverage_regained():
    """A kill at 10 and its detection at 11 are one episode; the energy distance (0.2 before)
    rises to 0.5 and is back under 0.22 at t = 15: recovery 5 s. A second episode that never
    recovers is None; one that never hurt coverage is 0."""
    t = list(range(0, 41))
    ed = [0.2] * 11 + [0.5, 0.4, 0.3, 0.25, 0.21] + [0.2] * 9 + [0.6] * 16
    ed[38:] = [0.6, 0.6, 0.6]
    events = [
        {"t": 10.0, "kind": "killed"},
        {"t": 11.0, "kind": "detected_failure"},
        {"t": 25.0, "kind": "killed"},
    ]
    got = recovery_times({"metrics": {"t": t, "energy_distance": ed}, "events": events})
    assert got == [{"t": 10.0, "kinds": ["detected_failure", "killed"], "recovery": 5.0},
                   {"t": 25.0, "kinds": ["killed"], "recovery": None}]  # fmt: skip
    flat = recovery_times({"metrics": {"t": t, "energy_distance": [0.2] * 41}, "events": events[:1]})
    assert flat == [{"t": 10.0, "kinds": ["killed"], "recovery": 0.0}]
