"""The live view: draws the simulator's snapshots and turns clicks and keys into injected events.

Keys: click a robot to fail it; ``f`` fails 10% of the live robots at random; ``r`` revives every
robot; space pauses; ``+``/``-`` speed the world up or down (real time); ``b`` cycles the blobs
(none, outline, fill); ``u`` toggles the under-served hatching; ``s`` saves a screenshot; closing
the window stops the run. Headless (no display, ``SDL_VIDEODRIVER=dummy``) it draws the
same frames off-screen and saves them as PNG every ``render.frame_every`` world seconds when
``render.frames_dir`` is set.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .world import Status

if TYPE_CHECKING:
    from .server import Simulator
    from .world import Snapshot

__all__ = ["LiveView", "WindowUnavailable", "renderer_for"]

log = logging.getLogger("swarmcover.sim.live")


class WindowUnavailable(RuntimeError):
    """A window was asked for but the display cannot give one (SDL's reason in the message)."""


def renderer_for(
    target,
    bounds: np.ndarray,
    width: int,
    height: int | None,
    eps: float,
    link_range,
    trails: int,
    blobs: str = "none",
):
    """A :class:`~swarmcover.simulator.render.Renderer` for a 2-D ``target`` (its density on a grid)."""
    from swarmcover.domain import Disk, Rectangle

    from .render import Renderer

    b = np.asarray(bounds, dtype=np.float64)
    span = b[:, 1] - b[:, 0]
    h = height if height is not None else max(64, round(width * span[1] / span[0]))
    gx, gy = 200, max(8, round(200 * span[1] / span[0]))
    axes, _ = target.box.grid((gx, gy))
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    zones = []
    for z in target.zones:
        if isinstance(z, Disk):
            zones.append(("disk", (*np.asarray(z.center, dtype=float), float(z.radius))))
        elif isinstance(z, Rectangle):
            zones.append(("rect", (*np.asarray(z.lo, dtype=float), *np.asarray(z.hi, dtype=float))))
    return Renderer(target.pdf(grid).reshape(gx, gy), b, (width, h), blob_radius=eps, link_range=link_range,
                    trails=trails, zones=zones, blobs=blobs)  # fmt: skip


class LiveView:
    """Renders a running :class:`~swarmcover.simulator.server.Simulator` (observer of its snapshots)."""

    def __init__(self, sim: Simulator, headless: bool) -> None:
        if sim.cfg.dim != 2:
            raise ValueError("live rendering needs a 2-D world")
        if headless:
            os.environ["SDL_VIDEODRIVER"] = "dummy"
        import pygame

        self.pg = pygame
        try:
            pygame.display.init()
        except pygame.error as e:
            where = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "the default display"
            raise WindowUnavailable(f"cannot open a window on {where}: {e}") from None
        pygame.font.init()
        self.sim, self.headless = sim, headless
        rc = sim.cfg.render
        self.renderer = renderer_for(sim.target, np.asarray(sim.cfg.bounds), rc.width, rc.height, sim.cfg.eps,
                                     sim.radio.range if rc.links else None, rc.trails, rc.blobs)  # fmt: skip
        size = self.renderer.size
        try:
            self.screen = pygame.Surface(size) if headless else pygame.display.set_mode(size)
        except pygame.error as e:
            pygame.display.quit()
            raise WindowUnavailable(f"cannot open a {size[0]}x{size[1]} window: {e}") from None
        if not headless:
            pygame.display.set_caption("swarmcover")
        self.frames_dir = Path(rc.frames_dir) if rc.frames_dir else None
        if self.frames_dir is not None:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        self.next_frame_t = 0.0
        self.last_draw = 0.0
        self.frames_saved: list[Path] = []
        self.last: Snapshot | None = None
        # `f` picks robots with its own generator: a person's keys never shift the world's seeded draws
        self.rng = np.random.default_rng()

    def attach(self) -> None:
        """Watch the simulator: draw its snapshots, and keep taking keys while it is paused."""
        self.sim.observers.append(self.on_snapshot)
        self.sim.idle_observers.append(self.on_idle)

    def on_idle(self) -> None:
        """While paused: draw the world as it stands (a robot failed by a click shows at once) and
        handle clicks and keys, at the window's rate."""
        now = time.monotonic()
        if self.headless or now - self.last_draw < 1.0 / self.sim.cfg.render.fps:
            return
        self.last_draw = now
        self.last = self.sim.world.snapshot()
        self.draw(self.last)
        self.pg.display.flip()
        self.handle_events(self.last)

    def hud(self, snap: Snapshot) -> list[str]:
        ed = self.sim.fleet_metrics.latest("energy_distance")
        live = int(Status.alive(snap.status).sum())
        failed = int((snap.status == Status.FAILED).sum())
        mode = "paused" if self.sim.paused else f"x{self.sim.speed:g}"
        return [
            f"t = {snap.t:7.2f}   live {live}/{len(snap.ids)}   failed {failed}   {mode}",
            f"energy distance {ed:.4f}",
        ]

    def draw(self, snap: Snapshot) -> None:
        self.renderer.draw(self.screen, snap.positions, snap.status, self.hud(snap),
                           self.sim.metrics["energy_distance"])  # fmt: skip

    def save(self, path: Path) -> Path:
        self.pg.image.save(self.screen, str(path))
        return path

    def on_snapshot(self, snap: Snapshot) -> None:
        self.last = snap
        due_frame = self.frames_dir is not None and snap.t + 1e-9 >= self.next_frame_t
        now = time.monotonic()
        due_screen = not self.headless and now - self.last_draw >= 1.0 / self.sim.cfg.render.fps
        if not (due_frame or due_screen):
            return
        self.draw(snap)
        if due_frame:
            self.next_frame_t += self.sim.cfg.render.frame_every
            self.frames_saved.append(self.save(self.frames_dir / f"frame_{len(self.frames_saved):05d}.png"))
        if not self.headless:
            self.last_draw = now
            self.pg.display.flip()
            self.handle_events(snap)

    def handle_events(self, snap: Snapshot) -> None:
        from .render import BLOB_MODES

        pg = self.pg
        for ev in pg.event.get():
            if ev.type == pg.QUIT:
                self.sim.stop()
            elif ev.type == pg.MOUSEBUTTONDOWN:
                k = self.renderer.robot_at(ev.pos, snap.positions)
                if k is not None:
                    self.sim.inject("fail", [int(snap.ids[k])])
            elif ev.type == pg.KEYDOWN:
                key = ev.unicode
                if key == "f":
                    live = snap.ids[Status.alive(snap.status)]
                    pick = (
                        self.rng.choice(live, size=max(1, len(live) // 10), replace=False)
                        if len(live)
                        else []
                    )
                    self.sim.inject("fail", [int(a) for a in pick])
                elif key == "r":
                    self.sim.inject("revive", [int(a) for a in snap.ids])
                elif key == " ":
                    self.sim.set_paused(not self.sim.paused)
                elif key in ("+", "="):
                    self.sim.set_speed(self.sim.speed * 2)
                elif key == "-":
                    self.sim.set_speed(self.sim.speed / 2)
                elif key == "b":
                    modes = BLOB_MODES
                    self.renderer.blobs = modes[(modes.index(self.renderer.blobs) + 1) % len(modes)]
                elif key == "u":
                    self.renderer.underserved = not self.renderer.underserved
                elif key == "s":
                    p = Path(self.sim.cfg.record or ".") / f"screenshot_{int(time.time())}.png"
                    log.info("screenshot %s", self.save(p))

    def close(self) -> None:
        if self.last is not None and self.frames_dir is not None:
            self.draw(self.last)
            self.save(self.frames_dir / "final.png")
        self.pg.quit()
