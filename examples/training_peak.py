"""Does a training run fit? memory.training_peak: states + activations held + gradients so far + the largest
backward temporary, per device, for one GPU, for ZeRO-3 over eight, and for a two-stage pipeline.

Run: python examples/training_peak.py
"""

from __future__ import annotations

from derive import api

SMALL = dict(d=1024, L=4, h=16, V=32000, s=1024, T=1024, d_ff=4096, b=1)
LLAMA = dict(model="llama-3-8b", hardware="h100-sxm", s=4096, b=1)


def main() -> None:
    print(f"small decoder on one device: {int(api.value('memory.training_peak', **SMALL)):,} B")
    z3 = api.value("memory.training_peak", **SMALL, n_dev=4, options={"zero_stage": "3"})
    print(f"  ZeRO-3 over 4: {int(z3):,} B")
    v = dict(**SMALL, pp=2, global_batch=4)
    print(f"  pp = 2, 4 micro-batches: first stage {int(api.value('memory.training_peak.first', **v)):,} B, "
          f"last stage {int(api.value('memory.training_peak.last', **v)):,} B")
    for opts in ({}, {"zero_stage": "3"}, {"zero_stage": "3", "recompute": "full"}):
        d = api.show("memory.training_peak", **LLAMA, n_dev=8, options=opts)
        print(f"llama-3-8b on 8 H100s {opts or '(plain data parallelism)'}: " +
              next(x for x in d.extra["lines"] if x.startswith("memory per device")))


if __name__ == "__main__":
    main()
