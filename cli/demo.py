"""``swarmcover demo`` and ``swarmcover sample``: the library in one process (no agent processes),
a fleet spreading from a depot over a three-town demand map, and points that represent it."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import swarmcover as sc
from swarmcover.launcher.hosts import has_display

__all__ = ["demo", "sample"]


def demo_target() -> sc.Target:
    """Three towns of different sizes and a lake (no-go) on a 10 x 6 km region."""
    return sc.GaussianMixture(
        means=[[2.5, 4.0], [7.0, 4.5], [5.5, 1.5]],
        covs=[0.6, 0.9, 0.4],
        weights=[0.3, 0.5, 0.2],
        bounds=[(0, 10), (0, 6)],
        zones=[sc.Disk((4.5, 3.5), 0.8)],
    )


def demo(args: argparse.Namespace) -> int:
    target = demo_target()
    n = args.agents
    if n < 2:
        raise ValueError(f"--agents must be >= 2, got {n}")
    from swarmcover.coverage import CoverageSchedule
    from swarmcover.metrics import energy_distance, lloyd_cost

    schedule = CoverageSchedule.annealed(target, n, args.speed_limit)
    spacing = sc.default_eps(target, n)
    sep = sc.Separation(0.2 * spacing, args.speed_limit)
    laws: dict[int, sc.BlobLaw] = {}

    def law_for(k: int) -> sc.BlobLaw:
        if k not in laws:
            st = schedule.stages[k]
            laws[k] = sc.BlobLaw(target, st.eps, 1.0 / n, target_smoothing=st.smoothing)
        return laws[k]

    duration = schedule.duration if args.duration is None else args.duration
    rng = np.random.default_rng(args.seed)
    x = np.clip(rng.normal([0.6, 0.6], 0.3, (n, 2)), 0, [10, 6])  # a depot in the south-west corner
    headless = args.headless or not has_display()
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    import pygame

    from swarmcover.simulator.live import renderer_for

    pygame.display.init()
    pygame.font.init()
    view = renderer_for(target, target.box.bounds, 800, None, schedule.stages[-1].eps, None, 0)
    screen = pygame.display.set_mode(view.size) if not headless else pygame.Surface(view.size)
    status = np.ones(n, dtype=np.uint8)  # every robot of the demo is live
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = 40
    dt = duration / frames
    print(f"{'t':>6} {'energy_dist':>12} {'lloyd_cost':>11} {'blob_energy':>12}", flush=True)
    t = 0.0
    for k in range(frames + 1):
        if k:
            for stage, length in schedule.segments(t, t + dt):
                eps = schedule.stages[stage].eps
                x = sc.flow(
                    law_for(stage), x, length, speed_limit=args.speed_limit,
                    gain=sc.gain_for(eps, args.speed_limit), separation=sep,
                ).x  # fmt: skip
            t += dt
        law = law_for(schedule.stage_index(t))
        ed, lc, be = energy_distance(x, target), lloyd_cost(x, target, 128), law.energy(x)
        if k % 5 == 0 or k == frames:
            print(f"{t:6.2f} {ed:12.4f} {lc:11.4f} {be:12.5f}", flush=True)
        hud = [
            f"t = {t:.2f}   agents = {n}   eps = {law.eps:.3f}",
            f"energy distance {ed:.3f}   Lloyd cost {lc:.3f}",
        ]
        view.draw(screen, x, status, hud)
        if not headless:
            pygame.display.flip()
            for event in pygame.event.get():
                if event.type == pygame.QUIT:
                    pygame.quit()
                    return 0
            time.sleep(0.03)
        if args.frames and (k % 10 == 0 or k == frames):
            pygame.image.save(screen, str(out / f"frame_{k:03d}.png"))
    pygame.image.save(screen, str(out / "final.png"))
    np.save(out / "positions.npy", x)
    pygame.quit()
    print(f"final frame: {out / 'final.png'}; positions: {out / 'positions.npy'}")
    return 0


def sample(args: argparse.Namespace) -> int:
    target = demo_target()
    from swarmcover.metrics import energy_distance

    res = sc.sample(target, args.n, seed=args.seed)
    np.save(args.out, res.points)
    print(f"{args.n} points, energy distance {energy_distance(res.points, target):.4f} -> {args.out}")
    return 0
