"""Which width d gives a 1B-parameter LLaMA-style model at L=24, aligned to 128?

LLaMA-style: V = 32,000 (untied embedding and head), SwiGLU with LLaMA's own FFN rule
d_ff = 256·ceil(8d/3 / 256), RMSNorm, head size 128 (h = d/128). The exact parameter count is
solved, not only 12·L·d²; the rule of thumb is shown beside it for comparison.

    python examples/solve_width_for_1b.py
    derive solve params.total=1B --for d --model llama-7b --set L=24 --set V=32000 --multiple-of 128 \\
        --let 'd_ff=256*ceil(8*d/3/256)' --let 'h=d/128'
"""

from derive.api import solve

exact = solve("params.total", "1B", "d", model="llama-7b", L=24, V=32000, multiple_of=128,
              let={"d_ff": "256*ceil(8*d/3/256)", "h": "d/128"})
print(exact.render("text"))

# the same question with d_ff = 8d/3 exactly (no rounding to 256): a quadratic, solved in radicals
smooth = solve("params.total", "1B", "d", model="llama-7b", L=24, V=32000, multiple_of=128,
               let={"d_ff": "8*d/3", "h": "d/128"})
rule = solve("params.approx_layers", "1B", "d", L=24, multiple_of=128)

rec = exact.recommended
print("answer:")
print(f"  exact LLaMA-style count (d_ff = 256·ceil(8d/3/256)): the count crosses 1B at d ≈ {exact.value_float:,.1f}; "
      f"aligned to 128: d = {int(rec.value):,} (d_ff = {int(rec.ties['d_ff']):,}, h = {int(rec.value) // 128}) "
      f"gives {int(rec.quantity_value):,} parameters ({rec.relative:+.2%})")
for c in exact.candidates:
    print(f"    d = {int(c.value):,}: {int(c.quantity_value):,} parameters ({c.relative:+.2%})")
print(f"  with d_ff = 8d/3 exactly: d = {smooth.value_float:,.1f} "
      f"(multiples of 128 with a whole d_ff: {', '.join(f'{int(c.value):,}' for c in smooth.candidates)})")
print(f"  by the 12·L·d² rule alone: d = {rule.value_float:,.1f} -> {int(rule.recommended.value):,}; the embedding "
      f"and head (2·V·d) are what the rule leaves out")
