"""What measured numbers imply: a training run's time, cost and MFU from its logged tokens/s, the bandwidth
utilisation a decode rate means, FLOPs per dollar, and a request's end-to-end latency.

Run: python examples/measured_inputs.py
"""

from __future__ import annotations

from derive import api
from derive.api import solve

RUN = dict(model="llama-3-8b", hardware="h100-sxm", D="1T", n_dev=64, tps_device=3000)


def main() -> None:
    t = api.value("training.time", **RUN)
    print(f"training time from 3,000 tokens/s per device: {float(t):,.0f} s = {float(t) / 86400:.2f} days")
    print(f"cost: ${float(api.value('training.cost', **RUN)):,.0f}")
    mfu = api.value("training.mfu", model="llama-3-8b", hardware="h100-sxm", s=4096, tps_device=3000)
    print(f"MFU it implies at s = 4096 (exact model FLOPs): {float(mfu):.2%}")
    rule = api.value("training.mfu", N="8e9", hardware="h100-sxm", tps_device=3000)
    print(f"MFU by the 6N rule for N = 8e9: {float(rule):.2%}")
    mbu = api.value("decode.mbu", model="llama-2-7b", hardware="a100-80gb", b=1, s=2048, tps_user=45)
    print(f"45 token/s of Llama 2 7B on an A100 80GB uses {float(mbu):.2%} of its bandwidth")
    sol = solve("decode.tokens_per_second", "45", "eff_bw", model="llama-2-7b", hardware="a100-80gb", b=1, s=2048)
    print(f"(derive solve decode.tokens_per_second=45 --for eff_bw: eff_bw = {float(sol.value):.4f})")
    print(f"FLOPs per dollar at MFU 0.4 on an H100: "
          f"{float(api.value('cost.flops_per_dollar', hardware='h100-sxm', MFU='0.4')):.4g}")
    req = dict(ttft="0.5s", tpot="20ms", n_out=256)
    lat = api.value("serving.request_latency", **req)
    rps = api.value("serving.requests_per_second", **req, b=32, n_dev=4)
    print(f"request latency 0.5 s + 256 × 20 ms = {float(lat):.2f} s; {float(rps):.4f} requests/s per device at 32 in "
          "flight on 4 devices")


if __name__ == "__main__":
    main()
