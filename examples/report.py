"""The whole picture in one call: Llama 2 70B on 8 H100s at an 8K context, then training it for 2T tokens.

`derive report` asks every quantity a deployment needs in one context — parameters, weights, KV cache,
inference memory, the largest batch on n_dev devices, time to first token, decode tokens/s, the crossover
batch, training memory with ZeRO, training time and cost — and names the quantity behind each line, so
`derive show ID` gives any line's derivation. A line that has no number says what it needs.

    python examples/report.py
    derive report --model llama-2-70b --hardware h100-sxm --set n_dev=8 --set s=8192
    derive report --model llama-2-70b --hardware h100-sxm --set n_dev=8 --set s=8192 --format json
"""

from derive import api
from derive.reports.summary import render_table, report_table

serving = api.report(model="llama-2-70b", hardware="h100-sxm", n_dev=8, s=8192)
print(render_table(report_table(serving), "text"))

for key in ("params_total", "kv_per_token", "kv_per_sequence", "max_users"):
    c = serving.cell(key)
    print(f"{key}: {c.exact}")
print("training time:", serving.cell("training_time").message)  # no D, no MFU given: said, not dropped

# the same model trained on 2T tokens on 1024 H100s at 40% MFU
training = api.report(model="llama-2-70b", hardware="h100-sxm", n_dev=1024, s=4096, D="2T", MFU="0.4")
for key in ("zero3", "training_time", "training_cost"):
    c = training.cell(key)
    print(f"{key}: {c.human} (exactly {c.exact})")
