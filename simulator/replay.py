"""Render a recorded run: PNG frames every ``every`` world seconds (and a window when not headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import SimConfig
from .recording import load_recording

__all__ = ["replay"]


def replay(run: str | Path, out: str | Path | None = None, every: float = 1.0, headless: bool = True) -> Path:
    """Draw the recording in ``run`` (a recording, or a launcher's run folder holding one in
    ``recording/``) into ``out`` (default ``run/replay``); returns the folder."""
    import pygame

    from .live import renderer_for

    if (Path(run) / "recording" / "meta.json").is_file():  # a launcher's run folder
        run = Path(run) / "recording"
    rec = load_recording(run)
    if not len(rec.t):
        raise ValueError(f"{run}: the recording holds no ticks")
    cfg = SimConfig.model_validate(rec.meta["config"])
    if cfg.dim != 2:
        raise ValueError("replay renders 2-D worlds only")
    target = cfg.target.build(cfg.bounds)
    pygame.display.init()
    pygame.font.init()
    try:
        r = renderer_for(
            target, np.asarray(cfg.bounds), cfg.render.width, cfg.render.height, cfg.eps, None, 0
        )
        screen = pygame.Surface(r.size) if headless else pygame.display.set_mode(r.size)
        dest = Path(out) if out is not None else Path(run) / "replay"
        dest.mkdir(parents=True, exist_ok=True)
        next_t, k = rec.t[0], 0
        for i, t in enumerate(rec.t):
            if t + 1e-9 < next_t and i != len(rec.t) - 1:
                continue
            next_t = t + every
            st = rec.status[i]
            hud = [f"replay t = {t:7.2f}   live {int(np.isin(st, (1, 2, 4, 5)).sum())}/{len(st)}"]
            r.draw(screen, rec.positions[i], st, hud)
            pygame.image.save(screen, str(dest / f"frame_{k:05d}.png"))
            k += 1
            if not headless:
                pygame.display.flip()
                pygame.event.pump()
    finally:
        pygame.quit()
    return dest
