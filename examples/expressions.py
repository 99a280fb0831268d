"""Expressions over quantities: one number for a question that spans two formulas.

"How much memory does LoRA fine-tuning of Llama 3 8B take on one GPU?" is the LoRA training states *plus*
the activations of a micro-batch: one expression, each operand shown with its own tree, units checked
(parameters plus bytes is refused). The same expressions work in `derive show`, `derive solve` targets,
`derive sweep`, templates and the API.

Run: python examples/expressions.py
"""

from __future__ import annotations

from derive import api
from derive.errors import UnitError


def main() -> None:
    lora = api.show("memory.lora.training + memory.activations", model="llama-3-8b", r_lora=16, b=1, s=2048)
    print(f"LoRA fine-tuning memory, Llama 3 8B, r=16, b=1, s=2048: {int(lora.value):,} byte ({lora.human})")
    for step in (st for st in lora.steps if st.depth == 1):  # each operand, with its own tree below it
        print(f"  {step.id}: {int(step.value):,} byte")

    share = api.value("params.attention / params.total", model="gpt2")
    print(f"attention share of GPT-2's parameters: {share} = {float(share):.4f}")

    two = api.value("2*kv_cache.per_sequence", model="llama-2-7b", s=4096)
    print(f"two sequences of 4096 tokens, Llama 2 7B: {two:,} byte")

    # the largest context whose LoRA memory stays within 80 GiB: a solve over the same expression
    sol = api.solve("memory.lora.training + memory.activations", "80GiB", "s", model="llama-3-8b", r_lora=16, b=1,
                    at_most=True)
    print(f"longest s within 80 GiB: {int(sol.recommended.value):,}")

    try:
        api.value("params.total + memory.weights", model="gpt2")
    except UnitError as exc:
        print(f"refused: {exc}")


if __name__ == "__main__":
    main()
