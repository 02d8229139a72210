"""Pygame rendering of world snapshots, drawn to answer "is the demand covered?" at a glance.

The demand map is the background (zero demand dark grey, demand on a viridis ramp); demand that no
robot serves (:func:`swarmcover.metrics.underserved_mask`: farther from every live robot than the
spacing the target asks for there) is hatched in :data:`UNDERSERVED_COLOUR`; robots are small
markers coloured by status (failed ones a red cross); radio links are faint; blobs are drawn only on
request (``blobs = "outline"`` or ``"fill"``); a legend and a scale bar sit at the bottom. The live
window, ``final.png``, replay frames and GIFs all use :class:`Renderer`.

Reads snapshots only (positions, status codes, numbers); it never steps anything. Works on any
surface, so headless runs (``SDL_VIDEODRIVER=dummy``) draw the same frames and save them as PNG.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np
import pygame
from scipy.spatial import cKDTree

from swarmcover.metrics import underserved_mask

from .world import Status

__all__ = [
    "BLOB_MODES",
    "LINK_COLOUR",
    "PATH_COLOUR",
    "STATUS_COLOURS",
    "UNDERSERVED_COLOUR",
    "Renderer",
    "heatmap_surface",
]

#: planned deployment paths
PATH_COLOUR = (250, 200, 80)
#: hatching over demand that no robot serves (not in the viridis ramp, not a status colour)
UNDERSERVED_COLOUR = (255, 0, 200)
#: radio links (drawn with this alpha over the map)
LINK_COLOUR = (255, 255, 255, 60)
#: robot colour per status code (see ``swarmcover.simulator.world.Status``)
STATUS_COLOURS = {
    Status.WAITING: (150, 150, 150),  # grey
    Status.LIVE: (40, 220, 255),  # cyan
    Status.STALE: (255, 200, 0),  # amber
    Status.FAILED: (255, 40, 40),  # red (drawn as a cross)
    Status.RADIO_FAILED: (200, 80, 255),  # violet
    Status.BODY_FAILED: (255, 130, 0),  # orange
}
_STATUS_LABELS = {0: "waiting", 1: "live", 2: "stale", 3: "failed", 4: "radio down", 5: "body failed"}
BLOB_MODES = ("none", "outline", "fill")
_NO_DEMAND = np.array([32, 32, 36], dtype=np.float64)


def heatmap_surface(density: np.ndarray, size: tuple[int, int]) -> pygame.Surface:
    """A surface of ``size`` showing ``density[ix, iy]`` (x right, y up): zero demand dark grey,
    demand on the viridis ramp from its smallest to its largest value."""
    from matplotlib import colormaps

    d = np.asarray(density, dtype=np.float64)
    top = d.max() if d.size and d.max() > 0 else 1.0
    v = np.clip(d / top, 0.0, 1.0)
    rgb = colormaps["viridis"](0.15 + 0.85 * v)[..., :3] * 255
    rgb[d <= 0] = _NO_DEMAND
    surf = pygame.surfarray.make_surface(rgb[:, ::-1].astype(np.uint8))  # surfarray is [x, y], y down
    return pygame.transform.smoothscale(surf, size)


def _to_px(positions: np.ndarray, bounds: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    lo, span = bounds[:, 0], bounds[:, 1] - bounds[:, 0]
    u = (np.asarray(positions, dtype=np.float64).reshape(-1, 2) - lo) / span
    return np.c_[u[:, 0] * (w - 1), (1 - u[:, 1]) * (h - 1)].round().astype(int)


def _nice_length(span: float) -> float:
    """A round length (1, 2 or 5 times a power of ten) near a fifth of ``span``."""
    raw = span / 5
    p = 10 ** math.floor(math.log10(raw))
    return min((m * p for m in (1, 2, 5, 10)), key=lambda v: abs(v - raw))


class Renderer:
    """Draws snapshots of a 2-D world onto a surface of ``size``.

    Parameters
    ----------
    density : ndarray, shape (gx, gy)
        The normalised target density on the cell-centred ``(gx, gy)`` grid over ``bounds``: the
        background, and what the under-served layer is measured against.
    bounds : ndarray, shape (2, 2)
    size : (int, int)
    blob_radius : float
        World radius of each robot's blob (its share of the coverage), drawn only when ``blobs``
        asks for it.
    link_range : float, optional
        Draw a faint line between live robots closer than this (radio links).
    trails : int
        How many past positions to draw per robot.
    zones : list of (kind, params)
        Obstacles / no-go zones to outline: ``("disk", (cx, cy, r))`` or ``("rect", (x0, y0, x1, y1))``.
    blobs : {"none", "outline", "fill"}
    underserved : bool
        Hatch under-served demand.
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
        blobs: str = "none",
        underserved: bool = True,
    ) -> None:
        if blobs not in BLOB_MODES:
            raise ValueError(f"blobs must be one of {BLOB_MODES}, got {blobs!r}")
        self.bounds = np.asarray(bounds, dtype=np.float64)
        self.size = size
        self.density = np.asarray(density, dtype=np.float64)
        self.background = heatmap_surface(self.density, size)
        self.scale = (size[0] - 1) / (self.bounds[0, 1] - self.bounds[0, 0])
        self.blob_px = max(0, round(blob_radius * self.scale))
        self.blobs, self.underserved = blobs, underserved
        self.link_range = link_range
        self.trails: deque[np.ndarray] = deque(maxlen=max(trails, 1))
        self.keep_trails = trails > 0
        self.zones = list(zones)
        self.font = pygame.font.Font(None, 20)
        self.small = pygame.font.Font(None, 17)
        #: planned paths ``(n, K+1, 2)`` drawn under the robots (a planned deployment), or None
        self.paths: np.ndarray | None = None
        #: the fraction of demand hatched in the last frame drawn
        self.underserved_fraction = float("nan")
        gx, gy = self.density.shape
        lo, span = self.bounds[:, 0], self.bounds[:, 1] - self.bounds[:, 0]
        ax = [lo[0] + (np.arange(gx) + 0.5) * span[0] / gx, lo[1] + (np.arange(gy) + 0.5) * span[1] / gy]
        self._grid = np.stack(np.meshgrid(*ax, indexing="ij"), -1).reshape(-1, 2)
        w, h = size
        self._ix = np.minimum(np.arange(w) * gx // w, gx - 1)
        self._iy = gy - 1 - np.minimum(np.arange(h) * gy // h, gy - 1)  # screen rows run down
        xx, yy = np.meshgrid(np.arange(w), np.arange(h), indexing="ij")
        self._hatch = (xx + yy) % 7 < 2  # diagonal stripes, 2 of every 7 pixels

    def robot_at(self, pixel: tuple[int, int], positions: np.ndarray, within: int = 8) -> int | None:
        """Row of the robot drawn nearest ``pixel`` (within ``within`` pixels), or ``None``."""
        px = _to_px(positions, self.bounds, self.size)
        if not len(px):
            return None
        d = np.hypot(px[:, 0] - pixel[0], px[:, 1] - pixel[1])
        k = int(np.argmin(d))
        return k if d[k] <= within else None

    def underserved_grid(self, positions: np.ndarray, status: np.ndarray) -> np.ndarray:
        """Boolean ``(gx, gy)``: the grid cells whose demand no live robot serves."""
        alive = Status.alive(status)
        mask = underserved_mask(self._grid, self.density.reshape(-1), np.asarray(positions)[alive])
        return mask.reshape(self.density.shape)

    def draw(
        self,
        screen: pygame.Surface,
        positions: np.ndarray,
        status: np.ndarray,
        hud: list[str],
        history: Sequence[float] = (),
    ) -> None:
        """One frame: demand map, under-served hatching, zones, blobs (on request), links, planned
        paths, trails, robots by status, HUD, sparkline, legend and scale bar."""
        screen.blit(self.background, (0, 0))
        positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        status = np.asarray(status)
        px = _to_px(positions, self.bounds, self.size)
        alive = Status.alive(status)
        if self.underserved:
            self._draw_underserved(screen, positions, status)
        self._draw_zones(screen)
        if self.blobs != "none" and self.blob_px > 2:
            layer = pygame.Surface(self.size, pygame.SRCALPHA)
            fill, width = ((40, 220, 255, 40), 0) if self.blobs == "fill" else ((255, 255, 255, 90), 1)
            for x, y in px[alive]:
                pygame.draw.circle(layer, fill, (int(x), int(y)), self.blob_px, width)
            screen.blit(layer, (0, 0))
        if self.link_range is not None and alive.sum() > 1:
            idx = np.flatnonzero(alive)
            layer = pygame.Surface(self.size, pygame.SRCALPHA)
            for i, j in cKDTree(positions[idx]).query_pairs(self.link_range):
                a, b = px[idx[i]], px[idx[j]]
                pygame.draw.line(layer, LINK_COLOUR, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), 1)
            screen.blit(layer, (0, 0))
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
                        screen, (170, 170, 190), False, [tuple(map(int, p)) for p in tr[:, r]], 1
                    )
        for (x, y), s in zip(px, status, strict=True):
            col = STATUS_COLOURS.get(int(s), (255, 255, 255))
            if int(s) == Status.FAILED:  # a red cross, so it reads without colour too
                _cross(screen, col, int(x), int(y))
            else:
                pygame.draw.circle(screen, (0, 0, 0), (int(x), int(y)), 4)
                pygame.draw.circle(screen, col, (int(x), int(y)), 3)
        for k, line in enumerate(hud):
            screen.blit(self.font.render(line, True, (255, 255, 255)), (8, 8 + 18 * k))
        draw_sparkline(screen, history)
        self._legend(screen, status)
        draw_scale_bar(screen, float(self.bounds[0, 1] - self.bounds[0, 0]), self.scale, self.small)

    def _draw_underserved(self, screen: pygame.Surface, positions: np.ndarray, status: np.ndarray) -> None:
        cells = self.underserved_grid(positions, status)
        total = self.density.sum()
        self.underserved_fraction = float(self.density[cells].sum() / total) if total > 0 else 0.0
        if not cells.any():
            return
        on = cells[self._ix[:, None], self._iy[None, :]] & self._hatch  # (w, h), surfarray order
        pix = pygame.surfarray.pixels3d(screen)
        pix[on] = UNDERSERVED_COLOUR
        del pix  # unlock the surface

    def _draw_zones(self, screen: pygame.Surface) -> None:
        for kind, p in self.zones:
            if kind == "disk":
                c = _to_px(np.array([p[:2]]), self.bounds, self.size)[0]
                pygame.draw.circle(screen, (90, 140, 220), (int(c[0]), int(c[1])), int(p[2] * self.scale), 2)
            else:
                a = _to_px(np.array([p[:2], p[2:]]), self.bounds, self.size)
                r = pygame.Rect(int(a[0, 0]), int(a[1, 1]), int(a[1, 0] - a[0, 0]), int(a[0, 1] - a[1, 1]))
                pygame.draw.rect(screen, (90, 140, 220), r, 2)

    def _legend(self, screen: pygame.Surface, status: np.ndarray) -> None:
        """Bottom left: a swatch per status shown, under-served demand (with its share), links."""
        rows: list[tuple[str, tuple, str]] = []
        present = {int(s) for s in np.unique(status)} | {int(Status.LIVE)}
        for code in sorted(present & set(STATUS_COLOURS)):
            shape = "cross" if code == Status.FAILED else "dot"
            rows.append((shape, STATUS_COLOURS[code], _STATUS_LABELS[code]))
        if self.underserved:
            f = self.underserved_fraction
            share = "" if math.isnan(f) else f" ({100 * f:.0f} %)"
            rows.append(("box", UNDERSERVED_COLOUR, "under-served demand" + share))
        if self.link_range is not None:
            rows.append(("line", LINK_COLOUR[:3], "radio link"))
        if self.paths is not None:
            rows.append(("line", PATH_COLOUR, "planned path"))
        labels = [self.small.render(label, True, (235, 235, 235)) for _, _, label in rows]
        line_h, w = 16, 34 + max(lab.get_width() for lab in labels)
        h = 6 + line_h * len(rows)
        x0, y0 = 6, self.size[1] - h - 6
        box = pygame.Surface((w, h), pygame.SRCALPHA)
        box.fill((0, 0, 0, 150))
        screen.blit(box, (x0, y0))
        for k, ((shape, col, _), label) in enumerate(zip(rows, labels, strict=True)):
            cx, cy = x0 + 12, y0 + 4 + line_h * k + line_h // 2
            if shape == "dot":
                pygame.draw.circle(screen, col, (cx, cy), 3)
            elif shape == "cross":
                _cross(screen, col, cx, cy)
            elif shape == "box":
                pygame.draw.rect(screen, col, pygame.Rect(cx - 6, cy - 5, 12, 10))
            else:
                pygame.draw.line(screen, col, (cx - 7, cy), (cx + 7, cy), 2)
            screen.blit(label, (x0 + 26, cy - 6))


