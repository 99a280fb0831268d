"""Size a deployment: Llama 2 7B for 64 users of 4,096 tokens on L4 cards, at most 100 ms per output token.

Run: python examples/plan_serving.py
Each tensor-parallel degree that divides the 32 heads within a node gets the most users a replica holds (weights/tp
+ users × KV/tp within 0.9 × 24 GiB) and meets the time per output token with; replicas cover the rest; the
binding constraint is named.
"""

from __future__ import annotations

from derive import api
from derive.formulas.plan import plan_serving

RUN = dict(model="llama-2-7b", hardware="l4", users=64, s=4096, tpot="100ms", ttft="5s")


def main() -> None:
    plan = plan_serving(api.context(**RUN))
    for o in plan.options:
        print(f"{o.label()}: {o.devices} devices, {o.batch} users per replica, {o.tpot * 1e3:.1f} ms per token, "
              f"binding: {o.binding}")
    for line in plan.rejected:
        print("rejected:", line)
    print("best:", plan.best.explain())


if __name__ == "__main__":
    main()
