"""The agent conformance suite: one agent process, started by a command, against a body on loopback.

Every check is a method of :class:`AgentSuite` that raises ``AssertionError`` (or
:class:`~swarmcover.testing.body.Timeout`) naming what the agent did wrong; :func:`check_agent`
runs them in order against one process and returns a :class:`ConformanceReport`. What each
check asks is written in ``docs/protocol.md`` ("Conformance"); the expected commands are computed
by :class:`swarmcover.policy.AgentPolicy` (the decisions every swarmcover agent runs) from exactly
what the suite sent.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmcover.domain import Box
from swarmcover.law import BlobLaw
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import Beacon, Bye, Command, Hello, Stats, StatsRequest, encode
from swarmcover.protocol import Path as PathMsg
from swarmcover.schedule import CoverageSchedule
from swarmcover.targets import GaussianMixture
from swarmcover.tracking import PathTracker

from .body import Body, Sent, Timeout
from .hostile import malformed_states

__all__ = ["CHECKS", "AgentSuite", "CheckResult", "ConformanceReport", "check_agent", "suite_config"]

AGENT_ID = 7
BOUNDS = [(0.0, 1.0), (0.0, 0.25)]  # the law's radius (0.283) exceeds the short side: images of images
EPS, CUTOFF, MASS, SPEED, GAIN, R_MIN = 0.05, 4.0, 0.05, 0.5, 1.0, 0.02
DT = 0.1
RTOL = 1e-6


def suite_config(endpoint: str) -> dict:
    """The agent config file the suite hands the agent (``docs/protocol.md``, "The agent config
    file"): a sim body at ``endpoint``, plaintext, one mollifier, fixed gain, separation."""
    return {
        "agent_id": AGENT_ID,
        "bounds": [list(b) for b in BOUNDS],
        "eps": EPS,
        "cutoff": CUTOFF,
        "mass": MASS,
        "speed_limit": SPEED,
        "gain": GAIN,
        "r_min": R_MIN,
        "rate_hz": 1000.0,
        "beacon_ttl": 300.0,
        "forget_after": 600.0,
        "state_timeout": 1.0,
        "body": {"kind": "sim", "endpoint": endpoint},
        "insecure": True,
    }


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    seconds: float


@dataclass(frozen=True)
class ConformanceReport:
    """What :func:`check_agent` found: one result per check, in order."""

    command: tuple[str, ...]
    results: tuple[CheckResult, ...]
    malformed: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results) and not self.malformed

    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def table(self) -> str:
        lines = [f"{'check':16} {'result':6} {'s':>6}  detail"]
        for r in self.results:
            lines.append(f"{r.name:16} {'pass' if r.passed else 'FAIL':6} {r.seconds:6.2f}  {r.detail}")
        for m in self.malformed:
            lines.append(f"{'wire':16} FAIL          the agent sent a message that does not decode: {m}")
        n = sum(r.passed for r in self.results)
        lines.append(
            f"{n}/{len(self.results)} checks passed" + ("" if not self.malformed else ", wire FAILED")
        )
        return "\n".join(lines)


def _refused(m, bad: frozenset, what: str) -> None:
    """``AssertionError`` if ``m`` is a command answering a state of ``bad`` (one to refuse)."""
    if isinstance(m, Command) and m.tick in bad:
        raise AssertionError(f"{what}: the agent answered tick {m.tick}, a state it had to refuse")


def _stats(body: Body, count: int, timeout: float, what: str) -> tuple[list[Stats], list]:
    """``count`` stats requests: their answers, and every other message that came before them."""
    for _ in range(count):
        body.send(encode(StatsRequest(**body.envelope())))
    got, before = [], []
    for k in range(count):
        s, skipped = body.expect(lambda m: isinstance(m, Stats), timeout, f"{what}: stats answer {k + 1}")
        got.append(s)
        before += skipped
    return got, before


def _rejected(body: Body, bad: frozenset, timeout: float, what: str) -> int:
    """The agent's ``rejected`` counter, from the answer to a ``stats_request`` (which it takes
    after everything sent before it); no command on the way may answer a tick of ``bad``."""
    got, before = _stats(body, 1, timeout, what)
    for m in before:
        _refused(m, bad, what)
    return got[0].counters.rejected


