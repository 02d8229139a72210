"""Where an agent's field comes from: the body's patches, the last one held, or its own target.

A state with a patch is computed with that patch (if it was sensed for a stage of the agent's
schedules and covers the disc the law samples); a state without one with the last patch this body
sent, while it still covers the new position; else with the agent's own field for the stage in
force, when it holds a target (hardware: the demand map on board); else it is refused
(``docs/protocol.md``, "state").
"""

from __future__ import annotations

import logging

import numpy as np

from swarmcover.agentspec import AgentConfig
from swarmcover.local import patch_covers
from swarmcover.policy import AgentPolicy
from swarmcover.protocol import State
from swarmcover.schedule import Stage

__all__ = ["Field", "FieldSource"]

#: spline coefficients, origin and spacing of a field (or a patch of one)
Field = tuple[np.ndarray, np.ndarray, np.ndarray]


class FieldSource:
    """The field each state is computed with (see the module docstring)."""

    def __init__(self, cfg: AgentConfig, policy: AgentPolicy, log: logging.Logger) -> None:
        self.cfg, self.policy, self.log = cfg, policy, log
        # a config with one eps for ever takes patches for that eps at whatever smoothing the body
        # senses; with a schedule, a patch's eps and smoothing must be one of its stages
        self.strict_smoothing = cfg.schedule is not None
        self.target = self._target()
        self._own: dict[Stage, Field] = {}
        #: the last patch accepted: coefficients, origin, spacing, shape and its stage
        self.held: tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, ...], Stage] | None = None

    def _target(self):
        t = self.cfg.target
        if t is None:
            return None
        from swarmcover.targets import GaussianMixture, Uniform  # only an agent with a map of its own

        zones = [z.zone() for z in t.zones]
        if t.means:
            target = GaussianMixture(t.means, t.covs, t.weights, bounds=self.cfg.bounds, floor=t.floor,
                                     truncate=t.truncate, zones=zones)  # fmt: skip
        else:
            target = Uniform(self.cfg.bounds, floor=t.floor, zones=zones)
        return target.for_service() if t.objective == "service" else target

    def own(self, stage: Stage) -> Field:
        """The agent's own field for ``stage`` (from its on-board target), made once per stage."""
        got = self._own.get(stage)
        if got is None:
            from swarmcover.law import BlobLaw

            # with one eps for ever, the target's own smoothing; with a schedule, the stage's
            smooth = stage.smoothing if self.strict_smoothing else self.cfg.target.smoothing
            f = BlobLaw(self.target, stage.eps, self.cfg.mass, boundary=self.cfg.boundary,
                        cutoff=self.cfg.cutoff, target_smoothing=smooth).field  # fmt: skip
            got = self._own[stage] = (f.coef, f.origin, f.spacing)
        return got

    def forget(self) -> None:
        """A new body (a restarted simulator): its world may differ, wait for its own patch."""
        self.held = None

    def for_state(self, msg: State, coef: np.ndarray | None) -> tuple[Field, Stage] | None:
        """The field to compute ``msg`` with and the stage it was sensed for, or None (refused)."""
        x = np.asarray(msg.position, dtype=np.float64)
        if msg.patch is not None:
            p = msg.patch
            stage = self.policy.knows(p.eps, p.smoothing if self.strict_smoothing else None)
            if coef is None or stage is None:
                self.log.warning("patch for eps %g, smoothing %s: not a stage of this agent's schedule",
                                 p.eps, p.smoothing)  # fmt: skip
                return None
            origin, spacing = np.array(p.origin), np.array(p.spacing)
            if not patch_covers(origin, spacing, tuple(p.shape), x, 0.5 * self.policy.radius(stage)):
                self.log.warning("patch does not cover the midpoints with every neighbour in range")
                return None
            self.held = (coef, origin, spacing, tuple(p.shape), stage)
            return (coef, origin, spacing), stage
        if self.held is not None:
            c, o, h, shape, stage = self.held
            if patch_covers(o, h, shape, x, 0.5 * self.policy.radius(stage)):
                return (c, o, h), stage
        if self.target is not None:
            stage = self.policy.clock.stage(msg.world_time)
            return self.own(stage), stage
        self.log.warning("state without a field patch, and none held covers its position")
        return None
