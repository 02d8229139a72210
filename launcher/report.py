"""What a run leaves for a person: ``summary.json``, ``metrics.png``, ``final.png`` and a text summary.

The schema of ``summary.json`` is documented in ``docs/scenarios.md`` (section "The run folder");
:data:`SUMMARY_SCHEMA` names its version.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "FAILURE_EVENT_KINDS",
    "SUMMARY_SCHEMA",
    "final_png",
    "metrics_png",
    "prepare_plotting",
    "text_summary",
    "write_json_atomic",
]

SUMMARY_SCHEMA = "swarmcover.run-summary/1"

FAILURE_EVENT_KINDS = (
    "killed",
    "terminated",
    "process_exited",
    "detected_failure",
    "injected_fail",
    "injected_radio_fail",
    "injected_body_fail",
)
"""Event kinds marked on ``metrics.png`` as failures (restarts and revivals are marked too, in green)."""

_RECOVERY_KINDS = ("restarted", "rejoined", "injected_revive")


def _clean(obj):
    """JSON-safe: NaN and infinities become ``null`` (strict JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    return obj


def write_json_atomic(path: Path, data: dict) -> Path:
    """Write ``data`` as strict JSON to ``path`` via a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_clean(data), f, indent=1, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def prepare_plotting() -> None:
    """Import matplotlib with its file-only backend now, so that writing ``metrics.png`` after an
    interrupt does not pay the import."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot


def metrics_png(path: Path, metrics: dict[str, Sequence[float]], events: Sequence[dict], title: str) -> Path:
    """Plot ``energy_distance``, ``lloyd_cost``, ``blob_energy``, ``alive`` and the fleet's total
    ``distance`` travelled against world time,
    failure events as red lines, restarts and revivals as green ones."""
    prepare_plotting()
    import matplotlib.pyplot as plt

    t = np.asarray(metrics.get("t", []), dtype=float)
    rows = [
        ("energy_distance", "energy distance"),
        ("lloyd_cost", "Lloyd cost"),
        ("blob_energy", "blob energy"),
        ("alive", "robots alive"),
        ("distance", "distance travelled"),
    ]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 9.5), sharex=True)
    fails = sorted({round(e["t"], 3) for e in events if e.get("kind") in FAILURE_EVENT_KINDS})
    recov = sorted({round(e["t"], 3) for e in events if e.get("kind") in _RECOVERY_KINDS and e["t"] > 0})
    for ax, (key, label) in zip(axes, rows, strict=True):
        y = np.asarray(metrics.get(key, []), dtype=float)
        if len(y) == len(t) and len(t):
            ax.plot(t, y, color="tab:blue", lw=1.5, marker="." if len(t) < 40 else None)
        for x in fails:
            ax.axvline(x, color="tab:red", lw=0.8, alpha=0.5)
        for x in recov:
            ax.axvline(x, color="tab:green", lw=0.8, alpha=0.5)
        if key == "alive":
            from matplotlib.ticker import MaxNLocator

            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("world time (red: failures, green: restarts / revivals)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def final_png(path: Path, sim_cfg, target, snapshot, hud: list[str], history: Sequence[float]) -> Path:
    """Draw ``snapshot`` (the last frame) off-screen over the target's heat map, with the planned
    paths of a planned deployment, and save it."""
    import pygame

    from simulator.live import renderer_for

    pygame.font.init()
    rc = sim_cfg.render
    r = renderer_for(target, np.asarray(sim_cfg.bounds), rc.width, rc.height, sim_cfg.eps, None, 0)
    if getattr(sim_cfg, "paths", None):
        r.paths = np.array([p.points for p in sim_cfg.paths])
    screen = pygame.Surface(r.size)
    r.draw(screen, snapshot.positions, snapshot.status, hud, list(history))
    pygame.image.save(screen, str(path))
    return path


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.4g}"


def _timing_line(t: dict | None) -> str:
    if not t or not t.get("states_sent"):
        return "  commands: none timed"
    on = t.get("on_time_fraction")
    return (f"  commands: {t['answered']} of {t['states_sent']} states answered, "
            f"{'n/a' if on is None else f'{100 * on:.1f} %'} within a tick, latency median "
            f"{_fmt(t.get('latency_ms_median'))} ms, p99 {_fmt(t.get('latency_ms_p99'))} ms")  # fmt: skip


def text_summary(summary: dict) -> str:
    """A few lines for the terminal at the end of a run."""
    f = summary.get("final") or {}
    m = summary.get("messages") or {}
    fates: dict[str, int] = {}
    for a in summary.get("agents", []):
        fates[a["fate"]] = fates.get(a["fate"], 0) + 1
    kinds: dict[str, int] = {}
    for e in summary.get("events", []):
        kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
    notable = {k: v for k, v in kinds.items() if k not in ("stats", "joined", "process_started", "bye")}
    lines = [
        f"run {summary['scenario']['name']}{' (INTERRUPTED)' if summary['interrupted'] else ''}: "
        f"{summary['fleet_size']} robots, {_fmt(f.get('t'))} world s "
        f"in {_fmt(summary.get('wall_seconds'))} wall s",
        f"  energy distance {_fmt(f.get('initial_energy_distance'))} -> {_fmt(f.get('energy_distance'))}"
        f"   Lloyd cost {_fmt(f.get('initial_lloyd_cost'))} -> {_fmt(f.get('lloyd_cost'))}"
        f"   alive {f.get('alive', 'n/a')}/{summary['fleet_size']}"
        f"   travelled {_fmt(f.get('distance_travelled'))}{' (planned)' if f.get('planned') else ''}",
        "  agents: " + (", ".join(f"{v} {k}" for k, v in sorted(fates.items())) or "none started here"),
        "  events: " + (", ".join(f"{v} {k}" for k, v in sorted(notable.items())) or "none"),
        _timing_line(summary.get("timing")),
        f"  radio: {m.get('sent', 0)} beacons sent, {m.get('delivered', 0)} copies delivered, "
        f"{m.get('dropped', 0)} dropped; {m.get('rejected', 0)} messages rejected",
        f"  folder: {summary['run_folder']} (summary.json, metrics.png, final.png, recording/)",
    ]
    return "\n".join(lines)
