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
    "metrics_figure",
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


_ROWS = (
    ("energy_distance", "energy distance", True),
    ("lloyd_cost", "Lloyd cost", True),
    ("underserved", "under-served demand", True),
    ("blob_energy", "blob energy", True),
    ("alive", "robots alive", False),
    ("distance", "distance travelled", False),
    ("on_time", "commands on time", False),
)
"""The panels of ``metrics.png``: metric key, label, and whether its minimum and final value are
marked (the coverage measures, where lower is better)."""


def _spans_decades(y: np.ndarray) -> bool:
    v = y[np.isfinite(y)]
    return bool(len(v) > 1 and v.min() > 0 and v.max() > 10 * v.min())


def _mark_min_and_final(ax, t: np.ndarray, y: np.ndarray) -> None:
    ok = np.isfinite(y)
    if not ok.any():
        return
    k = int(np.flatnonzero(ok)[np.argmin(y[ok])])
    last = int(np.flatnonzero(ok)[-1])
    right = t[k] > t[0] + 0.6 * (t[-1] - t[0])  # label to the left of a minimum near the end
    ax.plot([t[k]], [y[k]], marker="v", color="tab:purple", ms=6, zorder=3)
    ax.annotate(f"min {y[k]:.3g} (t {t[k]:.3g}){' = final' if last == k else ''}", (t[k], y[k]),
                xytext=(-4 if right else 4, 8), textcoords="offset points", fontsize=8, color="tab:purple",
                ha="right" if right else "left")  # fmt: skip
    if last != k:
        ax.plot([t[last]], [y[last]], marker="o", color="black", ms=4, zorder=3)
        ax.annotate(f"final {y[last]:.3g}", (t[last], y[last]), xytext=(-4, 8), textcoords="offset points",
                    fontsize=8, ha="right")  # fmt: skip


def metrics_png(path: Path, metrics: dict[str, Sequence[float]], events: Sequence[dict], title: str) -> Path:
    """Save :func:`metrics_figure` to ``path``."""
    import matplotlib.pyplot as plt

    fig = metrics_figure(metrics, events, title)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def metrics_figure(metrics: dict[str, Sequence[float]], events: Sequence[dict], title: str):
    """Plot the run's metrics (:data:`_ROWS`) against world time: a log axis where a curve spans
    more than a decade, the minimum and final value of each coverage measure marked and labelled,
    failure events as red lines, restarts and revivals as green ones; panels whose metric the run
    did not record (an older summary) are left out. Returns the matplotlib figure."""
    prepare_plotting()
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    t = np.asarray(metrics.get("t", []), dtype=float)
    rows = [r for r in _ROWS if r[0] in metrics or r[0] in ("energy_distance", "lloyd_cost", "alive")]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.6 * len(rows) + 1.5), sharex=True)
    fails = sorted({round(e["t"], 3) for e in events if e.get("kind") in FAILURE_EVENT_KINDS})
    recov = sorted({round(e["t"], 3) for e in events if e.get("kind") in _RECOVERY_KINDS and e["t"] > 0})
    for ax, (key, label, mark) in zip(axes, rows, strict=True):
        y = np.array([math.nan if v is None else v for v in metrics.get(key, [])], dtype=float)
        if len(y) == len(t) and len(t):
            ax.plot(t, y, color="tab:blue", lw=1.5, marker="." if len(t) < 40 else None)
            if _spans_decades(y):
                ax.set_yscale("log")
                label += " (log)"
            if mark:
                _mark_min_and_final(ax, t, y)
        for x in fails:
            ax.axvline(x, color="tab:red", lw=0.8, alpha=0.5)
        for x in recov:
            ax.axvline(x, color="tab:green", lw=0.8, alpha=0.5)
        if key == "alive":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        if key in ("on_time", "underserved") and ax.get_yscale() == "linear":
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        if key == "on_time":
            ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(label, fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_title(title)
    axes[-1].set_xlabel("world time (red: failures, green: restarts / revivals; v: minimum)")
    # margins in inches, fixed: tight_layout measured every label and took most of the picture's time
    h = fig.get_figheight()
    fig.subplots_adjust(left=0.12, right=0.97, top=1 - 0.45 / h, bottom=0.55 / h, hspace=0.18)
    return fig


def final_png(path: Path, sim_cfg, target, snapshot, hud: list[str], history: Sequence[float]) -> Path:
    """Draw ``snapshot`` (the last frame) off-screen over the target's heat map, with the planned
    paths of a planned deployment, and save it."""
    import pygame

    from swarmcover.simulator.live import renderer_for

    pygame.font.init()
    rc = sim_cfg.render
    r = renderer_for(target, np.asarray(sim_cfg.bounds), rc.width, rc.height, sim_cfg.eps, None, 0, rc.blobs)
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
    ]
    if summary.get("mode") == "vehicles":  # no simulator: no timing, no radio, telemetry not recording
        lines.append(f"  folder: {summary['run_folder']} (summary.json, metrics.png, final.png, telemetry/)")
        return "\n".join(lines)
    lines += [
        _timing_line(summary.get("timing")),
        f"  radio: {m.get('sent', 0)} beacons sent, {m.get('delivered', 0)} copies delivered, "
        f"{m.get('dropped', 0)} dropped; {m.get('rejected', 0)} messages rejected",
        f"  folder: {summary['run_folder']} (summary.json, metrics.png, final.png, recording/)",
    ]
    return "\n".join(lines)
