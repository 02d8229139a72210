"""``swarmcover`` command: ``launch`` (a scenario: simulator, agent processes, report), ``demo`` (a
fleet covering a target, integrated centrally), ``sample``, ``agent`` (one robot's controller
process), ``sim`` (the simulator alone) and ``replay`` (render a recording)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from swarmcover.launcher.hosts import has_display

from .demo import demo, sample

__all__ = ["main"]

log = logging.getLogger("swarmcover")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmcover", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="a fleet spreading from a depot over a three-town demand map")
    d.add_argument("--agents", type=int, default=60)
    d.add_argument(
        "--duration", type=float, default=None, help="simulated time (default: the annealing schedule)"
    )
    d.add_argument("--speed-limit", type=float, default=2.0)
    d.add_argument("--headless", action="store_true", help="no window even if a display exists")
    d.add_argument("--frames", action="store_true", help="also save PNG frames")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=demo)
    s = sub.add_parser("sample", help="deterministic points representing the demo map")
    s.add_argument("n", type=int)
    s.add_argument("--out", default="points.npy")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=sample)
    a = sub.add_parser("agent", help="run one agent process (one robot's controller)")
    src = a.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="agent config file (.toml or .json)")
    src.add_argument("--json", help="agent config as a JSON string")
    a.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    a.add_argument("--parent-pid", type=int, help="exit (SIGTERM) when this process, the parent, dies")
    a.add_argument("--no-fast-exit", dest="fast_exit", action="store_false",
                   help="run the interpreter's full teardown at exit (slower; for debugging)")  # fmt: skip
    a.set_defaults(func=_agent)
    m = sub.add_parser("sim", help="run the simulator (the world the agents connect to)")
    src = m.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="simulator config file (.toml or .json)")
    src.add_argument("--json", help="simulator config as a JSON string")
    m.add_argument("--duration", type=float, help="world seconds (overrides the config)")
    m.add_argument("--record", help="record the run into this folder (overrides the config)")
    m.add_argument("--headless", action="store_true", help="no window even if a display exists")
    m.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    m.set_defaults(func=_sim)
    lp = sub.add_parser(
        "launch",
        help="run a scenario: the simulator and one agent process per robot, then a report",
        description="Run a scenario file (see launch/ and docs/scenarios.md): the simulator, one agent OS "
        "process per robot, the failure schedule, and a run folder with summary.json, metrics.png, "
        "final.png and the recording.",
    )
    lp.add_argument("scenario", help="the scenario file (TOML), e.g. launch/quickstart.toml")
    lp.add_argument("--headless", action="store_true", help="no window even if a display exists")
    lp.add_argument("--duration", type=float, help="world seconds (overrides the scenario)")
    lp.add_argument("--out", help="the run folder (default: the scenario's `out`, else runs/NAME/TIME)")
    lp.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. --set fleet.size=20 --set radio.loss=0.1",
    )
    lp.add_argument(
        "--only",
        choices=["all", "sim", "agents"],
        default="all",
        help="run only the simulator (agents connect from other hosts) or only some agents",
    )
    lp.add_argument("--agents", help="with --only agents: which ids, e.g. 0-19,25 (default: all)")
    lp.add_argument("--connect", help="with --only agents: the simulator's endpoint, e.g. tcp://host:5555")
    lp.add_argument("--bind", help="the simulator's endpoint to bind, e.g. tcp://0.0.0.0:5555")
    lp.add_argument("--cluster", metavar="ray[://ADDRESS]",
                    help="place the agents on a Ray cluster (the `ray` extra): ray (the one this machine "
                    "is in) or ray://HOST:PORT (its head); the simulator runs here")  # fmt: skip
    lp.add_argument(
        "--insecure", action="store_true", help="plaintext links, no authentication (trusted networks)"
    )
    lp.add_argument(
        "--keys", help="the fleet's CURVE keys folder (`swarmcover keys new`); default: new keys per run"
    )
    lp.add_argument("--progress", type=float, default=5.0, help="wall seconds between progress lines")
    lp.add_argument("--no-fast-exit", dest="fast_exit", action="store_false", help=argparse.SUPPRESS)
    lp.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # a sweep's: stop when it goes
    lp.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    lp.set_defaults(func=_launch)
    sw = sub.add_parser(
        "sweep",
        help="run a scenario for every combination of a grid of values and seeds; sweep.json and sweep.png",
        description="Run every combination of --grid values for every seed, one `swarmcover launch` each, "
        "into its own folder; sweep.json has one row a run (values, final and minimum energy distance, "
        "Lloyd cost, recovery time after each failure, commands on time, or the error), sweep.png the "
        "final energy distance and the recovery time against each swept value. Run the same command "
        "again to resume a stopped sweep.",
    )
    sw.add_argument("scenario", help="the scenario file (TOML), e.g. launch/failure_recovery.toml")
    sw.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                    help="a key and its values (TOML), e.g. failures.0.fraction=0.1,0.3")  # fmt: skip
    sw.add_argument("--seeds", default="0", help="seeds, e.g. 0-49 or 1,3,5 (default 0)")
    sw.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1: timings undisturbed)")
    sw.add_argument("--out", help="the sweep's folder (default: runs/NAME-sweep); the same one resumes")
    sw.add_argument("--duration", type=float, help="world seconds of every run (overrides the scenario)")
    sw.add_argument("--cluster", metavar="ray[://ADDRESS]", help="place every run's agents on Ray")
    sw.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scenario key in every run")  # fmt: skip
    sw.set_defaults(func=_sweep)
    k = sub.add_parser("keys", help="CurveZMQ keys for a fleet (the simulator's and one pair per agent)")
    ksub = k.add_subparsers(dest="keys_command", required=True)
    kn = ksub.add_parser(
        "new", help="create a keys folder: server.key(_secret), agents/agent_NNNN.key(_secret)"
    )
    kn.add_argument("folder")
    kn.add_argument("--fleet", type=int, help="agents 0..N-1")
    kn.add_argument("--agents", help="these agent ids, e.g. 0-35,40")
    kn.set_defaults(func=_keys_new)
    r = sub.add_parser(
        "replay", help="render a recorded run (a live window, PNG frames when headless, or an animated GIF)"
    )
    r.add_argument("run", help="the run folder")
    r.add_argument("--out", help="folder for PNG frames (default: RUN/replay)")
    r.add_argument("--every", type=float, default=1.0, help="world seconds between frames")
    r.add_argument("--headless", action="store_true")
    r.add_argument("--gif", metavar="FILE.gif", help="write one animated GIF instead of frames")
    r.add_argument("--width", type=int, default=480, help="GIF width in pixels (default 480)")
    r.add_argument("--max-frames", type=int, default=150, help="GIF frames at most (default 150)")
    r.add_argument("--max-mb", type=float, default=10.0, help="GIF size at most, in MB (default 10)")
    r.add_argument("--seconds", type=float, default=12.0, help="GIF playing time (default 12 s)")
    r.set_defaults(func=_replay)
    c = sub.add_parser("conformance", help="run the protocol's conformance suite against an implementation")
    csub = c.add_subparsers(dest="conformance_of", required=True)
    ca = csub.add_parser("agent", help="an agent process started by COMMAND ({config}: its config file)")
    ca.add_argument("agent_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    ca.add_argument("--timeout", type=float, default=10.0, help="seconds each awaited message may take")
    ca.set_defaults(func=_conformance_agent)
    return p


def _agent(args: argparse.Namespace) -> int:
    if args.parent_pid is not None:  # first: a launcher killed while this agent starts takes it too
        from .lifeline import die_with_parent

        die_with_parent(args.parent_pid)
    # imported here: the agent needs pyzmq, the other commands do not
    from swarmcover.agents.agent import Agent
    from swarmcover.agents.bodies import BodyError
    from swarmcover.agentspec import load_config

    cfg = load_config(args.config, None) if args.config else load_config(None, args.json)
    logging.getLogger().setLevel(args.log_level)
    try:
        agent = Agent(cfg)
        agent.install_signal_handlers()
        counters = agent.run()
    except BodyError as exc:  # a missing extra, a vehicle that never answered: said, not a traceback
        print(f"swarmcover agent {cfg.agent_id}: error: {exc}", file=sys.stderr)
        return 2
    log.info("agent %d exits: %s", cfg.agent_id, counters.model_dump())
    if args.fast_exit:
        # every socket is closed and the bye is out: skip the interpreter's teardown (about 0.4 s
        # of module finalisation), so a fleet stops in milliseconds rather than seconds
        _exit_now(0)
    return 0


def _exit_now(code: int) -> None:
    """Flush what is buffered and end the process without the interpreter's teardown."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _sim(args: argparse.Namespace) -> int:
    import signal

    from swarmcover.simulator.config import load_sim_config
    from swarmcover.simulator.server import Simulator

    cfg = load_sim_config(args.config, None) if args.config else load_sim_config(None, args.json)
    over = {}
    if args.duration is not None:
        over["duration"] = args.duration
    if args.record is not None:
        over["record"] = args.record
    if args.headless:
        over["render"] = cfg.render.model_copy(update={"headless": True})
    if over:
        cfg = type(cfg).model_validate({**cfg.model_dump(), **over})
    logging.getLogger().setLevel(args.log_level)
    sim = Simulator(cfg)
    signal.signal(signal.SIGTERM, sim.stop)
    signal.signal(signal.SIGINT, sim.stop)
    view = None
    if cfg.render.enabled:
        from swarmcover.simulator.live import LiveView

        headless = cfg.render.headless or not has_display()
        view = LiveView(sim, headless=headless)
        view.attach()
    try:
        sim.run()
    finally:
        if view is not None:
            view.close()
    m = sim.metrics
    last = m["energy_distance"][-1] if m["energy_distance"] else float("nan")
    print(f"t = {sim.world.t:.1f}, alive {m['alive'][-1] if m['alive'] else 0}/{len(sim.world.ids)}, "
          f"energy distance {last:.4f}, radio {sim.radio.counters.as_dict()}")  # fmt: skip
    return 0