def _cross(screen: pygame.Surface, colour: tuple, x: int, y: int) -> None:
    pygame.draw.line(screen, colour, (x - 4, y - 4), (x + 4, y + 4), 2)
    pygame.draw.line(screen, colour, (x - 4, y + 4), (x + 4, y - 4), 2)


def draw_scale_bar(screen: pygame.Surface, width: float, scale: float, font: pygame.font.Font) -> None:
    """Bottom right: a round world length (of a world ``width`` wide, ``scale`` pixels a unit) and
    its label."""
    length = _nice_length(width)
    n_px = max(1, round(length * scale))
    w, h = screen.get_size()
    x1, y = w - 12, h - 14
    x0 = x1 - n_px
    for a, b in (((x0, y), (x1, y)), ((x0, y - 4), (x0, y + 4)), ((x1, y - 4), (x1, y + 4))):
        pygame.draw.line(screen, (0, 0, 0), (a[0], a[1] + 1), (b[0], b[1] + 1), 3)
        pygame.draw.line(screen, (255, 255, 255), a, b, 1)
    label = font.render(f"{length:g}", True, (255, 255, 255))
    screen.blit(label, (x0 + (n_px - label.get_width()) // 2, y - 16))


def draw_sparkline(screen: pygame.Surface, history: Sequence[float]) -> None:
    """Top right: the energy distance so far (a log scale when it spans decades)."""
    vals = np.asarray([v for v in history if np.isfinite(v)], dtype=np.float64)
    if len(vals) < 2:
        return
    w, h = 160, 40
    x0, y0 = screen.get_size()[0] - w - 8, 8
    pygame.draw.rect(screen, (0, 0, 0), pygame.Rect(x0, y0, w, h))
    if vals.min() > 0 and vals.max() > 10 * vals.min():  # spans decades: a log scale
        vals = np.log10(vals)
    lo, span = vals.min(), np.ptp(vals)
    u = (vals - lo) / span if span > 0 else np.zeros_like(vals)
    pts = [(x0 + int(i * (w - 1) / (len(vals) - 1)), y0 + h - 2 - int(v * (h - 3))) for i, v in enumerate(u)]
    pygame.draw.lines(screen, (255, 255, 255), False, pts, 1)
