"""The longest context LLaMA 2 7B can hold in BF16 on a 24 GiB card (one sequence).

Weights (exact count × 2 bytes) plus the KV cache of s tokens must fit in 24 GiB (binary: a
"24GB" card holds 24 GiB). Solved for s with the bound "at most"; activations and framework
overhead are not counted (the quantity says so).

    python examples/solve_longest_context.py
    derive solve 'memory.inference<=24GiB' --for s --model llama-2-7b --set b=1
"""

from derive import api
from derive.api import solve

sol = solve("memory.inference", "24GiB", "s", model="llama-2-7b", b=1, at_most=True, options={"dtype": "bf16"})
print(sol.render("text"))

rec = sol.recommended
budget = 24 * 2**30
print("answer:")
print(f"  longest context: s = {int(rec.value):,} tokens "
      f"(memory {int(rec.quantity_value):,} B of {budget:,} B; one more token needs "
      f"{int(api.value('memory.inference', model='llama-2-7b', b=1, s=int(rec.value) + 1)):,} B)")
print(f"  the same from the forward quantity kv_cache.max_context: "
      f"{int(api.value('kv_cache.max_context', model='llama-2-7b', M_dev='24GiB', b=1)):,} tokens")
