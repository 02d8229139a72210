"""Studies past one run: every combination of a grid of scenario values, over seeds.

``swarmcover sweep FILE --grid failures.0.fraction=0.1,0.2,0.3 --seeds 0-49 --jobs 2`` runs one
``swarmcover launch`` per case (a combination and a seed), each into its own folder under the
sweep's folder, and after every finished case rewrites ``sweep.json`` (one row a case: the swept
values, the seed, final and minimum energy distance, locational cost, the recovery time after
each failure, the fraction of commands on time, or the error that ended it) and ``sweep.png``.

A sweep stopped (Ctrl-C, SIGTERM, or killed outright: each launch is tied to the sweep's life and
stops in order when it goes) is resumed by running the same command again: a case whose folder
holds a complete summary counts as done and is not run again; an unfinished folder is cleared and
its case run again. A case that fails (a bad value, a launch that exits with an error) is a row
with its error, not a lost sweep.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .report import FAILURE_EVENT_KINDS, write_json_atomic
from .scenario import parse_value

__all__ = ["Case", "Sweep", "parse_grid", "parse_seeds", "recovery_times", "sweep_png"]

log = logging.getLogger("swarmcover.sweep")

SWEEP_SCHEMA = "swarmcover.sweep/1"
RECOVERED = 1.1  # recovered: the energy distance is back within 10 % of its value before the failure


@dataclass(frozen=True)
class Case:
    """One run of a sweep: ``values`` (``{key: value}``) and ``seed``; ``name`` is its folder."""

    values: tuple[tuple[str, object], ...]
    seed: int

    @property
    def name(self) -> str:
        parts = [f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in self.values] + [
            f"seed={self.seed}"
        ]
        return re.sub(r"[^A-Za-z0-9_.=,+-]+", "_", "__".join(parts))

    def overrides(self) -> list[str]:
        return [f"seed={self.seed}"] + [f"{k}={_toml(v)}" for k, v in self.values]


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas that are not inside brackets or braces."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def parse_grid(items: list[str]) -> dict[str, list]:
    """``["key=v1,v2", ...]`` (values in TOML syntax) to ``{key: [v1, v2]}``; ``ValueError`` names
    a malformed item."""
    grid: dict[str, list] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ValueError(
                f"--grid {item!r}: expected key=value1,value2 (e.g. failures.0.fraction=0.1,0.2)"
            )
        if key in grid:
            raise ValueError(f"--grid {key} given twice")
        grid[key] = [parse_value(v.strip()) for v in _split_top(values)]
    return grid


def parse_seeds(text: str) -> list[int]:
    """``"0-49"``, ``"3"`` or ``"0,2,5-7"`` to a sorted list of seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        try:
            lo, hi = int(a), int(b) if b else int(a)
        except ValueError:
            raise ValueError(f"--seeds {text!r}: expected seeds like 0-49 or 1,3,5") from None
        if lo < 0 or hi < lo or hi - lo > 100_000:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a range of seeds >= 0")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


def recovery_times(summary: dict, merge: float = 5.0) -> list[dict]:
    """How long the fleet took to recover from each failure episode: ``{"t", "kinds",
    "recovery"}``.

    An episode is a run of failure events (kills, terminations, detected or injected failures)
    less than ``merge`` world seconds apart (a SIGKILL and its detection a second later are one);
    ``t`` is its first event. The fleet has recovered when its energy distance, having risen above
    :data:`RECOVERED` times its value just before ``t``, is back under it: ``recovery`` is that
    moment less ``t``; 0 if it never rose that far; None if it had not come back by the run's end."""
    m = summary.get("metrics") or {}
    t = np.asarray(m.get("t", []), dtype=float)
    ed = np.asarray([math.nan if v is None else v for v in m.get("energy_distance", [])], dtype=float)
    events = sorted(
        (float(e["t"]), e["kind"]) for e in summary.get("events", []) if e.get("kind") in FAILURE_EVENT_KINDS
    )
    episodes: list[tuple[float, set]] = []
    last = -math.inf
    for te, kind in events:
        if te - last >= merge or not episodes:
            episodes.append((te, set()))
        episodes[-1][1].add(kind)
        last = te
    out = []
    for tf, kinds in episodes:
        before = ed[(t < tf) & np.isfinite(ed)]
        rec = None
        if len(before):
            bound = RECOVERED * before[-1]
            later = np.nonzero((t > tf) & np.isfinite(ed))[0]
            above = later[ed[later] > bound]
            if not len(above):
                rec = 0.0
            else:
                back = later[(later > above[0]) & (ed[later] <= bound)]
                rec = float(t[back[0]] - tf) if len(back) else None
        out.append({"t": round(tf, 3), "kinds": sorted(kinds), "recovery": rec})
    return out


