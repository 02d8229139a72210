"""Render a recorded run: PNG frames every ``every`` world seconds (and a window when not headless),
or one animated GIF of bounded size to share.

Both draw with :class:`swarmcover.simulator.render.Renderer`, as the live window and ``final.png`` do. The GIF
is written with Pillow (a dependency of matplotlib's, and ours): frames on one adaptive palette
(the map's colours do not flicker from frame to frame), at most ``max_frames`` of them spread
evenly over the run, scaled to ``width`` pixels; a GIF over ``max_mb`` is written again with half
the frames until it fits, and is never left half-written (a temporary file, then a rename).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .config import SimConfig
from .recording import Recording, load_recording
from .world import Status

__all__ = ["replay", "replay_gif"]

log = logging.getLogger("swarmcover.sim.replay")


def _open(run: str | Path) -> tuple[Path, Recording, SimConfig]:
    run = Path(run)
    if not run.exists():
        raise ValueError(f"{run}: no such run folder")
    if (run / "recording" / "meta.json").is_file():  # a launcher's run folder
        run = run / "recording"
    rec = load_recording(run)
    if not len(rec.t):
        raise ValueError(f"{run}: the recording holds no ticks")
    cfg = SimConfig.model_validate(rec.meta["config"])
    if cfg.dim != 2:
        raise ValueError("replay renders 2-D worlds only")
    return run, rec, cfg


def _renderer(cfg: SimConfig, width: int | None = None):
    from .live import renderer_for

    target = cfg.target.build(cfg.bounds)
    rc = cfg.render
    # the scenario's size, or ``width`` with the height following the domain's aspect
    w, h = (rc.width, rc.height) if width is None else (width, None)
    r = renderer_for(target, np.asarray(cfg.bounds), w, h, cfg.eps, None, 0, rc.blobs)
    if cfg.paths:
        r.paths = np.array([p.points for p in cfg.paths])
    return r


def _rows(rec: Recording, every: float) -> list[int]:
    """Indices of the ticks to draw: one every ``every`` world seconds, and the last one."""
    keep, next_t = [], rec.t[0]
    for i, t in enumerate(rec.t):
        if t + 1e-9 >= next_t or i == len(rec.t) - 1:
            keep.append(i)
            next_t = t + every
    return keep


def _frames(rec: Recording, rows: list[int], r, screen) -> Iterator[int]:
    """Draw each of ``rows`` onto ``screen`` in turn (yields the row index after each)."""
    fails = sorted(e["t"] for e in rec.events if e.get("kind", "").startswith(("killed", "injected_fail")))
    history: list[float] = []
    for i in rows:
        t, st = rec.t[i], rec.status[i]
        lost = sum(1 for f in fails if f <= t)
        hud = [f"replay t = {t:7.2f}   live {int(Status.alive(st).sum())}/{len(st)}"
               + (f"   failures so far {lost}" if lost else "")]  # fmt: skip
        r.draw(screen, rec.positions[i], st, hud, history)
        yield i


def replay(run: str | Path, out: str | Path | None = None, every: float = 1.0, headless: bool = True) -> Path:
    """Draw the recording in ``run`` (a recording, or a launcher's run folder holding one in
    ``recording/``) into PNG frames in ``out`` (default ``run/replay``); returns the folder."""
    import pygame

    if every <= 0:
        raise ValueError(f"--every must be > 0 world seconds, got {every}")
    run, rec, cfg = _open(run)
    pygame.display.init()
    pygame.font.init()
    try:
        r = _renderer(cfg)
        screen = pygame.Surface(r.size) if headless else pygame.display.set_mode(r.size)
        dest = Path(out) if out is not None else run / "replay"
        dest.mkdir(parents=True, exist_ok=True)
        for k, _ in enumerate(_frames(rec, _rows(rec, every), r, screen)):
            pygame.image.save(screen, str(dest / f"frame_{k:05d}.png"))
            if not headless:
                pygame.display.flip()
                pygame.event.pump()
    finally:
        pygame.quit()
    return dest


def replay_gif(
    run: str | Path,
    gif: str | Path,
    *,
    width: int = 480,
    max_frames: int = 150,
    max_mb: float = 10.0,
    seconds: float = 12.0,
) -> Path:
    """Write the recording in ``run`` as an animated GIF ``gif``: at most ``max_frames`` frames
    spread evenly over the run, ``width`` pixels wide, playing in about ``seconds`` (each frame
    20 ms to 0.5 s), looping; at most ``max_mb`` megabytes (fewer frames until it fits).
    Returns the path written."""
    import pygame
    from PIL import Image

    if not 64 <= width <= 4096:
        raise ValueError(f"--width must be 64 to 4096 pixels, got {width}")
    if max_frames < 2:
        raise ValueError(f"--max-frames must be at least 2, got {max_frames}")
    if max_mb <= 0 or seconds <= 0:
        raise ValueError("--max-mb and --seconds must be > 0")
    gif = Path(gif)
    if gif.suffix.lower() != ".gif":
        raise ValueError(f"{gif}: the file name must end in .gif")
    if not gif.parent.is_dir():
        raise ValueError(f"{gif.parent}: no such folder")
    _, rec, cfg = _open(run)
    span = float(rec.t[-1] - rec.t[0])
    pygame.display.init()
    pygame.font.init()
    try:
        r = _renderer(cfg, width)
        screen = pygame.Surface(r.size)
        rows = _rows(rec, span / (max_frames - 1) if span > 0 else 1.0)[:max_frames]
        images = []
        for _ in _frames(rec, rows, r, screen):
            rgb = pygame.surfarray.array3d(screen).transpose(1, 0, 2)  # (h, w, 3)
            images.append(Image.fromarray(np.ascontiguousarray(rgb)))
    finally:
        pygame.quit()
    # one palette for every frame, from a montage of up to 8 of them (the first frames hold the
    # under-served hatching, the last ones the fleet's final colours)
    pick = [images[k] for k in np.unique(np.linspace(0, len(images) - 1, 8).round().astype(int))]
    montage = Image.new("RGB", (pick[0].width, pick[0].height * len(pick)))
    for k, im in enumerate(pick):
        montage.paste(im, (0, k * im.height))
    palette = montage.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    tmp = gif.with_name(gif.name + ".tmp")
    while True:
        ms = int(np.clip(1000 * seconds / len(frames), 20, 500))
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0,
                       optimize=False, disposal=1)  # fmt: skip
        size_mb = tmp.stat().st_size / 1e6
        if size_mb <= max_mb:
            break
        if len(frames) <= 2:
            tmp.unlink()
            raise ValueError(f"a GIF {width} pixels wide is over {max_mb} MB even with 2 frames; "
                             "use a smaller --width")  # fmt: skip
        log.info("GIF of %d frames is %.1f MB, over %.1f MB: halving the frames", len(frames), size_mb,
                 max_mb)  # fmt: skip
        frames = frames[::2] if len(frames) % 2 else [*frames[:-1:2], frames[-1]]
    os.replace(tmp, gif)
    return gif
