"""Planner speed: the 1,024-GPU search of `derive plan training` (Llama 3 70B on H100s, 15T tokens of 8,192,
global batch 2,048), warm and cold.

The search enumerates every valid layout (tp × pp × cp × dp × micro-batch × vpp × ZeRO × recomputation × schedule:
about 34,000), builds one formula family's trees per discrete choice (72), and evaluates each family's layouts at
once with NumPy, node by node. Baselines in the same run: one `api.value` of training.step_time for one layout
(what each layout would cost if the planner built its derivation), and the whole CLI command in a subprocess.
Target: a few seconds for the search; the ratio to one derivation says how much the numeric path saves.

    python benchmarks/plan.py
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from derive import api
from derive.formulas.plan import plan_training

sys.path.insert(0, str(Path(__file__).resolve().parent))
from solve import timed  # noqa: E402  (the benchmarks share one timer)

RUN = dict(model="llama-3-70b", hardware="h100-sxm", n_dev=1024, D="15T", s=8192, global_batch=2048)


def search() -> int:
    ctx = api.context(**RUN)
    ctx.user_sets = frozenset({"n_dev", "D", "s", "global_batch"})
    return len(plan_training(ctx).results)


def main() -> None:
    t0 = time.perf_counter()
    n = search()
    cold = time.perf_counter() - t0
    warm = timed(search, 3)
    one = timed(lambda: api.value("training.step_time", **RUN, tp=8, pp=4, b=1,
                                  options={"zero_stage": "1", "sp": "yes"}), 3)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "derive", "plan", "training", "--model", "llama-3-70b", "--hardware",
                    "h100-sxm", "--set", "n_dev=1024", "--set", "D=15T", "--set", "s=8192", "--set",
                    "global_batch=2048"], check=True, capture_output=True)
    cli = time.perf_counter() - t0
    print(f"derive plan benchmark: {n:,} layouts of 1,024 GPUs")
    print(f"  search, first in this process  {cold:6.2f} s")
    print(f"  search, warm (median of 3)     {warm:6.2f} s  = {warm / n * 1e6:.0f} µs per layout")
    print(f"  one layout's derivation        {one:6.3f} s  (× {n:,} layouts would be {one * n / 60:,.0f} min: "
          f"{one * n / warm:,.0f}× the search)")
    print(f"  the CLI command end to end     {cli:6.2f} s  (imports, search, the best's derivation, output)")


if __name__ == "__main__":
    main()