def _launch(args: argparse.Namespace) -> int:
    from swarmcover.launcher.scenario import load_scenario

    logging.getLogger().setLevel(args.log_level)
    over = list(args.overrides)
    if args.duration is not None:
        over.append(f"duration={args.duration!r}")
    scn = load_scenario(args.scenario, over)
    cluster, bind = None, args.bind
    if args.cluster is not None:
        from swarmcover.launcher.cluster import connect, parse_cluster

        cluster = connect(parse_cluster(args.cluster))
        if bind is None:  # where the agents on every node reach the simulator
            bind = f"tcp://{cluster.node_ip}:*"
    try:
        code = _run_launch(args, scn, bind, cluster)
    finally:
        if cluster is not None:
            from swarmcover.launcher.cluster import disconnect

            disconnect()
    if args.fast_exit:
        # the run folder is written and closed, every child reaped: tearing down numba, pygame,
        # matplotlib and ZeroMQ modules would only add seconds to a Ctrl-C
        _exit_now(code)
    return code


def _run_launch(args: argparse.Namespace, scn, bind: str | None, cluster) -> int:
    from swarmcover.launcher.hosts import default_run_dir, parse_ids
    from swarmcover.launcher.resolve import resolve
    from swarmcover.launcher.run import Launch

    rs = resolve(scn, args.scenario, endpoint=bind)
    if args.only != "agents" and args.connect is not None:
        raise ValueError("--connect is for --only agents (the simulator runs here otherwise)")
    if args.only != "agents" and args.agents is not None:
        raise ValueError("--agents is for --only agents")
    ids = parse_ids(args.agents, rs.roster) if args.agents is not None else None
    out = Path(args.out) if args.out else Path(scn.out) if scn.out else default_run_dir(scn.name)
    launch = Launch(rs, out, headless=args.headless, only=args.only, agent_ids=ids, connect=args.connect,
                    overrides=args.overrides, progress_every=args.progress, insecure=args.insecure,
                    keys=args.keys, cluster=cluster)  # fmt: skip
    if args.parent_pid is not None:  # started by a sweep: a sweep that dies stops its runs
        from .lifeline import die_with_parent

        die_with_parent(args.parent_pid)
    return 130 if launch.run().interrupted else 0


