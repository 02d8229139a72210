"""``die_with_parent``: a child gets SIGTERM when its parent exits, by the kernel (Linux) or by
the fallback thread (elsewhere; here forced by pretending not to be Linux)."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import os, sys, time
sys.platform = {platform!r}
from swarmcover.cli.lifeline import die_with_parent
die_with_parent(os.getppid(), interval=0.1)
print("armed", flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("platform", ["linux", "darwin"], ids=["prctl", "thread"])
def test_child_stops_when_its_parent_exits(platform, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(platform=platform))
    # the parent: a shell that starts the child, waits until it is armed, then exits
    parent = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{sys.executable} {script} > {tmp_path}/out & echo $!; "
            f"until grep -q armed {tmp_path}/out; do sleep 0.02; done",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )
    child = int(parent.stdout.readline())
    try:
        assert parent.wait(timeout=30) == 0
        deadline = time.monotonic() + 5.0
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived its parent by 5 s"
            time.sleep(0.02)
    finally:
        try:
            os.kill(child, 9)
        except ProcessLookupError:
            pass