def _rows(store: dict, peers: dict[int, Sequence[float]]) -> np.ndarray:
    """Relayed rows for ``peers`` (id -> position), heard now, each also put in ``store``."""
    now = time.time()
    rows = []
    for pid, pos in peers.items():
        store[pid] = (np.asarray(pos, dtype=np.float64), MASS)
        rows.append([float(pid), now, *pos, MASS])
    return np.array(rows)


def _expected(policy: AgentPolicy, peers: dict, held, sent: Sent) -> np.ndarray:
    """The reference command for ``sent``: the decisions of every swarmcover agent."""
    x = np.asarray(sent.state.position)
    ids = np.array(sorted(peers), dtype=np.int64)
    pos = np.array([peers[i][0] for i in ids]).reshape(-1, x.size)
    mass = np.array([peers[i][1] for i in ids])
    stage = policy.clock.initial.stages[0]
    return policy.velocity(x, ids, pos, mass, held, stage, sent.state.world_time, sent.state.dt)


@dataclass
class AgentSuite:
    """The checks, in the order they run; state carried between them (ticks, peers, held field)."""

    body: Body
    proc: subprocess.Popen
    startup_timeout: float = 60.0
    timeout: float = 10.0
    tick: int = -1  # the first state is tick 0, as a simulator's first round sends it
    peers: dict[int, tuple[np.ndarray, float]] = field(default_factory=dict)
    held: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    policy: AgentPolicy = field(init=False)

    def __post_init__(self) -> None:
        self.body.gone = self._gone
        self.policy = AgentPolicy(agent_id=AGENT_ID, box=Box(BOUNDS), mass=MASS, speed_limit=SPEED,
                                  schedule=CoverageSchedule.fixed(EPS), cutoff=CUTOFF, gain=GAIN, r_min=R_MIN,
                                  kernel="numpy")  # fmt: skip

    # ------------------------------------------------------------------ helpers
    def _gone(self) -> str | None:
        status = self.proc.poll()
        return None if status is None else f"the agent process exited (status {status})"

    def _alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the agent process exited (status {self.proc.returncode})")

    def _send(self, x, *, patch: bool = True, peers: dict | None = None, reply: str = "command",
              dt: float | None = DT, **env) -> Sent:  # fmt: skip
        self.tick += 1
        rows = None if not peers else _rows(self.peers, peers)
        sent = self.body.state(
            x, self.tick, self.tick * DT, dt=dt, patch=patch, rows=rows, reply=reply, **env
        )
        if sent.field is not None:
            self.held = sent.field
        return sent

    def _command(self, tick: int, what: str) -> tuple[Command, list]:
        def match(m) -> bool:
            _refused(m, self._bad_ticks, what)
            return isinstance(m, Command) and m.tick == tick

        self._alive()
        return self.body.expect(match, self.timeout, f"{what}: the command for tick {tick}")

    _bad_ticks: frozenset = frozenset()

    def _refuses(self, what: str, tick: int, send: Callable[[], object]) -> None:
        """``send()`` sends the state of ``tick``, which the agent must refuse: its ``rejected``
        counter grows by one between two ``stats`` answers (a taken state is caught also where a
        later one supersedes it before its command is due), and no command answers that tick."""
        was = _rejected(self.body, self._bad_ticks, self.timeout, what)
        self._bad_ticks |= {tick}
        send()
        now = _rejected(self.body, self._bad_ticks, self.timeout, what)
        if now != was + 1:
            raise AssertionError(f"{what}: `rejected` went from {was} to {now}: the state was taken")

    def _law(self, sent: Sent, what: str) -> Command:
        cmd, _ = self._command(sent.state.tick, what)
        want, got = _expected(self.policy, self.peers, self.held, sent), np.asarray(cmd.velocity)
        scale = max(float(np.linalg.norm(want)), 1e-3 * SPEED)
        if got.shape != want.shape or not np.linalg.norm(got - want) <= RTOL * scale:
            raise AssertionError(f"{what}: velocity {got.tolist()} != {want.tolist()} (the reference)")
        return cmd

    # ------------------------------------------------------------------ the checks
    def check_hello(self) -> str:
        hello, _ = self.body.expect(lambda m: isinstance(m, Hello), self.startup_timeout, "hello")
        if hello.agent_id != AGENT_ID:
            raise AssertionError(f"hello for agent {hello.agent_id}, configured {AGENT_ID}")
        return f"epoch {hello.epoch}, rate {hello.rate_hz:g} Hz"

    def check_law(self) -> str:
        """Alone in the strip: the self term and its mirror images across both near walls (the
        state of tick 0, world time 0: what a real-time simulator's first round sends)."""
        sent = self._send([0.5, 0.125])
        cmd = self._law(sent, "law")
        beacon = cmd.beacon
        if beacon is None:  # the beacon as its own message, after or before the command
            msg, _ = self.body.expect(
                lambda m: isinstance(m, Beacon), self.timeout, "law: this tick's beacon"
            )
            beacon = msg
        near = np.allclose(beacon.position, sent.state.position, rtol=1e-12, atol=0.0)
        if not near or not math.isclose(beacon.mass, MASS, rel_tol=1e-12):
            raise AssertionError(
                f"law: beacon {beacon.position}, mass {beacon.mass}: not the state's position"
            )
        return f"v = {np.round(cmd.velocity, 6).tolist()}"

    def check_neighbours(self) -> str:
        """Relayed rows, one beyond the radius."""
        sent = self._send([0.3, 0.1], peers={1: [0.36, 0.11], 2: [0.2, 0.05], 3: [0.75, 0.1]})
        cmd = self._law(sent, "neighbours")
        return f"3 rows, v = {np.round(cmd.velocity, 6).tolist()}"

    def check_corner(self) -> str:
        """At a corner: images of itself and of neighbours across two walls (and beyond them)."""
        sent = self._send([0.03, 0.02], peers={4: [0.07, 0.2], 5: [0.1, 0.04]})
        cmd = self._law(sent, "corner")
        return f"v = {np.round(cmd.velocity, 6).tolist()}"

    def check_separation(self) -> str:
        """A neighbour inside the barrier and one exactly coincident (the id-hashed direction)."""
        sent = self._send([0.62, 0.13], peers={8: [0.63, 0.135], 9: [0.62, 0.13]})
        cmd = self._law(sent, "separation")
        return f"v = {np.round(cmd.velocity, 6).tolist()}"

    def check_held_patch(self) -> str:
        """A state without a patch, close enough for the held patch to cover it."""
        sent = self._send([0.625, 0.13], patch=False)
        self._law(sent, "held patch")
        return "computed with the last patch"

    def check_ordering(self) -> str:
        """A replayed sequence number and an older body epoch are refused; the next state is not."""
        x = [0.4, 0.12]
        self._refuses("ordering: a replayed seq", self.tick + 1, lambda: self._send(x, seq=self.body.seq - 3))
        self._refuses(
            "ordering: an older epoch", self.tick + 1, lambda: self._send(x, epoch=self.body.epoch - 1)
        )
        self._law(self._send([0.45, 0.12]), "ordering")
        return "replayed seq and older epoch refused"

    def check_malformed(self) -> str:
        """Malformed states (see :func:`malformed_states`) are refused, and the agent goes on."""
        bad = malformed_states(self.body, [0.5, 0.12])
        for name, make in bad.items():
            self.tick += 1

            def send(make=make, tick=self.tick) -> None:  # built after the stats request before it
                self.body.send(make(tick))

            self._refuses(f"malformed ({name})", self.tick, send)
        self._law(self._send([0.5, 0.12]), "malformed")
        self._alive()
        return f"{len(bad)} malformed states refused"

    def check_sensing_round(self) -> str:
        """Lockstep, from a restarted body (no patch held; a sensing round needs none): ``reply =
        "beacon"`` is answered by a beacon only; then the command, no beacon."""
        x = [0.55, 0.12]
        self.tick += 1
        self.body.epoch += 1
        self.body.state(x, self.tick, self.tick * DT, patch=False, reply="beacon")
        beacon, before = self.body.expect(
            lambda m: isinstance(m, Beacon), self.timeout, "sensing round: beacon"
        )
        if any(isinstance(m, Command) and m.tick == self.tick for m in before):
            raise AssertionError("sensing round: a command answered the state that asked for a beacon")
        if beacon.position != x:
            raise AssertionError(f"sensing round: beacon at {beacon.position}, the state said {x}")
        sent = self.body.state(x, self.tick, self.tick * DT, patch=True, dt=DT)
        self.held = sent.field
        cmd = self._law(sent, "sensing round")
        if cmd.beacon is not None:
            raise AssertionError("sensing round: the command carries a beacon (this tick's was sent)")
        return "beacon, then a command without one"

    def check_stats(self) -> str:
        """Two requests, two answers."""
        got, _ = _stats(self.body, 2, self.timeout, "stats")
        return f"rejected {got[-1].counters.rejected}, commands {got[-1].counters.commands}"

    def check_path(self) -> str:
        """A planned path is tracked; an empty path ends it; one that leaves the domain is refused."""
        x = np.array([0.5, 0.12])
        t0 = (self.tick + 1) * DT
        points = [x.tolist(), [0.7, 0.12]]
        self.body.send(encode(PathMsg(**self.body.envelope(), plan=1, times=[t0, t0 + 2.0], points=points)))
        self.policy.follow(PathTracker([t0, t0 + 2.0], points, plan=1))
        self._law(self._send(x, patch=True), "path (tracking)")
        self.body.send(encode(PathMsg(**self.body.envelope(), plan=2, times=[], points=[])))
        self.policy.follow(None)
        self._law(self._send(x, patch=True), "path (ended: the law again)")
        out = [[0.5, 0.12], [0.5, 0.9]]  # leaves the strip
        self.body.send(encode(PathMsg(**self.body.envelope(), plan=3, times=[t0, t0 + 5.0], points=out)))
        self._law(self._send(x, patch=True), "path (outside the domain: refused)")
        return "tracked, ended, refused outside"

    def check_failsafe(self) -> str:
        """No state for ``state_timeout``: zero commands, and hello again."""
        self.body.drain()
        self.body.expect(lambda m: isinstance(m, Command) and not any(m.velocity), self.timeout,
                         "fail-safe: a zero command")  # fmt: skip
        self.body.expect(lambda m: isinstance(m, Hello), self.timeout, "fail-safe: hello again")
        return "zero commands and hello"

    def check_bye(self) -> str:
        """SIGTERM: a bye, then the process exits."""
        self.proc.send_signal(signal.SIGTERM)
        bye, _ = self.body.expect(lambda m: isinstance(m, Bye), self.timeout, "bye")
        self.proc.wait(timeout=30)  # a hang guard, not a bound (benchmarks/stop.py measures)
        return f"reason {bye.reason!r}, exit status {self.proc.returncode}"


