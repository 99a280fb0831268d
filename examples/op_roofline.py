"""A roofline for any operation on an H100: a matmul, the rows at which it turns compute-bound, an elementwise op,
attention fused vs unfused, and a matmul sharded over 8 chips with its all-reduce.

The same functions build the model-level roofline (roofline.ridge_point, roofline.crossover_batch,
decode.step_time), so an operation and a decode step are judged alike.

    python examples/op_roofline.py
    derive show op.matmul.time --set m_mm=4096 --set k_mm=4096 --set n_mm=4096 --hardware h100-sxm
    derive show op.matmul.crossover_m --set k_mm=4096 --set n_mm=4096 --hardware h100-sxm
    derive solve op.matmul.intensity=roofline.ridge_point --for m_mm --set k_mm=4096 --set n_mm=4096 --hardware h100
    derive show op.attention.unfused_bytes --model llama-2-7b --set b=1 --set s=4096
    derive show op.matmul.comm_time --set m_mm=4096 --set n_mm=4096 --set tp=8 --hardware h100-sxm
"""

from derive import api
from derive.errors import Infeasible

H100 = "h100-sxm"
SQUARE = {"m_mm": 4096, "k_mm": 4096, "n_mm": 4096}


def ms(v) -> str:
    return f"{float(v) * 1e3:.4g} ms"


print("matmul [4096, 4096] × [4096, 4096] in bf16 on an H100:")
flops = api.value("op.matmul.flops", **SQUARE)
moved = api.value("op.matmul.bytes", **SQUARE)
print(f"  FLOPs {int(flops):,}, bytes moved {int(moved):,}")
print(f"  intensity {float(api.value('op.matmul.intensity', **SQUARE)):.2f} FLOP/byte against the ridge point "
      f"{float(api.value('roofline.ridge_point', hardware=H100)):.2f} FLOP/byte")
d = api.show("op.matmul.time", hardware=H100, **SQUARE)
print(f"  time {ms(d.value)} ({d.extra['lines'][0].split(': ', 1)[1]})")

m_star = api.value("op.matmul.crossover_m", hardware=H100, k_mm=4096, n_mm=4096)
print(f"  turns compute-bound at m = {m_star} ≈ {float(m_star):.2f} rows (tokens)")
for m in (16, 4096):
    t = api.show("op.matmul.time", hardware=H100, m_mm=m, k_mm=4096, n_mm=4096)
    print(f"  m = {m:>5}: {ms(t.value)}, {t.extra['bound']}-bound")

print("the same matmul in fp8 (inputs, weights and output 1 B; F_peak the fp8 rate):")
fp8 = {"options": {"dtype": "fp8", "act_dtype": "fp8"}, "hardware": H100}
print(f"  turns compute-bound at m = {float(api.value('op.matmul.crossover_m', k_mm=4096, n_mm=4096, **fp8)):.2f}")

try:
    api.value("op.matmul.crossover_m", hardware=H100, k_mm=64, n_mm=64)
except Infeasible as exc:
    print(f"a [m, 64] × [64, 64] matmul: {exc}")

print("elementwise op over 4096 × 4096 bf16 elements (read one tensor, write one, 1 FLOP each):")
el = api.show("op.elementwise.time", hardware=H100, n_el=4096 * 4096)
print(f"  bytes {int(api.value('op.elementwise.bytes', n_el=4096 * 4096)):,}, time {ms(el.value)}")

print("attention of Llama 2 7B, one layer, b = 1, s = 4096 (bf16):")
att = {"model": "llama-2-7b", "b": 1, "s": 4096}
print(f"  fused (SDPA/Flash) bytes {int(api.value('op.attention.fused_bytes', **att)):,}; unfused "
      f"{int(api.value('op.attention.unfused_bytes', **att)):,} ({api.value('op.attention.traffic_ratio', **att)}×)")
print(f"  fused time {ms(api.value('op.attention.fused_time', hardware=H100, **att))}, unfused "
      f"{ms(api.value('op.attention.unfused_time', hardware=H100, **att))}")

print("the square matmul row-parallel over 8 H100s (NVLink, ring all-reduce of the [4096, 4096] output):")
comm = api.value("op.matmul.comm_time", hardware=H100, tp=8, **SQUARE)
total = api.value("op.matmul.sharded_time", hardware=H100, tp=8, **SQUARE)
print(f"  all-reduce {ms(comm)}; shard + all-reduce {ms(total)} (one chip alone: {ms(d.value)})")
print("answer:")
print(f"  4096³ bf16 matmul on an H100: {ms(d.value)}, compute-bound; compute-bound from m = {int(m_star) + 1}")
