"""What the world senses for each agent: field patches for the stage the agent asks for.

The fleet's schedules use a few (eps, smoothing) pairs (``SimConfig.sensing``: every stage of the
initial and the after-losses schedule). One field :math:`W, \\nabla W` is computed per pair when
the simulator starts (the same field :class:`swarmcover.BlobLaw` computes, so the agents and
:func:`swarmcover.cover` sense alike). An agent asks for a pair in its hello and in every command
(for its next state); a request for a pair the world does not serve is refused and counted, and
the agent keeps what it had. Each agent's held patch (origin, shape, pair, the tick that carried
it) decides whether the next state needs a new one: a patch stays local (half the law's radius
around the agent, half as wide again) and bounded (``MAX_PATCH_NODES`` per axis).
"""

from __future__ import annotations

import numpy as np

from swarmcover.kernels import law_radius
from swarmcover.law import BlobLaw
from swarmcover.local import patch_covers
from swarmcover.targets import Target
from swarmcover.wiretwins import Patch

__all__ = ["PATCH_MARGIN", "PATCH_RESEND_TICKS", "Sensing"]

# a patch reaches this much beyond the half width the law needs, so that the agent can reuse it
# for the next few ticks as it moves (a state then carries no patch: a few hundred bytes, not tens
# of kilobytes to slice, encrypt and copy)
PATCH_MARGIN = 0.5
PATCH_RESEND_TICKS = 5  # a patch not answered for this many ticks is sent again (see patch_for)


class Sensing:
    """Fields per (eps, smoothing) pair and the patch each of ``n`` agents holds.

    Parameters
    ----------
    target : Target
        What the law covers (the demand, or its service density).
    pairs : list of (eps, smoothing)
        Served pairs; the first is the default before an agent asks.
    n : int
    boundary, cutoff : see :class:`swarmcover.BlobLaw`.
    """

    def __init__(
        self, target: Target, pairs: list[tuple[float, float]], n: int, boundary: str, cutoff: float
    ) -> None:
        self.pairs = list(dict.fromkeys((float(e), float(s)) for e, s in pairs))
        self.fields = [
            BlobLaw(target, e, 1.0 / n, boundary=boundary, cutoff=cutoff, target_smoothing=s).field
            for e, s in self.pairs
        ]
        self.half = [0.5 * law_radius(e, cutoff) for e, _ in self.pairs]
        d = target.dim
        self.want = np.zeros(n, dtype=np.int64)  # the pair each agent asked for
        self.held = np.full(n, -1, dtype=np.int64)  # the pair of the patch it holds (-1: none)
        self.origin = np.zeros((n, d))
        self.shape = np.zeros((n, d), dtype=np.int64)
        self.tick = np.full(n, -1, dtype=np.int64)  # the tick of the state that carried it
        self.refused = 0

    @property
    def radius(self) -> float:
        """The largest law radius among the served pairs (the radio's default range)."""
        return 2.0 * max(self.half)

    def index(self, eps: float, smoothing: float | None) -> int | None:
        """The served pair for ``eps`` (and ``smoothing``, where given), or None."""
        for i, (e, s) in enumerate(self.pairs):
            if abs(e - eps) <= 1e-9 * e and (smoothing is None or abs(s - smoothing) <= 1e-9 * max(s, e)):
                return i
        return None

    def ask(self, k: int, eps: float, smoothing: float | None) -> bool:
        """Agent ``k`` asks for a pair; returns False (and counts it) if it is not served."""
        i = self.index(eps, smoothing)
        if i is None:
            self.refused += 1
            return False
        self.want[k] = i
        return True

    def reset(self, k: int) -> None:
        """Agent ``k`` is a new process: it holds no patch and has asked for nothing."""
        self.held[k], self.want[k] = -1, 0

    def patch_for(self, k: int, x: np.ndarray, tick: int, answered: int) -> tuple[Patch, np.ndarray] | None:
        """The patch agent ``k`` at ``x`` needs with the state of ``tick``, or None when the one
        it holds will do: the pair it asked for, covering ``x``, and not lost (no command has
        answered the state that carried it, nor a later one (``answered`` is the last tick
        answered), for ``PATCH_RESEND_TICKS`` ticks). Counting from the patch's own state, not
        from the latest: an agent that lags behind a busy machine has the patch, and sending it
        again with every state would only make it lag further."""
        i = int(self.want[k])
        field, half = self.fields[i], self.half[i]
        lost = answered < self.tick[k] and tick - self.tick[k] >= PATCH_RESEND_TICKS
        if (
            self.held[k] == i
            and not lost
            and patch_covers(self.origin[k], field.spacing, tuple(self.shape[k]), x, half)
        ):
            return None
        origin, coef = field.patch(x, half * (1.0 + PATCH_MARGIN))
        e, s = self.pairs[i]
        patch = Patch(
            eps=e,
            smoothing=s,
            origin=origin.tolist(),
            spacing=field.spacing.tolist(),
            shape=list(coef.shape[:-1]),
        )
        self.held[k], self.origin[k], self.shape[k], self.tick[k] = i, origin, coef.shape[:-1], tick
        return patch, coef
