"""Pygame rendering of world snapshots: the target as a heat map, the fleet's blobs, robots coloured
by status, radio links, trails and a HUD with a metrics sparkline.

Reads snapshots only (positions, status codes, numbers); it never steps anything. Works on any
surface, so headless runs (``SDL_VIDEODRIVER=dummy``) draw the same frames and save them as PNG.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
import pygame
from scipy.spatial import cKDTree

__all__ = ["AGENT_COLOUR", "PATH_COLOUR", "STATUS_COLOURS", "Renderer", "draw_frame", "heatmap_surface"]

AGENT_COLOUR = (40, 220, 255)
#: planned deployment paths
PATH_COLOUR = (250, 200, 80)
#: robot colour per status code (see ``simulator.world.Status``)
STATUS_COLOURS = {
    0: (150, 150, 150),  # waiting: grey
    1: (40, 220, 255),  # live: cyan
    2: (255, 200, 0),  # stale: amber
    3: (255, 40, 40),  # failed: red
    4: (200, 80, 255),  # radio failed: violet
    5: (255, 130, 0),  # body failed: orange
}


def heatmap_surface(density: np.ndarray, size: tuple[int, int]) -> pygame.Surface:
    """A surface of ``size`` showing ``density[ix, iy]`` (x right, y up), dark to warm."""
    d = np.asarray(density, dtype=np.float64)
    v = d / d.max() if d.max() > 0 else d
    rgb = np.stack([60 + 180 * v, 20 + 110 * v, 40 + 20 * v], axis=-1).astype(np.uint8)
    surf = pygame.surfarray.make_surface(rgb[:, ::-1])  # surfarray is [x, y] with y down
    return pygame.transform.smoothscale(surf, size)


def _to_px(positions: np.ndarray, bounds: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    lo, span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    u = (np.asarray(positions, dtype=np.float64).reshape(-1, 2) - lo) / span
    return np.c_[u[:, 0] * (w - 1), (1 - u[:, 1]) * (h - 1)].round().astype(int)


def draw_frame(
    screen: pygame.Surface,
    background: pygame.Surface,
    positions: np.ndarray,
    bounds: np.ndarray,
    hud: list[str],
    font: pygame.font.Font,
) -> None:
    """Draw one frame: background, agents (2-D positions inside ``bounds (2, 2)``), HUD lines."""
    screen.blit(background, (0, 0))
    for x, y in _to_px(positions, np.asarray(bounds), background.get_size()):
        pygame.draw.circle(screen, AGENT_COLOUR, (int(x), int(y)), 4)
    for k, line in enumerate(hud):
        screen.blit(font.render(line, True, (255, 255, 255)), (8, 8 + 18 * k))


class Renderer:
    """Draws snapshots of a 2-D world onto a surface of ``size``.

    Parameters
    ----------
    density : ndarray, shape (gx, gy)
        The target density on a grid over ``bounds``, for the heat map.
    bounds : ndarray, shape (2, 2)
    size : (int, int)
    blob_radius : float
        World radius of each robot's blob (its share of the coverage), drawn as a faint disc.
    link_range : float, optional
        Draw a line between live robots closer than this (radio links).
    trails : int
        How many past positions to draw per robot.
    zones : list of (kind, params)
        Obstacles / no-go zones to outline: ``("disk", (cx, cy, r))`` or ``("rect", (x0, y0, x1, y1))``.
    """

    def __init__(
        self,
        density: np.ndarray,
        bounds: np.ndarray,
        size: tuple[int, int],
        blob_radius: float = 0.0,
        link_range: float | None = None,
        trails: int = 0,
        zones: Sequence[tuple[str, tuple]] = (),
    ) -> None:
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.size = size
        self.background = heatmap_surface(density, size)
        self.scale = (size[0] - 1) / (self.bounds[0, 1] - self.bounds[0, 0])
        self.blob_px = max(0, round(blob_radius * self.scale))
        self.link_range = link_range
        self.trails: deque[np.ndarray] = deque(maxlen=max(trails, 1))
        self.keep_trails = trails > 0
        self.zones = list(zones)
        self.font = pygame.font.Font(None, 20)
        #: planned paths ``(n, K+1, 2)`` drawn under the robots (a planned deployment), or None
        self.paths: np.ndarray | None = None

    def robot_at(self, pixel: tuple[int, int], positions: np.ndarray, within: int = 8) -> int | None:
        """Row of the robot drawn nearest ``pixel`` (within ``within`` pixels), or ``None``."""
        px = _to_px(positions, self.bounds, self.size)
        if not len(px):
            return None
        d = np.hypot(px[:, 0] - pixel[0], px[:, 1] - pixel[1])
        k = int(np.argmin(d))
        return k if d[k] <= within else None

    def draw(
        self,
        screen: pygame.Surface,
        positions: np.ndarray,
        status: np.ndarray,
        hud: list[str],
        history: Sequence[float] = (),
    ) -> None:
        """One frame: heat map, zones, blobs, links, planned paths, trails, robots by status, HUD
        and sparkline."""
        screen.blit(self.background, (0, 0))
        px = _to_px(positions, self.bounds, self.size)
        for kind, p in self.zones:
            if kind == "disk":
                c = _to_px(np.array([p[:2]]), self.bounds, self.size)[0]
                pygame.draw.circle(screen, (90, 140, 220), (int(c[0]), int(c[1])), int(p[2] * self.scale), 2)
            else:
                a = _to_px(np.array([p[:2], p[2:]]), self.bounds, self.size)
                r = pygame.Rect(int(a[0, 0]), int(a[1, 1]), int(a[1, 0] - a[0, 0]), int(a[0, 1] - a[1, 1]))
                pygame.draw.rect(screen, (90, 140, 220), r, 2)
        alive = (status == 1) | (status == 2) | (status == 4) | (status == 5)
        if self.blob_px > 2:
            blobs = pygame.Surface(self.size, pygame.SRCALPHA)
            for x, y in px[alive]:
                pygame.draw.circle(blobs, (40, 220, 255, 40), (int(x), int(y)), self.blob_px)
            screen.blit(blobs, (0, 0))
        if self.link_range is not None and alive.sum() > 1:
            idx = np.flatnonzero(alive)
            for i, j in cKDTree(positions[idx]).query_pairs(self.link_range):
                a, b = px[idx[i]], px[idx[j]]
                pygame.draw.line(screen, (70, 110, 130), (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1)
        if self.paths is not None:
            for path in self.paths:
                pts = [tuple(map(int, q)) for q in _to_px(path, self.bounds, self.size)]
                pygame.draw.lines(screen, PATH_COLOUR, False, pts, 1)
        if self.keep_trails:
            self.trails.append(px.copy())
            if len(self.trails) > 1:
                tr = np.stack(self.trails)  # (k, n, 2)
                for r in range(tr.shape[1]):
                    pygame.draw.lines(
                        screen, (120, 120, 160), False, [tuple(map(int, p)) for p in tr[:, r]], 1
                    )
        for (x, y), s in zip(px, status, strict=True):
            col = STATUS_COLOURS.get(int(s), (255, 255, 255))
            if int(s) == 3:  # failed: a red cross, so it reads without colour too
                pygame.draw.line(screen, col, (int(x) - 5, int(y) - 5), (int(x) + 5, int(y) + 5), 3)
                pygame.draw.line(screen, col, (int(x) - 5, int(y) + 5), (int(x) + 5, int(y) - 5), 3)
            else:
                pygame.draw.circle(screen, col, (int(x), int(y)), 5)
        for k, line in enumerate(hud):
            screen.blit(self.font.render(line, True, (255, 255, 255)), (8, 8 + 18 * k))
        self._sparkline(screen, history)

    def _sparkline(self, screen: pygame.Surface, history: Sequence[float]) -> None:
        vals = np.asarray([v for v in history if np.isfinite(v)], dtype=np.float64)
        if len(vals) < 2:
            return
        w, h = 160, 40
        x0, y0 = self.size[0] - w - 8, 8
        pygame.draw.rect(screen, (0, 0, 0), pygame.Rect(x0, y0, w, h))
        top = vals.max() if vals.max() > 0 else 1.0
        pts = [
            (x0 + int(i * (w - 1) / (len(vals) - 1)), y0 + h - 1 - int(v / top * (h - 2)))
            for i, v in enumerate(vals)
        ]
        pygame.draw.lines(screen, (255, 255, 255), False, pts, 1)
