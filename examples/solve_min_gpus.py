"""The smallest number of H100s that serves LLaMA 2 70B to 100 users at 4096 context.

Two targets, each solved for n_dev with tensor parallelism: memory (each device's share of the
weights and of the 100 KV caches must fit in its 80 GiB) and speed (each user decodes at least 20
tokens/s on the roofline). The answer is the larger of the two smallest whole counts; the forward
quantity serving.min_gpus, which takes the ceiling directly, must agree.

    python examples/solve_min_gpus.py
    derive solve 'serving.memory_per_device<=M_dev' --for n_dev --model llama-2-70b --hardware h100 \\
        --set users=100 --set s=4096
    derive solve 'decode.tokens_per_second>=20 token/s' --for n_dev --model llama-2-70b --hardware h100 \\
        --set b=100 --set s=4096
"""

from derive import api
from derive.api import solve

#: the textbook roofline this example was written under: 2N FLOPs per token, every weight read per step, no
#: tensor-parallel communication and all of the 80 GiB usable (serving.min_gpus models all of these)
TEXTBOOK = {"flops_model": "rule", "weight_reads": "all", "allreduce": "none", "fit": "ignore"}
common = dict(model="llama-2-70b", hardware="h100", s=4096, mem_util=1, options=TEXTBOOK)
memory = solve("serving.memory_per_device", "M_dev", "n_dev", at_most=True, users=100, **common)
speed = solve("decode.tokens_per_second", "20 token/s", "n_dev", at_least=True, b=100, **common)
print(memory.render("text"))
print(speed.render("text"))

n_mem, n_speed = int(memory.recommended.value), int(speed.recommended.value)
forward = api.value("serving.min_gpus", users=100, tps_target=20, **common)
print("answer:")
print(f"  memory: n_dev ≥ {memory.value_float:.3f} -> {n_mem} H100s "
      f"({int(memory.recommended.quantity_value) / 2**30:,.2f} GiB used of 80 GiB on each)")
print(f"  speed:  n_dev ≥ {speed.value_float:.3f} -> {n_speed} H100s "
      f"({float(speed.recommended.quantity_value):.1f} tokens/s per user)")
print(f"  smallest number of H100s: {max(n_mem, n_speed)} (serving.min_gpus agrees: {forward})")
assert max(n_mem, n_speed) == forward