def _sweep(args: argparse.Namespace) -> int:
    from swarmcover.launcher.scenario import load_scenario
    from swarmcover.launcher.sweep import Sweep, parse_grid, parse_seeds

    grid = parse_grid(args.grid)
    if not grid:
        raise ValueError("give at least one --grid KEY=V1,V2")
    scn = load_scenario(args.scenario, list(args.overrides))  # a bad file or --set stops it before any run
    name = scn.name or Path(args.scenario).stem
    out = Path(args.out) if args.out else Path("runs") / f"{name}-sweep"
    sweep = Sweep(args.scenario, grid, parse_seeds(args.seeds), out, jobs=args.jobs, overrides=args.overrides,
                  duration=args.duration, cluster=args.cluster)  # fmt: skip
    result = sweep.run()
    return 130 if result["stopped"] else 0


def _keys_new(args: argparse.Namespace) -> int:
    from swarmcover.launcher.hosts import parse_ids
    from swarmcover.launcher.keys import make_keys

    if (args.fleet is None) == (args.agents is None):
        raise ValueError("give --fleet N or --agents IDS")
    if args.fleet is not None and not 1 <= args.fleet <= 100_000:
        raise ValueError(f"--fleet must be 1..100000, got {args.fleet}")
    ids = list(range(args.fleet)) if args.fleet is not None else parse_ids(args.agents, None)
    keys = make_keys(args.folder, ids)
    print(f"{len(ids)} agent key pairs and the simulator's in {keys.root}: give {keys.server_public.name} to "
          f"every host, each agents/agent_NNNN.key_secret only to the host that runs that agent, and keep "
          f"{keys.server_secret.name} on the simulator's host")  # fmt: skip
    return 0


def _replay(args: argparse.Namespace) -> int:
    from swarmcover.simulator.replay import replay, replay_gif

    if args.gif:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        gif = replay_gif(args.run, args.gif, width=args.width, max_frames=args.max_frames,
                         max_mb=args.max_mb, seconds=args.seconds)  # fmt: skip
        print(f"gif: {gif} ({gif.stat().st_size / 1e6:.2f} MB)")
        return 0
    headless = args.headless or not has_display()
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    out = replay(args.run, args.out, every=args.every, headless=headless)
    print(f"frames: {out}")
    return 0


def _conformance_agent(args: argparse.Namespace) -> int:
    from swarmcover.testing import check_agent

    command = args.agent_command[1:] if args.agent_command[:1] == ["--"] else args.agent_command
    if not command:
        raise ValueError("give the agent's command after --, with {config} where its config file goes")
    report = check_agent(command, timeout=args.timeout)
    print(report.table())
    return 0 if report.passed else 1


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # pygame greets on import; a command's output is the run's, not pygame's
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as exc:
        print(f"swarmcover: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
