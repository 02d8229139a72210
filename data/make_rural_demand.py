"""Make ``rural_demand.npy``: the cell-signal demand map of the ``balloons.toml`` scenario.

A 40 km x 24 km rural region on a 0.25 km grid (array ``values[ix, iy]``, shape (160, 96), float32,
see :class:`swarmcover.Raster`): four towns of different sizes, a highway across the region with
traffic along it, a thin rural background, and a lake with no demand at all (no balloon is useful
over it). Deterministic; run ``python data/make_rural_demand.py`` to rebuild the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTH, HEIGHT, CELL = 40.0, 24.0, 0.25
TOWNS = [  # (x, y) km, spread km, people (relative)
    ((8.0, 16.0), 1.6, 1.0),
    ((31.0, 7.0), 2.2, 1.6),
    ((23.0, 19.5), 0.9, 0.35),
    ((12.0, 5.0), 0.8, 0.3),
]
LAKE = ((20.0, 11.0), (4.5, 2.6))  # centre, semi-axes (km)


def highway(x: np.ndarray) -> np.ndarray:
    """The highway's y (km) at x: west to east, bending north of the lake."""
    return 9.0 + 0.12 * x + 3.2 * np.exp(-(((x - 20.0) / 6.0) ** 2))


def demand() -> np.ndarray:
    xs = (np.arange(round(WIDTH / CELL)) + 0.5) * CELL
    ys = (np.arange(round(HEIGHT / CELL)) + 0.5) * CELL
    x, y = np.meshgrid(xs, ys, indexing="ij")
    d = np.full(x.shape, 0.02)
    for (cx, cy), s, w in TOWNS:
        d += w * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * s * s))
    d += 0.25 * np.exp(-(((y - highway(x)) / 0.5) ** 2) / 2)
    (lx, ly), (ax, ay) = LAKE
    d[((x - lx) / ax) ** 2 + ((y - ly) / ay) ** 2 <= 1.0] = 0.0
    return (d / d.max()).astype(np.float32)


if __name__ == "__main__":
    out = Path(__file__).with_name("rural_demand.npy")
    np.save(out, demand())
    print(f"wrote {out}")
