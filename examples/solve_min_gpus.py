"""The smallest number of H100s that serves LLaMA 2 70B to 100 users at 4096 context.

Two targets, each solved for n_dev: memory (weights + 100 KV caches ≤ n_dev · 80 GiB with tensor
parallelism) and speed (each user decodes at least 20 tokens/s on the roofline). The answer is the
larger of the two smallest whole counts.

    python examples/solve_min_gpus.py
    derive solve 'memory.inference<=n_dev*M_dev' --for n_dev --model llama-2-70b --hardware h100 \\
        --set b=100 --set s=4096
    derive solve 'decode.tokens_per_second>=20 token/s' --for n_dev --model llama-2-70b --hardware h100 \\
        --set b=100 --set s=4096
"""

from derive.solve import solve

common = dict(model="llama-2-70b", hardware="h100", b=100, s=4096)
memory = solve("memory.inference", "n_dev*M_dev", "n_dev", at_most=True, **common)
speed = solve("decode.tokens_per_second", "20 token/s", "n_dev", at_least=True, **common)
print(memory.render("text"))
print(speed.render("text"))

n_mem, n_speed = int(memory.recommended.value), int(speed.recommended.value)
print("answer:")
print(f"  memory: n_dev ≥ {memory.value_float:.3f} -> {n_mem} H100s "
      f"({int(memory.recommended.quantity_value) / 2**30:,.1f} GiB of weights + KV cache in {n_mem} × 80 GiB)")
print(f"  speed:  n_dev ≥ {speed.value_float:.3f} -> {n_speed} H100s "
      f"({float(speed.recommended.quantity_value):.1f} tokens/s per user)")
print(f"  smallest number of H100s: {max(n_mem, n_speed)}")
