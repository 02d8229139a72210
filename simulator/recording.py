"""Recording a run to disk as it goes, in files numpy reads without this package.

A run folder holds:

- ``meta.json``: roster, bounds, tick, the status code names, the config;
- ``chunks/NNNNNN.npz``: consecutive blocks of ticks, each with arrays ``t (k,)`` (world time),
  ``wall (k,)``, ``positions (k, n, d)``, ``commands (k, n, d)``, ``status (k, n)`` (uint8 codes,
  see ``meta.json``). A chunk is written to a temporary name and renamed, so every chunk present is
  complete; one is written at least every ``flush_every`` wall seconds, so a crash loses at most that;
- ``events.jsonl``: one JSON object per line (``t``, ``wall``, ``kind``, ``agent_id`` where one
  applies, and details), flushed as each is written.

Read it back with plain numpy::

    import glob, json, numpy as np
    chunks = [np.load(f) for f in sorted(glob.glob("RUN/chunks/*.npz"))]
    positions = np.concatenate([c["positions"] for c in chunks])
    events = [json.loads(line) for line in open("RUN/events.jsonl")]

or with :func:`load_recording`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmcover.logbudget import LogBudget

from .world import Snapshot

__all__ = ["Recorder", "Recording", "load_recording"]

log = logging.getLogger("swarmcover.sim.recording")


class Recorder:
    """Stream snapshots and events into the run folder ``path`` (created; must not hold a recording)."""

    def __init__(self, path: str | Path, meta: dict, flush_every: float = 1.0) -> None:
        self.path = Path(path)
        if (self.path / "meta.json").exists():
            raise ValueError(f"{self.path} already holds a recording; choose another folder")
        (self.path / "chunks").mkdir(parents=True, exist_ok=True)
        self._write_atomic(self.path / "meta.json", json.dumps(meta, indent=1).encode())
        self._events = open(self.path / "events.jsonl", "a", encoding="utf-8")
        self.flush_every = flush_every
        self._rows: list[Snapshot] = []
        self._walls: list[float] = []
        self._chunk = 0
        self._last_flush = time.monotonic()
        self.closed = False
        self.write_failures = 0
        self._quiet = LogBudget(log)

    @staticmethod
    def _write_atomic(dest: Path, data: bytes) -> None:
        tmp = dest.with_name(dest.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)

    def snapshot(self, snap: Snapshot, wall: float) -> None:
        self._rows.append(snap)
        self._walls.append(wall)
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()

    def event(self, t: float, kind: str, agent_id: int | None = None, **details) -> None:
        row = {"t": float(t), "wall": time.time(), "kind": kind}
        if agent_id is not None:
            row["agent_id"] = int(agent_id)
        row.update(details)
        self._events.write(json.dumps(row) + "\n")
        self._events.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        self._events.flush()
        if not self._rows:
            return
        import io

        buf = io.BytesIO()
        np.savez(
            buf,
            t=np.array([s.t for s in self._rows]),
            wall=np.array(self._walls),
            positions=np.stack([s.positions for s in self._rows]),
            commands=np.stack([s.commands for s in self._rows]),
            status=np.stack([s.status for s in self._rows]),
        )
        try:
            self._write_atomic(self.path / "chunks" / f"{self._chunk:06d}.npz", buf.getvalue())
        except OSError as exc:  # e.g. EMFILE while a flood of connections holds the descriptors
            self.write_failures += 1
            what = "recording chunk %d not written (kept, retried at the next flush): %s"
            self._quiet.warning("chunk", what, self._chunk, exc)
            return
        self._chunk += 1
        self._rows, self._walls = [], []

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self._events.close()
            self.closed = True


@dataclass(frozen=True)
class Recording:
    """A run read back: ``t (k,)``, ``wall (k,)``, ``positions``/``commands (k, n, d)``,
    ``status (k, n)``, ``events`` (list of dicts) and ``meta``."""

    t: np.ndarray
    wall: np.ndarray
    positions: np.ndarray
    commands: np.ndarray
    status: np.ndarray
    events: list[dict]
    meta: dict


def load_recording(path: str | Path) -> Recording:
    """Read a run folder (complete, or cut off by a crash: everything up to its last flush)."""
    p = Path(path)
    if not (p / "meta.json").is_file():
        raise ValueError(f"{p} is not a recording (no meta.json)")
    meta = json.loads((p / "meta.json").read_text())
    n, d = len(meta["roster"]), len(meta["bounds"])
    chunks = [np.load(f) for f in sorted((p / "chunks").glob("*.npz"))]
    events = []
    if (p / "events.jsonl").is_file():
        for line in (p / "events.jsonl").read_text().splitlines():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut off by a crash
                break

    def cat(key: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
        return np.concatenate([c[key] for c in chunks]) if chunks else np.empty((0, *shape), dtype=dtype)

    return Recording(
        t=cat("t", ()),
        wall=cat("wall", ()),
        positions=cat("positions", (n, d)),
        commands=cat("commands", (n, d)),
        status=cat("status", (n,), np.uint8),
        events=events,
        meta=meta,
    )
