"""The published Megatron-LM runs of tests/data/cluster-runs-dev.json as derive requests.

One place says, for each table of the file, what it measured and under which conventions, so that the check
(tests/test_cluster.py) and the calibration records agree. A row is predicted from its model shape (a GPT-style
decoder: d_ff = 4d, MHA, GELU, LayerNorm, learned positions, tied embeddings — Megatron's GPT), its hardware and
its layout alone; a row that does not state its layout is skipped with the reason.

Which convention each table uses (worked out from the tables' own numbers, noted per table):
- 2024 H100 (README 'Training Speed and Scalability'): model FLOPs. Per-GPU TFLOP/s = MFU × 989.4 (408.8 =
  0.413 × 989.4); the README names --overlap-grad-reduce --overlap-param-gather (distributed optimizer: ZeRO-1)
  and --tp-comm-overlap (which needs sequence parallelism). Recomputation, micro-batch and vpp not stated.
- 2022 A100 (README = Korthikanti et al. 2022 Table 5): MFU (model FLOPs) and HFU (hardware FLOPs with the stated
  selective recomputation); sequence parallelism stated; FlashAttention did not exist: Megatron's fused softmax in
  half precision and dropout 0.1 (the paper's 34 + 5as/h accounting).
- 2021 April A100 (README = Narayanan et al. 2021 Table 1): hardware FLOPs with full recomputation, the paper's
  eq. 3 (96·B·s·l·h²·(1 + s/6h + V/16lh)); percentage of peak = that over 312 TFLOP/s. Micro-batch and vpp not
  stated (the interleaved schedule is named; derive assumes vpp = 1 and says so).
- 2020 V100/A100 (README scaling figures): hardware FLOPs with full recomputation: 71.9 TFLOP/s = 96·8·1024·24·
  1920²·(1 + 1024/(6·1920) + 51200/(16·24·1920)) FLOPs / 1.121 s; the iteration time is given too.
- 2021 January A100: only the combined model-parallel size: skipped. Strong-scaling H100 points: no layout: skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.conftest import data

#: the conventions of the kernels before FlashAttention (Megatron-LM 2020–22): fused softmax in half precision,
#: dropout 0.1 on attention probabilities and hidden states
EAGER = {"attention": "eager", "softmax_dtype": "bf16", "dropout": "yes"}


@dataclass
class Row:
    id: str
    generation: str  # v100, a100, h100
    hardware: str  # the derive preset
    sets: dict[str, str]
    options: dict[str, str]
    published: dict[str, float]  # quantity id -> published value in its base unit
    convention: str  # which FLOPs the table's throughput counts
    assumed: list[str] = field(default_factory=list)

    def request(self) -> dict:
        return {"hardware": self.hardware, "options": dict(self.options), **self.sets}

    def cli(self) -> list[str]:
        out = ["--hardware", self.hardware]
        for k, v in self.sets.items():
            out += ["--set", f"{k}={v}"]
        for k, v in self.options.items():
            out += ["--option", f"{k}={v}"]
        return out


def _hardware(r: dict) -> tuple[str, str]:
    hw = r["hardware"]
    if "V100" in hw:
        return "v100", "v100-sxm3-32gb"
    if "H100" in hw:
        return "h100", "h100-sxm"
    if "80GB" in hw:
        return "a100", "a100-80gb"
    return "a100", "a100-40gb"  # the DGX A100 of 2020 shipped with 40 GB cards


def rows() -> tuple[list[Row], dict[str, str]]:
    """(the rows that state their layout, {id: why skipped} for the others)."""
    out: list[Row] = []
    skipped: dict[str, str] = {}
    for r in data("cluster-runs-dev.json")["runs"]:
        rid = r["id"]
        if r["d_model"] is None:
            skipped[rid] = "no model shape and no layout (a strong-scaling point: only GPUs, batch and MFU)"
            continue
        if r["tp"] is None or r["pp"] is None:
            skipped[rid] = "layout not stated: only the combined model-parallel size (TP × PP split not given)"
            continue
        gen, hw = _hardware(r)
        d = int(r["d_model"])
        sets = {"d": str(d), "L": str(r["n_layers"]), "h": str(r["n_heads"]), "V": str(r["vocab"]),
                "s": str(r["seq_len"]), "T": str(r["seq_len"]), "d_ff": str(4 * d), "n_dev": str(r["n_gpus"]),
                "tp": str(r["tp"]), "pp": str(r["pp"]), "dp": str(r["dp"]),
                "global_batch": str(r["global_batch_seqs"])}
        assumed = []
        if r["vpp"]:
            sets["vpp"] = str(r["vpp"])
        elif r["pp"] > 1:
            assumed.append("vpp = 1")
        if r["micro_batch"]:
            sets["b"] = str(r["micro_batch"])
        else:
            assumed.append("b = 1")
        published: dict[str, float] = {}
        if "2024" in rid:
            options = {"sp": "yes", "comm_overlap": "all", "zero_stage": "1"}
            published = {"training.tflops_per_device": r["tflops_per_gpu"] * 1e12, "training.mfu": r["mfu"]}
            conv = "model FLOPs (per-GPU TFLOP/s = MFU × 989.4)"
        elif "2022" in rid:
            options = {"sp": "yes", "recompute": "selective", "comm_overlap": "none", **EAGER}
            published = {"training.mfu": r["mfu"], "training.hfu": r["hfu"]}
            conv = "model FLOPs (MFU) and hardware FLOPs with selective recomputation (HFU)"
        elif "2021apr" in rid:
            options = {"recompute": "full", "tflops": "hardware", "comm_overlap": "none", **EAGER}
            published = {"training.tflops_per_device": r["tflops_per_gpu"] * 1e12, "training.hfu": r["pct_of_peak"]}
            conv = "hardware FLOPs with full recomputation (Narayanan et al. 2021 eq. 3)"
        elif "2020" in rid:
            options = {"recompute": "full", "tflops": "hardware", "comm_overlap": "none", **EAGER}
            published = {"training.tflops_per_device": r["tflops_per_gpu"] * 1e12,
                         "training.step_time": r["step_time_s"]}
            conv = "hardware FLOPs with full recomputation (96·B·s·l·h² formula; the iteration time is given)"
        else:  # pragma: no cover - a new table needs its conventions stated first
            skipped[rid] = "table of unknown conventions"
            continue
        out.append(Row(rid, gen, hw, sets, options, published, conv, assumed))
    return out, skipped


#: the quantity each table is calibrated on (one record per row; the check compares every published figure)
CALIBRATED_ON = {"2024": "training.tflops_per_device", "2022": "training.mfu", "2021apr": "training.tflops_per_device",
                 "2020": "training.step_time"}


def records(generation: str) -> list[dict]:
    """derive calibrate records of one GPU generation (each with its row's preset)."""
    out = []
    for r in rows()[0]:
        if r.generation != generation:
            continue
        table = next(k for k in CALIBRATED_ON if k in r.id)
        qid = CALIBRATED_ON[table]
        out.append({"quantity": qid, "hardware": r.hardware, "set": dict(r.sets), "options": dict(r.options),
                    "measured": r.published[qid], "label": r.id})
    return out
