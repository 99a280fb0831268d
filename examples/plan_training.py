"""Plan a training run: every valid layout of Llama 3 8B on 64 A100s, ranked by time to train and cost.

Run: python examples/plan_training.py
The same search as `derive plan training --model llama-3-8b --hardware a100-80gb --set n_dev=64 --set s=4096
--set global_batch=512 --set D=300B`: tp divides the 32 heads, pp·vpp the 32 layers, dp·b the global batch; each
layout's peak memory per device must fit in 0.9 × 80 GiB; the best is shown with its step time term by term.
"""

from __future__ import annotations

from derive import api
from derive.formulas.plan import plan_training

RUN = dict(model="llama-3-8b", hardware="a100-80gb", n_dev=64, s=4096, global_batch=512, D="300B")


def main() -> None:
    ctx = api.context(**RUN)
    ctx.user_sets = frozenset({"n_dev", "s", "global_batch", "D"})
    plan = plan_training(ctx)
    print(f"{len(plan.results):,} layouts, {len(plan.valid):,} fit; {plan.steps:,.1f} steps")
    for r in plan.results[:3]:
        print(f"#{r.rank} {r.cand.label()}: step {r.step_time:.3f} s, {r.time_to_train / 86400:.2f} days, "
              f"${r.cost:,.0f}, MFU {r.mfu:.1%}, {r.memory / 2**30:.1f} GiB per device")
    best = plan.best
    d = api.show("training.step_time", **{**RUN, **best.cand.sets(), "options": best.cand.options()})
    print(f"best step time {d.human} = " + " + ".join(f"{k} {v:.3f} s" for k, v in best.terms.items()))
    worst = plan.results[-1]
    print(f"the last: {worst.cand.label()}: {worst.reason}")


if __name__ == "__main__":
    main()
