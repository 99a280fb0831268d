"""Solve speed: the time of one `derive.solve.solve` call, warm (imports and pint loaded once).

Each case is a different path of the solver: a monomial (12·L·d²), a quadratic over an exact
parameter tree with a tie, a Max roofline solved piece by piece, and a step function solved
numerically. Baseline for scale: one forward `api.value` of the same quantity in the same run.

    python benchmarks/solve.py
"""

from __future__ import annotations

import statistics
import time

from derive import api
from derive.api import solve

CASES = [
    ("12·L·d² = 1B for d (1.5a)", lambda: solve("params.approx_layers", "1B", "d", L=16, multiple_of=128),
     lambda: api.value("params.approx_layers", L=16, d=2304)),
    ("LLaMA-style exact count = 1B for d, d_ff = 8d/3", lambda: solve(
        "params.total", "1B", "d", model="llama-7b", L=24, multiple_of=128, let={"d_ff": "8*d/3"}),
     lambda: api.value("params.total", model="llama-7b", L=24, d=1536, d_ff=4096)),
    ("decode step = 20 ms for b (Max, two pieces)", lambda: solve(
        "decode.step_time", "20ms", "b", model="llama-2-7b", hardware="h100", s=4096),
     lambda: api.value("decode.step_time", model="llama-2-7b", hardware="h100", s=4096, b=25)),
    ("LLaMA FFN rule with ceil (numeric)", lambda: solve(
        "params.total", "1B", "d", model="llama-7b", L=24, multiple_of=128, let={"d_ff": "256*ceil(8*d/3/256)"}),
     lambda: api.value("params.total", model="llama-7b", L=24, d=1792, d_ff=4864)),
]


def timed(fn, repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    t0 = time.perf_counter()
    CASES[0][1]()
    first = 1e3 * (time.perf_counter() - t0)
    print(f"derive solve benchmark (median of 7, warm; the first call, with imports, took {first:.0f} ms)")
    for name, solve_fn, forward_fn in CASES:
        solve_fn()
        ts, tf = timed(solve_fn), timed(forward_fn)
        print(f"  {name:<50} solve {ts * 1e3:7.1f} ms   (one forward api.value of it: {tf * 1e3:6.1f} ms)")


if __name__ == "__main__":
    main()
