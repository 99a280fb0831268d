"""Sweep speed: 10⁶ configurations of an exact parameter count, compiled by derive vs. written by hand.

The baseline is the same formula typed into NumPy in this run, on the same arrays, so the ratio
measures what lambdify costs (or saves), not the machine. Target: within 1.5×.

    python benchmarks/sweep.py
"""

from __future__ import annotations

import time

import numpy as np
import sympy as sp

from derive import symbols as S
from derive.sweep import _compile, sweep

REPEATS = 15
GRIDS = ["d=1024:13696:128", "L=1:100", "V=32000:131000:1000"]  # 100 × 100 × 100 = 10⁶ configurations


def best(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def hand(d, L, V):
    """LLaMA-7B's exact count typed by hand: untied embedding and head, SwiGLU d_ff = 11008, RMSNorm."""
    return 2 * V * d + L * (4 * d * d + 3 * d * 11008 + 2 * d) + d


def main() -> None:
    t0 = time.perf_counter()
    r = sweep("params.total", GRIDS, model="llama-7b")
    first = time.perf_counter() - t0
    assert r.size == 10**6, r.size
    d, L, V = (a.array for a in r.axes)
    db, Lb, Vb = d[:, None, None], L[None, :, None], V[None, None, :]
    assert np.array_equal(r.values, hand(db, Lb, Vb)), "compiled sweep disagrees with the hand formula"

    # 1. the sweep's own evaluation (broadcast grid, chunked) vs the hand formula on the same grid
    derive_grid = min(sweep("params.total", GRIDS, model="llama-7b").seconds for _ in range(REPEATS))
    hand_grid = best(lambda: hand(db, Lb, Vb))

    # 2. 10⁶ independent configurations (flat arrays): the compiled function vs the hand formula
    rng = np.random.default_rng(0)
    fd = rng.integers(1024, 16384, 10**6).astype(np.float64)
    fL = rng.integers(1, 100, 10**6).astype(np.float64)
    fV = rng.integers(32000, 256000, 10**6).astype(np.float64)
    fn = _compile(r.compiled, [S.d, S.L, S.V])
    assert np.array_equal(fn(fd, fL, fV), hand(fd, fL, fV))
    derive_flat = best(lambda: fn(fd, fL, fV))
    hand_flat = best(lambda: hand(fd, fL, fV))

    # 3. end to end: build the quantity, free d/L/V, compile and evaluate, vs the hand formula on the grid
    end_to_end = best(lambda: sweep("params.total", GRIDS, model="llama-7b"), 3)

    print("derive sweep benchmark: params.total of a LLaMA-7B-shaped model, 10^6 configurations (d × L × V)")
    print(f"  formula compiled: {sp.sstr(r.compiled)}")
    print(f"  first call (imports, context, compile, evaluate): {first * 1e3:8.1f} ms")
    print(f"  grid 100×100×100   derive {derive_grid * 1e3:8.2f} ms   hand NumPy {hand_grid * 1e3:8.2f} ms   "
          f"ratio {derive_grid / hand_grid:5.2f}×")
    print(f"  10^6 flat configs  derive {derive_flat * 1e3:8.2f} ms   hand NumPy {hand_flat * 1e3:8.2f} ms   "
          f"ratio {derive_flat / hand_flat:5.2f}×")
    print(f"  end to end sweep() {end_to_end * 1e3:8.2f} ms (quantity built, symbols freed, lambdify, evaluation)")
    print(f"  target: ratio within 1.5× — grid {'met' if derive_grid / hand_grid <= 1.5 else 'MISSED'}, "
          f"flat {'met' if derive_flat / hand_flat <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
