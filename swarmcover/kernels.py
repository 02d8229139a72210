r"""The registry of the law's twin implementations: one import for numpy, numba and C.

Each compute-heavy piece of an agent's tick exists as plain numpy (always there), as numba (the
fleet-wide law, compiled on first use: ``swarmcover/_kernels.py``) and, optionally, in C
(``swarmcover/_hotpath.c``, built at install when a compiler is present). Every caller asks this
module, never imports the extension itself:

- :func:`hotpath` gives the C twin of a piece by name (``velocity``, ``rows_ok``, ``nearest2``,
  ``farthest2``, ``table_update``, ``command``), or ``None`` when the extension was not built
  (the caller then runs its numpy twin: the tests cross-check them);
- :func:`resolve_kernel` turns an agent's ``kernel`` setting into the one that will run;
- :func:`law_radius` is the law's radius :math:`r = c\,\sqrt2\,\varepsilon`, defined once.
"""

from __future__ import annotations

import importlib
import math
from types import ModuleType

__all__ = ["KERNELS", "c_available", "hotpath", "law_radius", "resolve_kernel"]

#: the kernels an agent may name (``"auto"`` besides: C where built, else numpy)
KERNELS = ("numpy", "numba", "c")


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("swarmcover._hotpath")
    except ImportError:  # pragma: no cover - an install without a C compiler
        return None


_C = _load()


def hotpath(name: str):
    """The C function ``name`` of ``swarmcover/_hotpath.c``, or ``None`` when it was not built."""
    return None if _C is None else getattr(_C, name)


def c_available() -> bool:
    """Whether the C extension was built (it is optional)."""
    return _C is not None


def resolve_kernel(kernel: str) -> str:
    """``"auto"``: ``"c"`` if built, else ``"numpy"``; a kernel named outright is checked (``"c"``
    when it was not built is a ``ValueError`` saying so)."""
    if kernel == "auto":
        return "c" if c_available() else "numpy"
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be 'auto' or one of {KERNELS}, got {kernel!r}")
    if kernel == "c" and not c_available():
        raise ValueError(
            "kernel 'c' was not built with this install (no C compiler at install time?): "
            "use 'auto' or 'numpy', or reinstall with a compiler"
        )
    return kernel


def law_radius(eps: float, cutoff: float) -> float:
    r"""The law's radius :math:`r = \text{cutoff}\cdot\sqrt2\,\varepsilon`: pairs at least this far
    apart contribute nothing (the kernel :math:`\phi_{\sqrt2\varepsilon}` is cut there)."""
    return cutoff * math.sqrt(2.0) * eps
