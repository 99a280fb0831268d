"""A serving plan: LLaMA 2 70B for 100 users at 4096 tokens of context, 30 tokens/s each.

The engine answers with ``serving.min_gpus``: the fewest tensor-parallel devices whose memory holds
the BF16 weights plus every user's KV cache, and whose decode step (the roofline: the slower of
compute and memory) is short enough for 30 tokens/s per user. It says which constraint binds, then
this script prices the plan on several machines.

    python examples/serving_plan.py
    derive show serving.min_gpus --model llama-2-70b --hardware h100-sxm \\
        --set users=100 --set s=4096 --set tps_target=30
"""

from derive import api
from derive.errors import DeriveError
from derive.reports import render

MODEL, USERS, CONTEXT, TARGET = "llama-2-70b", 100, 4096, 30

plan = api.show("serving.min_gpus", model=MODEL, hardware="h100-sxm", users=USERS, s=CONTEXT, tps_target=TARGET)
print(render(plan, "text"))

print(f"the same plan on other machines ({MODEL}, {USERS} users × {CONTEXT} tokens, {TARGET} token/s each):")
print(f"  {'hardware':<11} {'devices':>7}  {'binds':<18} {'token/s/user':>12} {'$/hour':>7} {'$/1M tokens':>11}")
for hw in ("h100-sxm", "h200", "b200", "mi300x", "a100-80gb", "l40s"):
    try:
        d = api.show("serving.min_gpus", model=MODEL, hardware=hw, users=USERS, s=CONTEXT, tps_target=TARGET)
    except DeriveError as exc:
        print(f"  {hw:<11} {'-':>7}  {exc}")
        continue
    n = int(d.value)
    run = dict(model=MODEL, hardware=hw, b=USERS, s=CONTEXT, n_dev=n)
    rate = api.value("decode.tokens_per_second", **run)
    per_hour = api.value("cost.per_hour", hardware=hw, n_dev=n) * 3600
    per_million = api.value("cost.per_million_tokens", **run)
    binds = d.extra["binding"] + (f" ({d.extra['speed_side']})" if d.extra["binding"] == "speed" else "")
    print(f"  {hw:<11} {n:>7}  {binds:<18} {float(rate):>12.1f} {float(per_hour):>7.2f} {float(per_million):>11.3f}")
print("prices are the presets' approximate on-demand figures; pass --set price=… for a real quote")
