"""A training budget: the compute-optimal model for a FLOP budget, and what it costs on real GPUs.

Run: python examples/training_budget.py
Chinchilla's 20 tokens per parameter is a named convention (--set tokens_per_param changes it);
6·N·D is the rule of thumb for training FLOPs, named as an approximation in every derivation.
"""

from __future__ import annotations

from derive import api
from derive.units.human import human

BUDGET = "1e24"  # FLOP
GPUS, MFU, MACHINE = 1024, "0.4", "h100-sxm"


def main() -> None:
    n = round(float(api.value("training.optimal_params", C_budget=BUDGET)))  # whole parameters and tokens
    d = round(float(api.value("training.optimal_tokens", C_budget=BUDGET)))
    print(f"compute-optimal for {float(BUDGET):.0e} FLOP: N = {human(n, 'param')}, D = {human(d, 'token')}")
    run = {"hardware": MACHINE, "N": n, "D": d, "n_dev": GPUS, "MFU": MFU}
    print(api.show("training.time", **run).human, f"on {GPUS} × {MACHINE} at MFU {MFU}")
    hours = api.value("training.device_hours", **run) / 3600  # device-time comes in device-seconds
    cost = api.value("training.cost", **run)
    print(f"{float(hours):,.0f} GPU-hours")
    print(f"answer: {human(n, 'param')} on {human(d, 'token')} costs {human(cost, 'USD')} "
          f"at the preset's price per GPU-hour")


if __name__ == "__main__":
    main()
