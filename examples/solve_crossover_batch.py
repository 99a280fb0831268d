"""The decode batch at which an H100 turns compute-bound, with and without KV-cache reads.

A decode step computes 2·N·b FLOPs and reads the weights (N·bytes_w) plus, per sequence, its KV
cache. Without KV reads the batch where compute time equals memory time is F_peak·bytes_w/(2·BW)
for every model (N cancels). With KV reads the cache grows with b as fast as the FLOPs do, so the
crossover moves out, and beyond some context there is none: the solver says so.

    python examples/solve_crossover_batch.py
    derive solve decode.compute_time=decode.memory_time --for b --hardware h100 --option kv_reads=off
    derive solve decode.compute_time=decode.memory_time --for b --hardware h100 --model llama-2-70b --set s=1024
"""

from derive.api import solve
from derive.errors import Infeasible

#: the textbook roofline this example explains: 2N FLOPs per token, every weight read per step
TEXTBOOK = {"flops_model": "rule", "weight_reads": "all"}

no_kv = solve("decode.compute_time", "decode.memory_time", "b", hardware="h100",
              options={"kv_reads": "off", **TEXTBOOK})
print(no_kv.render("text"))
print("answer:")
print(f"  without KV reads (weights only, any model): b* = {no_kv.value_text} -> "
      f"compute-bound from b = {int(no_kv.candidates[-1].value)}")

for model in ("llama-2-7b", "llama-2-70b"):
    for s in (256, 1024, 4096):
        try:
            sol = solve("decode.compute_time", "decode.memory_time", "b", hardware="h100", model=model, s=s,
                        options=TEXTBOOK)
            print(f"  with KV reads, {model}, context {s:>5,}: b* = {sol.value_float:,.1f}")
        except Infeasible as exc:  # the only root is negative: each sequence adds more read time than compute
            assert "negative" in str(exc)
            print(f"  with KV reads, {model}, context {s:>5,}: no crossover (the only root is negative): each "
                  "sequence adds more KV-read time than compute time, decode stays memory-bound")
