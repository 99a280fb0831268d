"""Pin any quantity: give a node of a derivation tree its value, and everything built on it follows.

A published exercise states "the KV cache takes 160 KiB per token" or "the weights take 40 GB" without the
shape behind it. `--set kv_cache.bytes_per_token=160KiB` (the API's ``pins=``) replaces that node by the number,
read in the node's unit (``40GB`` for a parameter count is refused), and the derivation marks it pinned.

Run: python examples/pin_quantity.py
"""

from __future__ import annotations

from derive import api


def main() -> None:
    # a 4096-token sequence at 160 KiB per token, then a batch of 8 of them
    kv = api.show("kv_cache.total", model="llama-2-7b", s=4096, b=8, pins={"kv_cache.bytes_per_token": "160KiB"})
    print(f"KV cache, 8 × 4096 tokens at 160 KiB/token: {int(kv.value):,} byte ({kv.human})")
    print("  " + next(st.title for st in kv.steps if st.id == "kv_cache.bytes_per_token"))

    # weights pinned at 40 GB: inference memory = 40 GB + the model's own KV cache
    mem = api.value("memory.inference", model="llama-2-7b", s=4096, b=1, pins={"memory.weights": "40GB"})
    print(f"inference memory with 40 GB of weights, one 4096-token sequence: {int(mem):,} byte")

    # params.total pinned at 7B: the weights (N·bytes_w) follow, since N is the model's params.total
    w = api.value("memory.weights", model="llama-2-7b", pins={"params.total": "7B"})
    print(f"weights of a 7B-parameter model in bf16: {int(w):,} byte")


if __name__ == "__main__":
    main()
