"""What one agent's control tick costs in CPU, run back to back and at a control rate.

The fleet benchmark (``benchmarks/fleet.py``) finds agents using several times the CPU per tick
that the same work costs in a tight loop. This isolates why: one :class:`swarmcover.agents.agent.Agent` in
this process takes real simulator states (encoded exactly as the simulator encodes them: about a
hundred relayed neighbours with their schedule phases, a field patch when the held one stops
covering; the agent on a schedule, as in the fleet, unless ``--fixed-eps``) and answers each with
a command sent over a real ZeroMQ socket to a ROUTER in this process, every ``period`` seconds,
sleeping in between as an agent process does. The CPU time of this thread is summed over the
ticks only (``time.thread_time``), so the sleeps do not count. ``period = 0`` is a tight loop.

For comparison it times the same way the smallest numpy call (a multiply of a (100, 2) array):
the difference between its two columns is what any code pays when it wakes with cold caches.

    python benchmarks/tick_cost.py [--periods 0 0.001 0.01 0.05 0.1] [--seconds 6]
        [--json benchmarks/results/tick_cost.json] [--sections]
        [--alternate command [farthest2 nearest2 table_update rows_ok phase_top velocity wire]]
        [--bare] [--fixed-eps]

It also times ``json.loads`` of a state's header the same way (any code, not only numpy's, pays
the cold start), and with ``--sections`` the parts of the agent's tick (decoding the state, taking
the relayed beacons, the field, the neighbour table, the law's chain, encoding and sending the
command), each the median over the ticks.

``--alternate NAME ...`` asks what those pieces of the C hot path (``swarmcover/_hotpath.c``) buy:
at each period, blocks of ticks alternate between the agent as installed and the same agent with
the named pieces switched to their numpy twins, so both see the same host (this shared VM's load
changes within minutes); the table gives each one's median and their ratio. ``wire`` switches the
state's decoding and the command's encoding from their msgspec twins (:mod:`swarmcover.wiretwins`)
to pydantic's models; the "numpy twins" column is then the pydantic one.

``--bare`` also times, the same way, the least a Python agent with our C law could do per state:
``json.loads`` of the header, the relayed rows as an array (checked in C), the law in C with
every row as a neighbour, ``json.dumps`` of a command and its send. No validation, no neighbour
table, schedule, separation or speed limit: a bound on what a leaner Python tick could save.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fleet import cpu_model  # noqa: E402  (benchmarks/fleet.py, beside this script)

from swarmcover.agents.agent import Agent  # noqa: E402
from swarmcover.agents.intake import take  # noqa: E402
from swarmcover.agents.loop import Arrival  # noqa: E402
from swarmcover.agentspec import AgentConfig  # noqa: E402
from swarmcover.law import BlobLaw  # noqa: E402
from swarmcover.local import resolve_kernel  # noqa: E402
from swarmcover.protocol import Neighbors, Patch, State, encode  # noqa: E402
from swarmcover.targets import Uniform  # noqa: E402

N_ROBOTS = 100  # one per unit area, as in the fleet benchmark: about 100 neighbours in range


def _states(
    law: BlobLaw, side: float, ticks: int, rng: np.random.Generator, phase: bool = True
) -> list[list[bytes]]:
    """States for agent 0 of a covered fleet drifting slowly, with the patch only when the held
    one stops covering the position (as the simulator does); with ``phase`` the relayed rows carry
    the senders' schedule phase (epoch 0, begun at world time 0), as a fleet on a schedule's do."""
    # a covered fleet: robots near the nodes of a unit lattice; agent 0 within the radius of a
    # wall, so that mirror images count too
    g = np.arange(0.5, side)
    lattice = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2) + 0.1 * rng.standard_normal((N_ROBOTS, 2))
    x = np.array([2.5, 4.5])
    others = np.clip(lattice[np.argsort(np.linalg.norm(lattice - x, axis=1))[1:]], 0.0, side)
    ids = np.arange(1, N_ROBOTS)
    out, held = [], None
    for tick in range(1, ticks + 1):
        x = x + 1e-3 * rng.standard_normal(2)
        others = np.clip(others + 1e-3 * rng.standard_normal(others.shape), 0.0, side)
        near = np.linalg.norm(others - x, axis=1) < law.radius
        k = int(near.sum())
        rows = np.c_[ids[near], np.full(k, time.time()), others[near], np.full(k, 1 / N_ROBOTS)]
        if phase:
            rows = np.c_[rows, np.zeros(k), np.full(k, 0.1 * tick)]
        patch = coef = None
        if held is None or not _covers(law, held, x):
            origin, coef = law.field.patch(x, 0.75 * law.radius)
            held = (origin, coef.shape[:-1])
            patch = Patch(eps=law.eps, origin=origin.tolist(), spacing=law.field.spacing.tolist(),
                          shape=list(coef.shape[:-1]))  # fmt: skip
        nb = Neighbors(count=len(rows), buffer=0 if patch is None else 1, phase=phase)
        st = State(agent_id=0, epoch=1, seq=tick, t=time.time(), position=x.tolist(), world_time=0.1 * tick,
                   tick=tick, patch=patch, neighbors=nb)  # fmt: skip
        out.append(encode(st, coef, rows))
    return out


def _covers(law: BlobLaw, held, x) -> bool:
    from swarmcover.local import patch_covers

    return patch_covers(held[0], law.field.spacing, held[1], x, 0.5 * law.radius)


def _timed(work, period: float, seconds: float, between=None, limit: int = 10**9) -> tuple[float, int]:
    """Median CPU seconds of ``work(i)`` over calls every ``period`` for ``seconds`` (at most
    ``limit`` calls)."""
    cpu = []
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < seconds and i < limit:
        c0 = time.thread_time()
        work(i)
        cpu.append(time.thread_time() - c0)
        i += 1
        if between is not None:
            between()
        wait = start + i * period - time.monotonic()
        if wait > 0:
            time.sleep(wait)
    return statistics.median(cpu), i


_SUMS: dict[str, dict[str, float]] = {"now": {}}

# the C pieces --alternate can switch to their numpy twins: (module, attribute) holding each
_C_PIECES = {
    "farthest2": ("swarmcover.policy", "_farthest2"),
    "nearest2": ("swarmcover.control", "_nearest2"),
    "table_update": ("swarmcover.agents.neighbors", "_c_update"),
    "rows_ok": ("swarmcover.protocol", "_rows_ok"),
    "command": ("swarmcover.policy", "_c_command"),
    "phase_top": ("swarmcover.schedule", "_phase_top"),
}


class _PydanticWire:
    """The per-tick messages as the models of :mod:`swarmcover.messages` (what ``--alternate wire``
    puts in place of their msgspec twins, :mod:`swarmcover.wiretwins`)."""

    from swarmcover.protocol import Beacon, BeaconPart, Command, PhaseInfo, ScheduleReport


def _switch(agent: Agent, names: list[str], to_numpy: bool, held: dict) -> None:
    """Switch the C pieces ``names`` of ``agent`` to their numpy twins (``to_numpy``) or back;
    ``wire``: the per-tick messages to pydantic's models (``to_numpy``) or back to msgspec."""
    import importlib

    for name in names:
        if name == "wire":
            from swarmcover.agents import agent as agent_module
            from swarmcover.agents import intake, outbox

            held.setdefault(name, (intake.decode_twin, outbox.twins))
            intake.decode_twin = (lambda frames, twin: None) if to_numpy else held[name][0]
            outbox.twins = agent_module.twins = _PydanticWire if to_numpy else held[name][1]
            continue
        if name == "velocity":  # the law: the agent's kernel
            held.setdefault(name, agent.policy.kernel)
            agent.policy.kernel = "numpy" if to_numpy else held[name]
            continue
        module = importlib.import_module(_C_PIECES[name][0])
        held.setdefault(name, getattr(module, _C_PIECES[name][1]))
        setattr(module, _C_PIECES[name][1], None if to_numpy else held[name])