CHECKS = ("hello", "law", "neighbours", "corner", "separation", "held_patch", "ordering", "malformed",
          "sensing_round", "stats", "path", "failsafe", "bye")  # fmt: skip


def check_agent(command: Sequence[str], *, startup_timeout: float = 60.0, timeout: float = 10.0,
                workdir: str | Path | None = None) -> ConformanceReport:  # fmt: skip
    """Start ``command`` (``{config}`` replaced by the path of the agent config file the suite
    writes), run every check of :data:`CHECKS` against it in order, stop it, and report.

    A check that fails does not stop the run (later ones may fail because of it: read the first
    failure first); the process is killed at the end whatever happened."""
    if not any("{config}" in part for part in command):
        raise ValueError("the agent command must contain {config}, where the config file's path goes")
    law = BlobLaw(GaussianMixture([[0.3, 0.1], [0.7, 0.15]], [0.01, 0.02], bounds=BOUNDS), EPS, MASS)
    body = Body(law, AGENT_ID)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        cfg = Path(tmp) / "agent.json"
        cfg.write_text(json.dumps(suite_config(body.endpoint), indent=1), encoding="utf-8")
        out = open(Path(tmp) / "agent.log", "w+b")
        argv = [part.replace("{config}", str(cfg)) for part in command]
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        except OSError as exc:
            body.close()
            out.close()
            raise ValueError(f"cannot start the agent command {argv[0]!r}: {exc}") from None
        suite = AgentSuite(body, proc, startup_timeout=startup_timeout, timeout=timeout)
        results = []
        try:
            for name in CHECKS:
                t = time.monotonic()
                try:
                    detail, ok = getattr(suite, f"check_{name}")(), True
                except (AssertionError, Timeout, subprocess.TimeoutExpired) as exc:
                    detail, ok = str(exc) or type(exc).__name__, False
                results.append(CheckResult(name, ok, detail, time.monotonic() - t))
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            body.close()
            out.seek(0)
            tail = out.read()[-3000:].decode(errors="replace")
            out.close()
        if not all(r.passed for r in results) and tail:
            last = results[-1]
            results[-1] = CheckResult(
                last.name, last.passed, f"{last.detail}\nagent output:\n{tail}", last.seconds
            )
    return ConformanceReport(tuple(command), tuple(results), tuple(body.malformed))
