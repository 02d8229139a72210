"""Input validation shared by the public functions (raises ``ValueError`` naming the problem)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["as_masses", "as_points", "as_positive"]


def as_points(x: ArrayLike, dim: int | None = None, name: str = "positions") -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape ``(n, dim)``.

    Raises
    ------
    ValueError
        If ``x`` is not two-dimensional, has the wrong number of columns, or holds NaN/inf.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}: {exc}") from None
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), got shape {arr.shape}")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the domain's dimension), got {arr.shape[1]}")
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} holds a non-finite value (NaN or inf) at row {bad[0]}")
    return np.ascontiguousarray(arr)


def as_positive(value: float, name: str) -> float:
    """Return ``value`` as a finite float > 0, else raise ``ValueError``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def as_masses(mass: ArrayLike, n: int, name: str = "mass") -> np.ndarray:
    """Broadcast a scalar or per-agent ``mass`` to a finite, positive array of shape ``(n,)``."""
    m = np.asarray(mass, dtype=np.float64)
    if m.ndim == 0:
        m = np.full(n, float(m))
    if m.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got shape {m.shape}")
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"{name} must be finite and > 0 for every agent")
    return np.ascontiguousarray(m)
