"""A parallel layout of a published run: GPT-3 175B on 64 A100s (tp 8 × pp 8, interleaved over 3 virtual stages).

Run: python examples/cluster_layout.py
The layout is what Korthikanti et al. 2022 (the Megatron-LM README's MFU table) state: micro-batch 1, global batch
64, sequence parallelism, selective recomputation; the kernels of 2022 (no FlashAttention: a half-precision softmax
and dropout). derive predicts the memory per device, the step time term by term and the MFU from that alone, with
the training constants the a100-80gb preset ships (fitted by derive calibrate on the README's A100 runs).
"""

from __future__ import annotations

from derive import api
from derive.units.human import human

RUN = dict(hardware="a100-80gb", d=12288, L=96, h=96, V=51200, s=2048, T=2048, d_ff=4 * 12288,
           n_dev=64, tp=8, pp=8, vpp=3, b=1, global_batch=64,
           options={"sp": "yes", "recompute": "selective", "attention": "eager", "softmax_dtype": "bf16",
                    "dropout": "yes", "comm_overlap": "none"})


def main() -> None:
    d = api.show("training.step_time", **RUN)
    print(f"step time: {d.human}")
    for line in d.extra["lines"]:
        if not line.startswith(("hardware", "  ")):
            print(" ", line)
    first = api.value("training.params.first", **RUN)
    print(f"parameters on a first-stage device: {int(first):,} ({human(first, 'param')})")
    mfu = api.value("training.mfu", **RUN)
    print(f"MFU {float(mfu):.1%} predicted (published: 51.4%)")


if __name__ == "__main__":
    main()
