"""Read like an engineer: decimals with units first, the exact value after; binary count suffixes; the notes and
warnings that say how an input was read.

Run: python examples/reading.py
"""

from __future__ import annotations

from derive import api
from derive.reports import render


def main() -> None:
    # a time headlines as a decimal with its unit, the exact rational after it
    t = api.show("op.matmul.time", hardware="h100-sxm", m_mm=4096, k_mm=4096, n_mm=4096)
    print(next(line for line in render(t, "text").splitlines() if "exactly" in line).strip())

    # --set s=32Ki is 32,768 tokens; s=32k is 32,000, and the derivation says so
    ki = api.show("kv_cache.per_sequence", model="llama-2-7b", s="32Ki")
    k = api.show("kv_cache.per_sequence", model="llama-2-7b", s="32k")
    print(f"KV cache of one sequence, s=32Ki: {int(ki.value):,} byte; s=32k: {int(k.value):,} byte")
    print(next(n for n in k.notes if "decimal" in n))

    # a head size the shape does not read is named, not silently dropped
    a = api.show("params.layer.attention", d=4096, h=32, d_k=64)
    print(f"attention parameters of one generic layer: {int(a.value):,}")
    print(next(n for n in a.notes if "h·d_k" in n))


if __name__ == "__main__":
    main()
