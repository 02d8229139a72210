"""How the launcher lowers its agent processes' CPU priority (``launcher/processes.py``): nice
steps and, on Linux, the batch policy, set on real processes and read back from the kernel."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from swarmcover.launcher.processes import Priority, lower_priority

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_getscheduler"), reason="Linux scheduling policies")


@pytest.mark.integration
def test_agents_are_lowered_by_nice_steps_and_scheduled_as_batch_or_left_normal():
    base = os.getpriority(os.PRIO_PROCESS, 0)
    procs = [subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
             for _ in range(3)]  # fmt: skip
    try:
        cases = [Priority(nice=3, batch=True), Priority(nice=0, batch=False), Priority(nice=40, batch=False)]
        for p, priority in zip(procs, cases, strict=True):
            lower_priority(p.pid, priority)
        got = [(os.getpriority(os.PRIO_PROCESS, p.pid), os.sched_getscheduler(p.pid)) for p in procs]
        assert got == [(min(19, base + 3), os.SCHED_BATCH), (base, os.SCHED_OTHER), (19, os.SCHED_OTHER)]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # a process that has ended already is left to be reaped: nothing is raised
    lower_priority(procs[0].pid, Priority(nice=3, batch=True))