def _alternate(agent: Agent, tick, names: list[str], period: float, seconds: float, drain, limit: int):
    """Blocks of ticks, alternately as installed and with ``names`` on their numpy twins (ABBA),
    every ``period`` for ``seconds`` (at most ``limit`` ticks in all): the median CPU per tick of
    each and the ratio."""
    block, cpu, held = 40, {"c": [], "numpy": []}, {}
    start, i, rounds = time.monotonic(), 0, 0
    try:
        while time.monotonic() - start < seconds and i + 2 * block <= limit:
            # ABBA: a block that runs second in a round costs a few per cent more (measured with
            # both blocks alike), so each goes first in every other round
            rounds += 1
            for which in ("c", "numpy") if rounds % 2 else ("numpy", "c"):
                _switch(agent, names, which == "numpy", held)
                for _ in range(block):
                    c0 = time.thread_time()
                    tick(i)
                    cpu[which].append(time.thread_time() - c0)
                    i += 1
                    drain()
                    time.sleep(period)
    finally:
        _switch(agent, names, False, held)
    c, n = statistics.median(cpu["c"]), statistics.median(cpu["numpy"])
    return {"period_s": period, "pieces": names, "ticks_each": len(cpu["c"]), "c_us": c * 1e6,
            "numpy_twins_us": n * 1e6, "ratio": c / n}  # fmt: skip


