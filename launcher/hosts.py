"""Where and how a launch runs: the display, the run folder's default place, agent id lists, the
endpoint other hosts reach, the law in a line, and the agents' compiled kernels warmed once."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - the CLI imports this module in every agent process: keep it light
    from .resolve import ResolvedScenario

__all__ = ["default_run_dir", "has_display", "law_line", "parse_ids", "public_endpoint", "warm_agents_cache"]


def has_display() -> bool:
    """Whether a window can be opened: SDL is not told to use no display, and on X11/Wayland
    systems a display is set (macOS and Windows always have one)."""
    if os.environ.get("SDL_VIDEODRIVER") == "dummy":
        return False
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def default_run_dir(name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path("runs") / name / stamp


def parse_ids(text: str, roster: list[int] | None) -> list[int]:
    """``"0-9,12,20-24"`` to a sorted list of ids, each checked against ``roster`` (if given)."""
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        lo, sep, hi = part.partition("-")
        try:
            ids = range(int(lo), int(hi) + 1) if sep else [int(lo)]
        except ValueError:
            raise ValueError(f"--agents {text!r}: {part!r} is not an id or a range like 0-9") from None
        if len(ids) > 100_000 or len(out) > 100_000:
            raise ValueError(f"--agents {text!r}: more than 100000 ids")
        out.update(ids)
    if len(out) > 100_000 or any(a < 0 or a >= 1 << 31 for a in out):
        raise ValueError(f"--agents {text!r}: ids must be 0..2^31-1, at most 100000 of them")
    bad = sorted(out - set(roster)) if roster is not None else []
    if bad:
        raise ValueError(f"--agents {text!r}: ids {bad[:10]} are not on the roster (0..{len(roster) - 1})")
    return sorted(out)


def law_line(rs: ResolvedScenario) -> str:
    """The law in a few words: one eps, or the annealed schedule."""
    st = rs.schedule.stages
    if len(st) == 1:
        return f"eps {rs.eps:.4g}"
    return f"eps {st[0].eps:.4g} -> {st[-1].eps:.4g} in {len(st)} stages over {rs.schedule.duration:.0f} s"


def public_endpoint(endpoint: str) -> str:
    """An endpoint bound on every interface, as other hosts reach it (this host's name)."""
    if "0.0.0.0" in endpoint or "*" in endpoint.split("//", 1)[-1].split(":")[0]:
        import socket

        host = socket.gethostname()
        return endpoint.replace("0.0.0.0", host).replace("//*", "//" + host)
    return endpoint


def warm_agents_cache(rs: ResolvedScenario, say: Callable[[str], None]) -> None:
    """Compile the agents' kernels here, once, into numba's cache: on a fresh install the agents
    then load them instead of each compiling them at once (seconds of CPU apiece)."""
    if rs.scenario.agents.command is not None or rs.scenario.agents.kernel != "numba":
        return  # another agent program, or agents that compile nothing
    from swarmcover.domain import Box
    from swarmcover.local import warm_local_velocity

    t0 = time.monotonic()
    warm_local_velocity(Box(rs.sim.bounds), rs.scenario.domain.boundary)
    if time.monotonic() - t0 > 1.0:
        say(f"  compiled the agents' kernels in {time.monotonic() - t0:.1f} s (once per install)")
