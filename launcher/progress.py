"""Progress of long work on the launcher's output: a live bar (tqdm) on a terminal, plain lines in
logs and CI.

On a terminal the bar is redrawn in place at most every ``refresh`` wall seconds: the work done
(world seconds of a run, runs of a sweep), a status (live robots, energy distance) and an ETA from
tqdm's rate. Anything said meanwhile goes above the bar (``tqdm.write``), so the bar never tears a
line. Elsewhere (a pipe, a file) it prints one plain line every ``every`` wall seconds, which is
what a log or a CI run can read.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Progress on ``out`` of work measured from 0 to ``total`` (``unit``).

    Parameters
    ----------
    out : text stream
    total : float
    unit : str
    every : float
        Wall seconds between plain lines (not a terminal).
    bar : bool, optional
        Force the bar on or off; default: on exactly when ``out`` is a terminal.
    refresh : float
        Wall seconds between redraws of the bar.
    """

    def __init__(
        self,
        out: TextIO,
        total: float,
        unit: str = "world s",
        every: float = 5.0,
        bar: bool | None = None,
        refresh: float = 0.2,
    ) -> None:
        self.out, self.total, self.unit = out, float(total), unit
        self.every, self.refresh = every, refresh
        if bar is None:
            isatty = getattr(out, "isatty", None)
            bar = bool(isatty and isatty())
        self._bar = None
        # -inf, not 0: the monotonic clock starts near 0 at boot, and the first line is always due
        self._last_plain = -math.inf
        self._last_draw = -math.inf
        self._latest: tuple[float, Callable[[], str], Callable[[], str]] | None = None
        if bar:
            from tqdm import tqdm

            size = shutil.get_terminal_size((100, 24))
            self._bar = tqdm(
                total=self.total,
                unit=unit,
                file=out,
                # a terminal that says it is 0 x 0 (a bare pty) gets 100 x 24, not a hidden bar
                ncols=size.columns,
                nrows=size.lines,
                leave=True,
                mininterval=refresh,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:g} {unit} [{elapsed}<{remaining}{postfix}]",
            )

    @property
    def is_bar(self) -> bool:
        """Whether a live bar is drawn (the output is a terminal)."""
        return self._bar is not None

    def say(self, line: str) -> None:
        """Print ``line`` (above the bar, when there is one)."""
        if self._bar is not None:
            self._bar.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def update(
        self, done: float, status: Callable[[], str], line: Callable[[], str], force: bool = False
    ) -> None:
        """``done`` of ``total`` reached: redraw the bar with ``status()``, or, without a bar, print
        ``line()`` when ``every`` wall seconds have passed since the last (or ``force``)."""
        now = time.monotonic()
        self._latest = (done, status, line)
        if self._bar is not None:
            if force or now - self._last_draw >= self.refresh:
                self._last_draw = now
                self._bar.n = min(float(done), self.total)
                self._bar.set_postfix_str(status(), refresh=False)
                self._bar.refresh()
        elif force or now - self._last_plain >= self.every:
            self._last_plain = now
            self.say(line())

    def close(self) -> None:
        """Leave the bar as the work ended (its latest update drawn, one finished line)."""
        if self._bar is not None:
            if self._latest is not None:
                self.update(*self._latest, force=True)
            self._bar.close()
            self._bar = None