def row_of(case: Case, folder: Path, rc: int | None, error: str | None) -> dict:
    """The row of a finished case: its values, and its summary's numbers or its error."""
    row: dict = {"case": case.name, **dict(case.values), "seed": case.seed, "folder": folder.name, "rc": rc}
    summary = _complete(folder)
    if summary is None:
        row["error"] = error or f"no complete summary.json (exit status {rc})"
        return row
    ed = [v for v in summary["metrics"].get("energy_distance", []) if v is not None]
    f = summary.get("final") or {}
    timing = summary.get("timing") or {}
    row.update({
        "final_energy_distance": f.get("energy_distance"),
        "min_energy_distance": min(ed) if ed else None,
        "initial_energy_distance": f.get("initial_energy_distance"),
        "lloyd_cost": f.get("lloyd_cost"),
        "alive": f.get("alive"),
        "recovery": recovery_times(summary),
        "on_time": timing.get("on_time_fraction"),
        "wall_seconds": summary.get("wall_seconds"),
    })  # fmt: skip
    return row


def _complete(folder: Path) -> dict | None:
    """The folder's summary if the run ended whole (not interrupted), else None."""
    try:
        summary = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    return None if summary.get("interrupted", True) else summary


class Sweep:
    """Every case of ``grid`` x ``seeds`` for ``scenario``, into ``out``, ``jobs`` at a time.

    ``overrides`` (``--set``) and ``duration`` apply to every case. :meth:`run` blocks; SIGINT
    and SIGTERM stop it in order (running launches are told to stop; their cases are run again
    on resume)."""

    def __init__(self, scenario: str | Path, grid: dict[str, list], seeds: list[int], out: str | Path, *,
                 jobs: int = 1, overrides: list[str] | None = None, duration: float | None = None,
                 cluster: str | None = None, say=print) -> None:  # fmt: skip
        if jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {jobs}")
        if cluster is not None:  # each run places its agents there (checked now, not in every run)
            from .cluster import parse_cluster

            parse_cluster(cluster)
        self.cluster = cluster
        self.scenario, self.out, self.jobs = Path(scenario), Path(out), int(jobs)
        if not self.scenario.is_file():
            raise ValueError(f"scenario file not found: {self.scenario}")
        self.grid, self.seeds = grid, seeds
        self.overrides, self.duration, self.say = list(overrides or []), duration, say
        self.spec = {"scenario": str(self.scenario.resolve()), "grid": grid, "seeds": seeds,
                     "overrides": self.overrides, "duration": duration}  # fmt: skip
        keys = list(grid)
        self.cases = [
            Case(tuple(zip(keys, combo, strict=True)), s)
            for combo in itertools.product(*(grid[k] for k in keys))
            for s in seeds
        ]
        self.rows: dict[str, dict] = {}
        self.stopping = False

    # ------------------------------------------------------------------ folder
    def _open(self) -> None:
        """Make or reopen the sweep's folder; the rows of cases already done are kept."""
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "sweep.json"
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except ValueError:
                raise ValueError(f"{path} is not a sweep's JSON; choose another --out") from None
            if old.get("spec") != json.loads(json.dumps(self.spec)):
                raise ValueError(f"{self.out} holds another sweep (its spec: {old.get('spec')}); "
                                 "run the same command to resume it, or choose another --out")  # fmt: skip
        for case in self.cases:
            folder = self.out / case.name
            if _complete(folder) is not None:  # done before (even by a launch that outlived its sweep)
                self.rows[case.name] = row_of(case, folder, 0, None)
            elif (self.out / f"{case.name}.failed.json").exists():
                self.rows[case.name] = json.loads((self.out / f"{case.name}.failed.json").read_text())

    def _write(self) -> None:
        rows = [self.rows[c.name] for c in self.cases if c.name in self.rows]
        write_json_atomic(self.out / "sweep.json", {"schema": SWEEP_SCHEMA, "spec": self.spec, "rows": rows})
        try:
            sweep_png(self.out / "sweep.png", rows, self.grid)
        except Exception:  # a plot must never cost the sweep its rows
            log.exception("could not draw sweep.png")

    # ------------------------------------------------------------------ cases
    def _start(self, case: Case) -> subprocess.Popen:
        folder = self.out / case.name
        if folder.exists():  # an unfinished run: start it over
            shutil.rmtree(folder)
        cmd = [sys.executable, "-m", "swarmcover.cli.main", "launch", str(self.scenario), "--headless",
               "--out", str(folder), "--progress", "3600", "--parent-pid", str(os.getpid())]  # fmt: skip
        for o in [*self.overrides, *case.overrides()]:
            cmd += ["--set", o]
        if self.duration is not None:
            cmd += ["--duration", repr(self.duration)]
        if self.cluster is not None:
            cmd += ["--cluster", self.cluster]
        log_path = self.out / f"{case.name}.log"
        with open(log_path, "wb") as log_file:
            return subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)

    def _finish(self, case: Case, proc: subprocess.Popen) -> None:
        folder, log_path = self.out / case.name, self.out / f"{case.name}.log"
        error = None
        if proc.returncode != 0:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-3:] if log_path.exists() else []
            error = " / ".join(tail) or f"exit status {proc.returncode}"
        row = row_of(case, folder, proc.returncode, error)
        if self.stopping and "error" in row:
            return  # stopped by us: run again on resume, no row
        self.rows[case.name] = row
        if "error" in row:  # kept beside the folders, so that a resume does not run it again
            write_json_atomic(self.out / f"{case.name}.failed.json", row)
        ed = row.get("final_energy_distance")
        self.say(
            f"  {case.name}: " + (f"error: {row['error']}" if "error" in row else f"energy distance {ed:.4g}")
        )

    def _on_signal(self, *_args) -> None:
        self.stopping = True

    def run(self) -> dict:
        """Run the missing cases; returns the sweep (``sweep.json``'s content)."""
        self._open()
        todo = [c for c in self.cases if c.name not in self.rows]
        self.say(f"swarmcover sweep: {len(self.cases)} cases ({len(self.cases) - len(todo)} done before), "
                 f"{self.jobs} at a time, into {self.out}")  # fmt: skip
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        running: dict[str, tuple[Case, subprocess.Popen]] = {}
        try:
            while (todo or running) and not (self.stopping and not running):
                while todo and len(running) < self.jobs and not self.stopping:
                    case = todo.pop(0)
                    running[case.name] = (case, self._start(case))
                for name, (case, proc) in list(running.items()):
                    if self.stopping and proc.poll() is None:
                        proc.send_signal(signal.SIGTERM)  # it writes its report, marked interrupted
                    if proc.poll() is not None:
                        del running[name]
                        self._finish(case, proc)
                        self._write()
                time.sleep(0.1)
        finally:
            for _case, proc in running.values():  # a second signal, or an error here
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            for s, h in old.items():
                signal.signal(s, h)
            self._write()
        rows = [self.rows[c.name] for c in self.cases if c.name in self.rows]
        failed = sum("error" in r for r in rows)
        self.say(f"swarmcover sweep: {len(rows)}/{len(self.cases)} cases done, {failed} failed"
                 + (" (stopped: run the same command to resume)" if self.stopping else ""))  # fmt: skip
        return {"schema": SWEEP_SCHEMA, "spec": self.spec, "rows": rows, "stopped": self.stopping}


