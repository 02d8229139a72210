"""Benchmark of the blob law in 2-D: ms per evaluation of all velocities.

Pairwise (k-d tree + compiled pair kernel) at n = 1e3, 1e4, 1e5; particle-mesh at n = 1e4 .. 1e6;
the mesh on its default grid (spacing eps/2, at most 1024 cells a side); a naive all-pairs
numpy version of the same closed form as the baseline (where it fits in memory).
eps is the fleet spacing 1/sqrt(n) on the unit square (about 100 neighbours each within the 4 sqrt2 eps
cutoff), target a two-component Gaussian mixture, reflecting walls. Reports the median of repeats.

    python benchmarks/law.py [--quick] [--json benchmarks/results/law.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from swarmcover import BlobLaw, GaussianMixture


def naive_all_pairs(law: BlobLaw, x: np.ndarray) -> np.ndarray:
    """The closed form over all n^2 pairs in plain numpy (no truncation, no walls)."""
    eps, n = law.eps, x.shape[0]
    z = x[:, None, :] - x[None, :, :]
    g = np.exp(-np.einsum("ijk,ijk->ij", z, z) / (4 * eps**2)) / (4 * math.pi * eps**2)
    w, gw = law.field.sample(((x[:, None, :] + x[None, :, :]) / 2).reshape(-1, 2))
    w, gw = w.reshape(n, n), gw.reshape(n, n, 2)
    return np.sum((1 / n) * g[..., None] * (z / (2 * eps**2) * w[..., None] - 0.5 * gw), axis=1)


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (JIT, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--json", default="benchmarks/results/law.json")
    args = ap.parse_args()
    target = GaussianMixture([[0.3, 0.4], [0.7, 0.6]], [0.02, 0.04], [0.4, 0.6], bounds=[(0, 1), (0, 1)])
    rng = np.random.default_rng(0)
    rows = []
    pair_sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    mesh_sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    for n in sorted(set(pair_sizes) | set(mesh_sizes)):
        x = rng.random((n, 2))
        eps = 1 / math.sqrt(n)
        law = BlobLaw(target, eps, 1 / n)
        reps = 7 if n <= 10_000 else 3
        if n in pair_sizes:
            ev = law.evaluate(x, method="pairwise")
            ms = median_ms(lambda law=law, x=x: law.velocities(x, method="pairwise"), reps)
            from scipy.spatial import cKDTree

            pairs = len(cKDTree(x).query_pairs(law.radius, output_type="ndarray"))
            rows.append(dict(method="pairwise", n=n, ms=ms, pairs=pairs, ns_per_pair=ms * 1e6 / pairs))
            assert np.all(np.isfinite(ev.velocities))
        if n in mesh_sizes:
            from swarmcover.mesh import mesh_shape

            ms = median_ms(lambda law=law, x=x: law.velocities(x, method="mesh"), reps)
            grid = "x".join(map(str, mesh_shape(law)))
            rows.append(dict(method=f"mesh {grid}", n=n, ms=ms))
        if n <= 10_000 and n in pair_sizes:
            ms = median_ms(lambda law=law, x=x: naive_all_pairs(law, x), 3 if n > 1000 else 5)
            rows.append(dict(method="naive all-pairs numpy", n=n, ms=ms))
    print(f"{'method':<24}{'n':>10}{'ms/step':>12}{'ns/pair':>10}")
    for r in rows:
        per = f"{r['ns_per_pair']:.0f}" if "ns_per_pair" in r else ""
        print(f"{r['method']:<24}{r['n']:>10}{r['ms']:>12.1f}{per:>10}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(machine=platform.machine(), processor=platform.processor(), python=platform.python_version())
    out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
