"""Pygame rendering of world snapshots: the target as a heat map, agents as dots, a HUD.

Reads snapshots only (positions and numbers); it never steps anything.
"""

from __future__ import annotations

import numpy as np
import pygame

__all__ = ["AGENT_COLOUR", "draw_frame", "heatmap_surface"]

AGENT_COLOUR = (40, 220, 255)


def heatmap_surface(density: np.ndarray, size: tuple[int, int]) -> pygame.Surface:
    """A surface of ``size`` showing ``density[ix, iy]`` (x right, y up), dark to warm."""
    d = np.asarray(density, dtype=np.float64)
    v = d / d.max() if d.max() > 0 else d
    rgb = np.stack([60 + 180 * v, 20 + 110 * v, 40 + 20 * v], axis=-1).astype(np.uint8)
    surf = pygame.surfarray.make_surface(rgb[:, ::-1])  # surfarray is [x, y] with y down
    return pygame.transform.smoothscale(surf, size)


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
    w, h = background.get_size()
    lo, size = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    px = (positions - lo) / size
    for x, y in px:
        pygame.draw.circle(screen, AGENT_COLOUR, (int(x * (w - 1)), int((1 - y) * (h - 1))), 4)
    for k, line in enumerate(hud):
        screen.blit(font.render(line, True, (255, 255, 255)), (8, 8 + 18 * k))