def sweep_png(path: Path, rows: list[dict], grid: dict[str, list]) -> Path:
    """For each swept key: the final energy distance and the recovery time after failures against
    the key's values, each as the median over seeds (line) and the spread from the lowest to the
    highest (band and points); cases that failed are left out."""
    from .report import prepare_plotting

    prepare_plotting()
    import matplotlib.pyplot as plt

    good = [r for r in rows if "error" not in r]
    keys = list(grid)
    fig, axes = plt.subplots(2, len(keys), figsize=(5.0 * len(keys), 6.5), squeeze=False)
    for j, key in enumerate(keys):
        values = grid[key]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        xs = values if numeric else list(range(len(values)))
        for i, (what, label) in enumerate((("final_energy_distance", "final energy distance"),
                                           ("recovery", "recovery time after failures (s)"))):  # fmt: skip
            ax = axes[i][j]
            med, lo, hi = [], [], []
            for x, v in zip(xs, values, strict=True):
                ys = [_value(r, what) for r in good if r.get(key) == v]
                ys = [y for y in ys if y is not None]
                ax.scatter([x] * len(ys), ys, s=12, color="tab:blue", alpha=0.5)
                med.append(float(np.median(ys)) if ys else math.nan)
                lo.append(min(ys) if ys else math.nan)
                hi.append(max(ys) if ys else math.nan)
            ax.plot(xs, med, color="tab:blue", marker="o", lw=1.5, label="median over seeds")
            ax.fill_between(xs, lo, hi, color="tab:blue", alpha=0.15, label="lowest to highest")
            ax.set_ylabel(label)
            ax.set_xlabel(key)
            if not numeric:
                ax.set_xticks(xs, [str(v) for v in values])
            ax.grid(alpha=0.3)
        axes[0][j].legend(fontsize=8)
    n_fail = len(rows) - len(good)
    fig.suptitle(f"{len(good)} runs" + (f" ({n_fail} failed, not shown)" if n_fail else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _value(row: dict, what: str):
    """A row's number for ``what``; for ``recovery``, the longest recovery of the run (None if it
    had no failure; infinite if one never recovered, drawn as missing)."""
    if what != "recovery":
        return row.get(what)
    recs = [r["recovery"] for r in row.get("recovery") or []]
    if not recs:
        return None
    return None if any(r is None for r in recs) else max(recs)
