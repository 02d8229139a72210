"""Issue 19, placement on Ray: ``swarmcover launch FILE --cluster ray://HEAD`` on a real two-node
Ray cluster (``ray start --head`` and a second ``ray start`` with its own resources, both on this
machine), torn down afterwards. Skips when the ``ray`` extra is not installed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from launching import events_of, free_port, processes_mentioning, summary_of, wait_until

from swarmcover.launcher.cluster import parse_cluster

LAUNCH = Path(__file__).resolve().parents[1] / "launch"


def _ray(*args: str, env: dict) -> str:
    ray = Path(sys.executable).parent / "ray"
    r = subprocess.run([str(ray), *args], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, (args, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


@pytest.fixture
def ray_cluster():
    """A head (1 CPU) and a worker node (1 CPU and a resource named ``worker``) on loopback; yields
    (address, the worker's node id, the folder the nodes keep their temporary files in, the pids of
    the worker node's daemons). The head declares a node lost after about 1.5 s of silence (Ray's
    default is 15 s or more: a test need not wait for it)."""
    if os.environ.get("SWARMCOVER_REQUIRE_RAY") == "1":  # .ci/run installs the extra: no skipping there
        import ray
    else:
        ray = pytest.importorskip("ray")
    # Ray's sockets live under its temp dir: a short path (a unix socket's name has 107 bytes at most)
    tmp = Path(tempfile.mkdtemp(prefix="scray", dir="/tmp"))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "TMPDIR": str(tmp)}
    port = free_port()
    address = f"127.0.0.1:{port}"
    common = ["--num-cpus=1", "--object-store-memory=78643200", "--disable-usage-stats"]
    try:
        fast = {"health_check_initial_delay_ms": 1000, "health_check_period_ms": 500,
                "health_check_timeout_ms": 500, "health_check_failure_threshold": 3}  # fmt: skip
        _ray("start", "--head", f"--port={port}", f"--temp-dir={tmp}", "--include-dashboard=false", *common,
             f"--system-config={json.dumps(fast)}", env=env)  # fmt: skip
        head = set(processes_mentioning(str(tmp)))
        _ray("start", f"--address={address}", "--resources", json.dumps({"worker": 1}), *common, env=env)
        daemons = set(processes_mentioning(str(tmp))) - head
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        try:
            worker = [n["NodeID"] for n in ray.nodes() if n["Alive"] and "worker" in n["Resources"]]
        finally:
            ray.shutdown()
        assert len(worker) == 1, worker
        yield address, worker[0], tmp, daemons
    finally:  # the cluster's daemons mention its temp dir; their children (workers, agents) are theirs
        for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 15.0)):  # some ignore SIGTERM
            ours = _with_descendants(processes_mentioning(str(tmp)))
            for pid in ours:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            try:
                wait_until(lambda: not any(_running(pid) for pid in ours), wait, "the Ray cluster to stop")  # noqa: B023
                break
            except AssertionError:
                continue
        shutil.rmtree(tmp, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie left to an init that does not reap it has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _with_descendants(pids: list[int]) -> set[int]:
    """``pids`` and every process below them (from ``/proc``: who is whose parent)."""
    parent = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(pids), list(pids)
    while todo:
        p = todo.pop()
        for child in [c for c, pp in parent.items() if pp == p and c not in found]:
            found.add(child)
            todo.append(child)
    return found


@pytest.mark.integration
def test_a_launch_places_agents_on_both_nodes_restarts_them_and_survives_a_lost_node(ray_cluster, tmp_path,
                                                                                    launches):  # fmt: skip
    """The quickstart with ``--cluster``: Ray spreads the 12 agents over both nodes (their node ids
    in ``summary.json``, the keys shipped to each node's private folder); an agent process on the
    worker node SIGKILLed from outside is detected (its exit, and its silence) and the scenario's
    ``restart`` at t = 4 brings it back on its node. Then the whole worker node goes down (its
    daemons and everything under them SIGKILLed): its agents count as SIGKILLed, Ray moves their
    CPU shares to the head, and the ``restart`` at t = 10 starts them there (six agents starting at
    once on a busy head once took more than 4 s to say hello: the run goes on to t = 18). The fleet covers as
    the plain launch does (the bound ``test_quickstart_runs_headless_end_to_end`` asks), the logs
    come back, and nothing is left running."""
    address, worker, tmp, daemons = ray_cluster
    out = tmp_path / "run"
    restarts = '[{t = 4.0, kind = "restart", fraction = 1.0}, {t = 10.0, kind = "restart", fraction = 1.0}]'
    p = launches.start(str(LAUNCH / "quickstart.toml"), "--headless", "--cluster", f"ray://{address}",
                       "--set", "cluster.cpus_per_agent=0.05", "--set", f"failures={restarts}",
                       "--duration", "18", out=out, env={"RAY_USAGE_STATS_ENABLED": "0"})  # fmt: skip
    try:
        joined = lambda: sum(e["kind"] == "joined" for e in events_of(out)) == 12 or p.poll() is not None  # noqa: E731
        wait_until(joined, 120.0, "the fleet to join")
        assert p.poll() is None, p.communicate()[1].decode()[-3000:]
        started = {e["agent_id"]: e for e in events_of(out) if e["kind"] == "process_started"}
        victim = next(a for a, e in sorted(started.items()) if e["node"] == worker)
        assert os.sched_getscheduler(started[victim]["pid"]) == os.SCHED_BATCH  # the node's host applied it
        os.kill(started[victim]["pid"], signal.SIGKILL)
        back = lambda: any(e["kind"] == "rejoined" for e in events_of(out)) or p.poll() is not None  # noqa: E731
        wait_until(back, 60.0, "the killed agent to rejoin")
        assert events_of(out)[-1]["t"] < 6.5, "too late to lose the node well before the second restart"
        for pid in _with_descendants(list(daemons)):  # the worker node goes down
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        so, se = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert p.returncode == 0, (so.decode()[-2000:], se.decode()[-3000:])
    summary = summary_of(out)
    cluster, events = summary["cluster"], summary["events"]
    head = cluster["head_node"]
    on_worker = sorted(a for a, e in started.items() if e["node"] == worker)
    assert head != worker and len(on_worker) == 6, started
    assert cluster["placement"] == {str(a): head for a in range(12)}  # where each runs now
    assert cluster["lost"] == [worker]
    kinds = [(e["kind"], e.get("agent_id")) for e in events]
    for kind in ("process_exited", "detected_failure", "restarted", "rejoined"):
        assert (kind, victim) in kinds, (kind, kinds)
    exits = [e for e in events if e["kind"] == "process_exited"]
    assert all(e["exit_code"] == -signal.SIGKILL for e in exits), exits
    assert sorted(e["agent_id"] for e in exits) == sorted([victim, *on_worker])  # twice: its two lives
    restarted = [e for e in events if e["kind"] == "restarted"]
    first, second = [[e for e in restarted if abs(e["t"] - t) < 0.5] for t in (4, 10)]
    assert [(e["agent_id"], e["node"]) for e in first] == [(victim, worker)], first  # on its own node
    assert sorted(e["agent_id"] for e in second) == on_worker, second
    assert {e["node"] for e in second} == {head}, second  # where Ray moved their bundles
    assert not any(k == "restart_failed" for k, _ in kinds)
    assert all(summary["agents"][a]["restarts"] == (2 if a == victim else 1) for a in on_worker)
    assert summary["final"]["alive"] == 12 and not summary["interrupted"]
    ed = summary["metrics"]["energy_distance"]
    assert ed[-1] < 0.3 * ed[0], ed
    config = json.loads((out / "agents" / f"agent_{victim:04d}.json").read_text())
    assert config["curve"]["secret_key"].startswith(str(tmp)), config["curve"]  # the node's private copy
    assert all((out / "logs" / f"agent_{a:04d}.log").exists() for a in range(12))
    # the live nodes removed their private folders; the lost one's stays on its own disk
    assert len(list(tmp.glob("swarmcover-agents-*"))) == 1
    assert not processes_mentioning("swarmcover-agents-")


@pytest.mark.unit
def test_cluster_addresses():
    assert parse_cluster("ray") is None  # the cluster this machine is in (RAY_ADDRESS, or `ray start` here)
    assert parse_cluster("ray://10.0.0.5:6379") == "10.0.0.5:6379"
    for bad in ("", "ray://", "dask://x:1", "ray:10.0.0.5"):
        with pytest.raises(ValueError, match="--cluster"):
            parse_cluster(bad)


@pytest.mark.integration
def test_a_launch_without_cluster_never_imports_ray():
    code = (
        "import sys, swarmcover.cli.main, swarmcover.launcher.run, swarmcover.launcher.sweep\n"
        "print('ray' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "False"