def _instrument(agent: Agent, acc: dict[str, float]) -> None:
    """Sum the CPU time of the parts of ``agent``'s tick into ``acc`` (by name), for ``--sections``."""
    from swarmcover.agents import intake

    _SUMS["now"] = acc  # the module's decode, wrapped once, sums into the latest agent's

    def wrap(obj, name: str, label: str) -> None:
        f = getattr(obj, name)

        def timed(*a, **k):
            c0 = time.thread_time()
            try:
                return f(*a, **k)
            finally:
                into = _SUMS["now"]
                into[label] = into.get(label, 0.0) + time.thread_time() - c0

        setattr(obj, name, timed)

    if not getattr(intake.decode, "_timed", False):  # the module's functions: wrapped once
        wrap(intake, "decode", "decode the state")
        wrap(intake, "decode_twin", "decode the state")
        intake.decode._timed = True
    wrap(agent.hearing, "relayed", "take relayed beacons")
    wrap(agent.fields, "for_state", "field for the state")
    wrap(agent.hearing, "live", "read the neighbour table")
    wrap(agent.policy, "velocity", "the law's chain")
    wrap(agent.out, "command", "encode and send the command")


def _bare(agent: Agent, frames: list[list[bytes]], sock: zmq.Socket):
    """The least a Python agent with our C law could do with state ``frames[i]`` (``--bare``)."""
    from swarmcover.kernels import hotpath

    velocity, rows_ok = hotpath("velocity"), hotpath("rows_ok")
    (coef, origin, spacing), stage = agent.field
    lo, hi = agent.policy.box.lo, agent.policy.box.hi
    mass, cutoff, seq = agent.cfg.mass, agent.cfg.cutoff, [0]

    def tick(i: int) -> None:
        fr = frames[i]
        head = json.loads(fr[0])
        nb = head["neighbors"]
        rows = np.frombuffer(fr[-1], dtype="<f8").reshape(nb["count"], 7 if nb.get("phase") else 5)
        rows_ok(rows, 2)
        x = np.array(head["position"])
        pos, masses = np.ascontiguousarray(rows[:, 2:4]), np.ascontiguousarray(rows[:, 4])
        v = velocity(x, pos, mass, masses, stage.eps, cutoff, coef, origin, spacing, lo, hi)
        seq[0] += 1
        cmd = {"v": 1, "kind": "command", "agent_id": 0, "epoch": 1, "seq": seq[0], "t": time.time(),
               "velocity": list(v), "tick": head["tick"], "eps": stage.eps}  # fmt: skip
        sock.send(json.dumps(cmd).encode())

    return tick


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--periods", type=float, nargs="*", default=[0.0, 0.001, 0.01, 0.05, 0.1])
    ap.add_argument("--seconds", type=float, default=6.0, help="per period")
    ap.add_argument("--json", default=None, help="default benchmarks/results/tick_cost[_alternate].json")
    ap.add_argument("--sections", action="store_true", help="also time the parts of the tick")
    ap.add_argument("--fixed-eps", action="store_true", help="one eps for ever, no phases (the old setup)")
    ap.add_argument("--bare", action="store_true", help="also time a bare Python tick")
    what = "compare the agent with these C pieces and with their numpy twins, alternating"
    choices = [*_C_PIECES, "velocity", "wire"]
    ap.add_argument("--alternate", nargs="+", choices=choices, default=None, help=what)
    args = ap.parse_args()
    if args.json is None:
        args.json = f"benchmarks/results/tick_cost{'_alternate' if args.alternate else ''}.json"
    if (args.alternate or args.bare) and resolve_kernel("auto") != "c":
        ap.error("--alternate and --bare need the C hot path built (pip install with a C compiler)")
    side = math.sqrt(N_ROBOTS)
    law = BlobLaw(Uniform([(0.0, side), (0.0, side)]), 1.0, 1 / N_ROBOTS)  # eps = the fleet spacing
    rng = np.random.default_rng(0)
    ticks = min(20_000, int(args.seconds / max(min(args.periods), 1e-4) * 1.1)) + 100
    frames = _states(law, side, ticks, rng, phase=not args.fixed_eps)
    ctx = zmq.Context()
    body = ctx.socket(zmq.ROUTER)
    port = body.bind_to_random_port("tcp://127.0.0.1")
    # as in the fleet: a schedule (here of one stage, the patches' eps), whose phase every
    # command reports and every beacon carries; --fixed-eps: one eps for ever, no phases (the
    # setup of the figures measured before 2026-12-07)
    when = {"eps": 1.0} if args.fixed_eps else {"schedule": {"stages": [{"eps": 1.0}], "restart_losses": 3}}
    cfg = AgentConfig(
        agent_id=0,
        bounds=[(0.0, side), (0.0, side)],
        **when,
        mass=1 / N_ROBOTS,
        speed_limit=0.5,
        r_min=0.2,
        insecure=True,
        body={"kind": "sim", "endpoint": f"tcp://127.0.0.1:{port}"},
    )
    rows = []
    a = np.random.default_rng(1).random((100, 2))
    b = np.array([0.5, 2.0])
    header = frames[0][0]
    columns = f"{'period s':>9} {'agent tick us':>14} {'ticks':>7} {'one numpy op us':>16}"
    columns += f" {'json.loads us':>14}" + (f" {'bare tick us':>14}" if args.bare else "")
    if not args.alternate:
        print(columns)
    for period in args.periods:
        agent = Agent(cfg, ctx)
        at = [0]
        acc: dict[str, float] = {}
        parts: list[dict[str, float]] = []
        if args.sections:
            _instrument(agent, acc)

        def tick(i: int, agent=agent, at=at, acc=acc, parts=parts) -> None:
            now = 0.1 * (at[0] + i)
            acc.clear()
            take(agent, Arrival(frames[at[0] + i], True), now)
            agent._control(now)
            parts.append(dict(acc))

        def drain() -> None:  # the stand-in body reads the commands (not timed)
            while body.poll(0):
                body.recv_multipart()

        for i in range(50):  # warm up: imports, first patch, the neighbour table
            tick(i)
        at[0] = 50
        drain()
        parts.clear()
        if args.alternate:
            r = _alternate(agent, tick, args.alternate, period, args.seconds, drain, len(frames) - 50)
            rows.append(r)
            agent.body.close()
            twins = f"numpy twins of {' '.join(args.alternate)} {r['numpy_twins_us']:7.0f} us"
            ratio = f"{r['ratio']:.2f} x ({r['ticks_each']} each)"
            print(f"{period:9.3f} C {r['c_us']:7.0f} us, {twins}: {ratio}", flush=True)
            continue
        med, count = _timed(tick, period, args.seconds, drain, limit=len(frames) - 50)
        agent.body.close()
        op, _ = _timed(lambda i: a * b, period, min(args.seconds, 3.0))
        js, _ = _timed(lambda i: json.loads(header), period, min(args.seconds, 3.0))
        rows.append({"period_s": period, "agent_tick_us": med * 1e6, "ticks": count, "numpy_op_us": op * 1e6,
                     "json_loads_us": js * 1e6, "commands": agent.counts["commands"]})  # fmt: skip
        if args.bare:
            sock = ctx.socket(zmq.DEALER)
            sock.connect(f"tcp://127.0.0.1:{port}")
            bare, _ = _timed(_bare(agent, frames, sock), period, args.seconds, drain, limit=len(frames))
            sock.close(linger=0)
            rows[-1]["bare_tick_us"] = bare * 1e6
        if parts:  # the median of each part over the ticks that ran it
            names = dict.fromkeys(k for p in parts for k in p)
            rows[-1]["sections_us"] = {
                k: statistics.median(p[k] for p in parts if k in p) * 1e6 for k in names
            }
        r = rows[-1]
        tail = f"{r['numpy_op_us']:16.1f} {js * 1e6:14.1f}"
        if args.bare:
            tail += f" {r['bare_tick_us']:14.0f}"
        print(f"{period:9.3f} {r['agent_tick_us']:14.0f} {count:7d} {tail}", flush=True)
    for r in rows:
        for name, us in r.get("sections_us", {}).items():
            print(f"period {r['period_s']:g} s: {name:>30} {us:7.0f} us (median)")
    body.close(linger=0)
    ctx.term()
    base = rows[0].get("agent_tick_us") if rows and rows[0]["period_s"] == 0 else None
    if base:
        for r in rows[1:]:
            print(f"period {r['period_s']:g} s: {r['agent_tick_us'] / base:.1f} x the tight loop")
    info = {
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "neighbours_in_range": int(np.median([len(_rows(f)) for f in frames[:50]])),
        "kernel": resolve_kernel(cfg.kernel),  # the agents' default, "auto": "c" where built
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"info": info, "rows": rows}, indent=1))
        print(f"wrote {args.json}")
    return 0


def _rows(frames: list[bytes]) -> np.ndarray:
    from swarmcover.protocol import decode

    nb = decode(frames).neighbors
    return nb if nb is not None else np.empty((0, 5))


if __name__ == "__main__":
    raise SystemExit(main())
