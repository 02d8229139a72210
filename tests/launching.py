"""Starting ``swarmcover launch`` from tests: the real CLI in its own process group, killed with
everything that mentions its run folder when the test ends (also when it fails)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from swarmcover.launcher.processes import processes_mentioning

__all__ = ["Launches", "events_of", "processes_mentioning", "summary_of", "wait_until"]


def wait_until(predicate, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def events_of(run: Path) -> list[dict]:
    p = run / "recording" / "events.jsonl"
    if not p.exists():
        return []
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # the line being written
            break
    return rows


class Launches:
    """Starts ``swarmcover launch`` processes; :meth:`cleanup` kills them and anything that
    mentions their run folders."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.folders: list[Path] = []

    def start(self, *args: str, out: Path, preexec_fn=None, env: dict | None = None) -> subprocess.Popen:
        env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", **(env or {})}
        cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", *args, "--out", str(out)]
        p = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )
        self.procs.append(p)
        self.folders.append(out)
        return p

    def run(
        self, *args: str, out: Path, timeout: float = 180.0, env: dict | None = None
    ) -> tuple[int, str, str]:
        p = self.start(*args, out=out, env=env)
        try:
            so, se = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            so, se = p.communicate()
            raise AssertionError(f"launch timed out\n{so.decode()[-3000:]}\n{se.decode()[-3000:]}") from None
        return p.returncode, so.decode(), se.decode()

    def run_on_terminal(self, *args: str, out: Path, timeout: float = 180.0) -> tuple[int, bytes]:
        """Run a launch with its stdout and stderr on a pseudo-terminal (as in a person's shell);
        returns the exit code and every byte it wrote there."""
        import pty
        import select

        master, slave = pty.openpty()
        env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
        cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", *args, "--out", str(out)]
        p = subprocess.Popen(cmd, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.procs.append(p)
        self.folders.append(out)
        data, deadline = b"", time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # every writer closed: the launch and its agents are gone
                    break
                if not chunk:
                    break
                data += chunk
            else:
                raise AssertionError(f"launch timed out\n{data.decode(errors='replace')[-3000:]}")
        finally:
            os.close(master)
        return p.wait(timeout=30), data

    def cleanup(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
            for s in (p.stdout, p.stderr):
                if s is not None:
                    s.close()
        for f in self.folders:
            for pid in processes_mentioning(str(f)):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def summary_of(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def assert_png(path: Path) -> tuple[int, int]:
    """The size of the PNG at ``path`` (read by pygame: a real image, not just a file)."""
    import pygame

    assert path.is_file(), path
    img = pygame.image.load(str(path))
    return img.get_size()


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on loopback that nothing holds now (TCP by default; ``socket.SOCK_DGRAM``: UDP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
