"""Training recipes as --option optimizer presets: bytes per parameter of each, Adafactor from the weight shapes,
recomputation in the training time (8ND against 6ND), and where a MoE expert layer turns compute-bound.

Run: python examples/training_recipes.py
"""

from __future__ import annotations

from derive import api

RECIPES = ("adam-mixed", "adam-nomaster", "adam-nomaster-bf16grad", "adam-bf16", "adam-8bit", "sgd-momentum",
           "adam-fp32")


def main() -> None:
    for r in RECIPES:
        per = api.value("memory.training", N="1e9", options={"optimizer": r}) / 10**9
        grads = api.value("memory.gradients", N="1e9", options={"optimizer": r}) / 10**9
        print(f"{r}: {per} B/param ({grads} of it gradients)")
    ada = api.value("memory.optimizer", model="llama-2-7b", options={"optimizer": "adafactor"})
    print(f"adafactor on llama-2-7b: {int(ada):,} B of factored second moments")
    run = dict(N="8e9", D="1T", n_dev=64, F_hw="400TFLOP/s")
    full = api.value("training.time", **run, options={"recompute": "full"})
    none = api.value("training.time", **run)
    print(f"at 400 TFLOP/s of hardware throughput: {float(full):,.0f} s with full recomputation (8ND), "
          f"{float(none):,.0f} s without (6ND)")
    b = api.value("roofline.expert_crossover_batch", model="mixtral-8x7b", hardware="h100-sxm")
    print(f"a Mixtral expert layer turns compute-bound on an H100 from a batch of {float(b):,.1f} sequences")


if __name__ == "__main__":
    main()
