"""Side by side: why Llama 2 70B caches less per token than Llama 2 7B, and Mistral 7B less per sequence.

The comparison reads each model's architecture (its layer groups and token mixers), not its name: for a
size both models have it asks the first model again with the other's value (`--set g=8`), for a size only
one has (a sliding window) it says the formula differs.

    python examples/compare_models.py
    derive show kv_cache.bytes_per_token --model llama-2-7b --model llama-2-70b
    derive show kv_cache.per_sequence --model llama-2-7b --model mistral-7b --set s=8192 --format json
"""

from derive import api
from derive.reports.summary import comparison_table, render_table

per_token = api.compare("kv_cache.bytes_per_token", model=["llama-2-7b", "llama-2-70b"])
print(render_table(comparison_table(per_token), "text"))
for d in per_token.differences:
    for e in d.explains:
        print(f"{d.feature}: {e.quantity} {e.how}")

window = api.compare("kv_cache.per_sequence", model=["llama-2-7b", "mistral-7b"], s=8192)
print(render_table(comparison_table(window), "text"))
for name, d in zip(window.models, window.derivations, strict=True):
    print(f"{name}: {int(d.value):,} byte")
