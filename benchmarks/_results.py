"""Writing a benchmark's JSON: its rows with the machine, the Python and the commit measured."""

from __future__ import annotations

import json
import platform
import subprocess
from pathlib import Path

__all__ = ["write_results"]


def _commit() -> str | None:
    try:
        git = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return git.stdout.strip()


def write_results(path: str | Path, rows: list[dict], **meta) -> Path:
    """Write ``{"meta": ..., "rows": rows}`` to ``path`` and say so."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = dict(python=platform.python_version(), machine=platform.machine(), commit=_commit(), **meta)
    out.write_text(json.dumps(dict(meta=info, rows=rows), indent=2))
    print(f"wrote {out}")
    return out
