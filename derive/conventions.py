"""The conventions of the FLOP and memory formulas, declared once, each with its source.

Peers disagree on how to count (is a multiply-add 1 FLOP or 2? is the causal mask exploited? is
the LM head in?), and users get burnt by it, so every count built here says which convention it
used: the sentences below are what every rendering prints. Byte sizes of dtypes and optimizers
live here too, so that weights, KV cache and activations read them from one table.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import sympy as sp

from derive import options as O
from derive.registry import Context

# ---- FLOP conventions -------------------------------------------------------------------------

O.option("mac", "2", ("2", "1"), "FLOPs counted per multiply-add (2 = FLOPs, 1 = MACs)",
         source="2: PyTorch torch.utils.flop_counter.FlopCounterMode, Kaplan et al. 2020 (C = 6ND); "
                "1: fvcore / ptflops, which report multiply-adds")
O.option("causal", "no", ("no", "yes"), "exploit the causal mask: halve the s² terms (QKᵀ and attention·V)",
         source="no: FlopCounterMode and the seed's 8sd² + 4s²d count the full s×s matrix; "
                "yes: flash-attention's benchmark_flash_attention.py divides by 2 for causal kernels")
O.option("lm_head", "included", ("included", "last", "excluded"),
         "LM head FLOPs: on every position, on the last position of each sequence only, or not counted",
         source="included: FlopCounterMode on a Hugging Face CausalLM forward (logits for every position)")
O.option("embedding_flops", "zero", ("zero", "matmul"),
         "embedding lookup: 0 FLOPs (a gather) or a one-hot matmul of 2·V·d per token",
         source="zero: FlopCounterMode (an index_select is no matmul); matmul: Hoffmann et al. 2022, App. F")
O.option("windows", "masked", ("masked", "exploited"),
         "prefill FLOPs of sliding-window and chunked layers: the full masked s×s (as the model's code and "
         "FlopCounterMode compute them) or only the keys inside the window",
         source="masked: Hugging Face eager/SDPA attention builds the full score matrix and masks it; exploited: "
                "windowed kernels (FlashAttention's window_size) skip the masked blocks")
O.option("weight_reads", "touched", ("touched", "all"),
         "weights a decode step reads: those its tokens touch (an untied embedding's b rows; of a mixture of experts "
         "the E·(1 − (1 − k/E)^b) distinct experts b tokens' top-k routings touch under uniform routing) or every "
         "weight (the textbook roofline: N·bytes_w per step)",
         source="touched: an embedding lookup gathers one row per token, and each token picks k of E experts "
                "uniformly at random; all: Pope et al. 2022 and the seed workbook read all N weights per step")
O.option("n_embeddings", "included", ("included", "excluded"),
         "whether N in the 2N and 6ND rules counts the embedding (and position) tables",
         source="included: N = params.total; excluded: Kaplan et al. 2020, who count non-embedding parameters")

# ---- dtypes and optimizers ----------------------------------------------------------------------

#: bytes per element of each storage dtype (tf32 is stored as fp32; int4 packs two per byte).
DTYPE_BYTES: dict[str, sp.Rational] = {
    "fp32": sp.Integer(4), "tf32": sp.Integer(4), "bf16": sp.Integer(2), "fp16": sp.Integer(2),
    "fp8": sp.Integer(1), "int8": sp.Integer(1), "int4": sp.Rational(1, 2),
}
QUANTIZED = ("fp8", "int8", "int4")


def format_bytes(fmt: str) -> sp.Rational:
    """Bytes per weight of a checkpoint format, scales included: MXFP4 is 4 bits + an 8-bit scale per 32 weights
    (17/32 B); fp8 with blocks a×b is 1 B + an fp32 scale per block."""
    if fmt == "mxfp4":
        return sp.Rational(4 * 32 + 8, 32 * 8)
    if fmt.startswith("fp8_block"):
        a, b = (int(x) for x in fmt[len("fp8_block"):].split("x"))
        return 1 + sp.Rational(4, a * b)
    if fmt == "fp8":
        return sp.Integer(1)
    raise KeyError(fmt)

O.option("dtype", "bf16", tuple(DTYPE_BYTES), "storage dtype of the weights (sets bytes_w)",
         source="IEEE 754 / bfloat16 / OCP FP8 element sizes; int4 packs two weights per byte")
O.option("kv_dtype", "bf16", ("fp32", "bf16", "fp16", "fp8", "int8", "int4"),
         "dtype of the KV cache (sets bytes_kv)", source="element sizes as for dtype")
O.option("act_dtype", "bf16", ("fp32", "tf32", "bf16", "fp16", "fp8"),
         "dtype of stored activations and attention scores (sets bytes_a)", source="element sizes as for dtype")
O.option("quant_group", "none", ("none", "32", "64", "128", "256"),
         "quantization group size: adds one scale of bytes_scale (fp16: 2 B) per group of weights",
         source="group-wise quantization as in GPTQ (Frantar et al. 2022) and AWQ (Lin et al. 2023), group 128")


@dataclass(frozen=True)
class Optimizer:
    """Bytes per parameter of a training recipe: weights, gradients and optimizer states. A factored recipe
    (Adafactor) keeps ``state_bytes`` per element of its row and column statistics, not per parameter."""

    key: str
    weights: str  # natural dtype of the weights it trains
    grad_bytes: sp.Rational  # 0: the recipe applies each gradient as it is computed and keeps none
    state_bytes: sp.Rational
    describe: str
    source: str
    factored: bool = False

    @property
    def total(self) -> sp.Rational:
        """Bytes per parameter (a factored recipe: without its states, which depend on the weight shapes)."""
        return DTYPE_BYTES[self.weights] + self.grad_bytes + (0 if self.factored else self.state_bytes)


OPTIMIZERS: dict[str, Optimizer] = {o.key: o for o in (
    Optimizer("adam-mixed", "bf16", sp.Integer(2), sp.Integer(12),
              "mixed-precision Adam: 16-bit weights 2 + 16-bit gradients 2 + fp32 master copy 4 + Adam m 4 + v 4 "
              "= 16 B/param", "Rajbhandari et al. 2020 (ZeRO), §3.1: 2Ψ + 2Ψ + KΨ with K = 12"),
    Optimizer("adam-mixed-fp32grad", "bf16", sp.Integer(4), sp.Integer(12),
              "mixed-precision Adam with fp32 gradients: 2 + 4 + 12 = 18 B/param",
              "Megatron-LM distributed-optimizer docs: bf16 params with fp32 grads, 18 bytes per parameter"),
    Optimizer("adam-fp32", "fp32", sp.Integer(4), sp.Integer(8),
              "fp32 Adam: fp32 weights 4 + fp32 gradients 4 + m 4 + v 4 = 16 B/param", "Kingma & Ba 2015"),
    Optimizer("adam-8bit", "bf16", sp.Integer(2), sp.Integer(6),
              "8-bit Adam, mixed precision: 2 + 2 + fp32 master 4 + 8-bit m 1 + v 1 = 10 B/param "
              "(block-wise quantization constants ignored)", "Dettmers et al. 2022, 8-bit Optimizers via "
              "Block-wise Quantization"),
    Optimizer("adam-nomaster", "bf16", sp.Integer(0), sp.Integer(8),
              "bf16 weights 2 + fp32 Adam moments m 4 + v 4, no fp32 master copy and no gradients held (each is "
              "applied as the backward produces it) = 10 B/param",
              "bf16 training without a master copy (e.g. torchtune's optimizer_in_bwd; Zhao et al. 2024, GaLore §5 "
              "layer-wise updates); the update is rounded to bf16 each step"),
    Optimizer("adam-nomaster-bf16grad", "bf16", sp.Integer(2), sp.Integer(8),
              "bf16 weights 2 + bf16 gradients 2 + fp32 Adam moments 8, no master copy = 12 B/param",
              "PyTorch AdamW on bf16 parameters with fp32 states (torch.optim.AdamW keeps states in the parameter "
              "dtype unless told otherwise; fp32 moments as in Megatron's --use-precision-aware-optimizer)"),
    Optimizer("adam-bf16", "bf16", sp.Integer(2), sp.Integer(4),
              "pure bf16 Adam: weights 2 + gradients 2 + m 2 + v 2 = 8 B/param, no master copy",
              "torch.optim.AdamW on bf16 parameters (states in the parameter dtype)"),
    Optimizer("sgd-momentum", "fp32", sp.Integer(4), sp.Integer(4),
              "SGD with momentum in fp32: weights 4 + gradients 4 + momentum 4 = 12 B/param",
              "PyTorch torch.optim.SGD"),
    Optimizer("adafactor", "fp32", sp.Integer(4), sp.Integer(4),
              "Adafactor in fp32: weights 4 + gradients 4 + factored second moments (a row and a column statistic "
              "of 4 B per weight matrix, a full one for every vector), no first moment",
              "Shazeer & Stern 2018, Adafactor (β1 = 0, factored for ≥2-D weights); transformers.Adafactor defaults",
              factored=True),
)}

O.option("optimizer", "adam-mixed", tuple(OPTIMIZERS),
         "training recipe: bytes per parameter of gradients and optimizer states (16 B/param in total by default)",
         source="; ".join(f"{o.key}: {o.source}" for o in OPTIMIZERS.values()))
O.option("recompute", "none", ("none", "selective", "full"),
         "activation recomputation: none, selective (the attention core) or full (each layer's forward)",
         source="Korthikanti et al. 2022, Reducing Activation Recomputation in Large Transformer Models, Table 2")
O.option("attention", "sdpa", ("sdpa", "eager"),
         "attention kernel: fused (SDPA / FlashAttention: the s×s scores are never stored) or eager (matmul, "
         "softmax, matmul: the scores are saved for backward)",
         source="sdpa: PyTorch scaled_dot_product_attention, the default of Hugging Face models and of Megatron; "
                "Dao et al. 2022: only the output and the softmax statistics (logsumexp) are kept")
O.option("flash", "no", ("no", "yes"), "alias of --option attention: flash=yes is attention=sdpa, flash=no is eager",
         source="kept for earlier command lines")
O.option("softmax_dtype", "fp32", ("fp32", "bf16"),
         "dtype of an eager attention's softmax (what it saves for backward: fp32 4 B, then a bf16 copy for the "
         "value matmul; or one bf16 tensor)",
         source="fp32: Hugging Face eager attention computes softmax(…, dtype=torch.float32).to(query.dtype)")
O.option("dropout", "no", ("no", "yes"),
         "dropout in training (masks of 1 B per element stored for backward); modern LLMs train without it",
         source="no: LLaMA, Mistral, Qwen and DeepSeek configs set attention_dropout = 0; yes: GPT-2/BERT-era recipes "
                "and Korthikanti et al. 2022's accounting")
O.option("zero_stage", "3", ("0", "1", "2", "3"),
         "ZeRO stage: 1 shards the optimizer states, 2 + gradients, 3 + weights (= FSDP), 0 nothing; "
         "memory.min_devices and memory.zeroN shard over n_dev (default 3 there), a parallel layout (training.*, "
         "memory.training_peak, derive plan) over its dp·cp replicas (default 0 there: plain data parallelism)",
         source="Rajbhandari et al. 2020, ZeRO: Memory Optimizations Toward Training Trillion Parameter Models")
O.option("lora_targets", "qv", ("qv", "qkvo", "all"),
         "matrices that carry LoRA adapters: W_Q and W_V, all four attention projections, or those and the MLP",
         source="qv: Hu et al. 2021 (LoRA), §7.1; all: Dettmers et al. 2023 (QLoRA) adapt every linear layer")


def get(ctx: Context, key: str) -> str:
    """The validated choice for an option (a typo gets a 'did you mean')."""
    return O.get(ctx.options, key)


def weight_dtype(ctx: Context) -> str:
    """dtype of the weights: --option dtype wins; else the optimizer's own (fp32 Adam trains fp32
    weights); else the dtype of the model's config (torch_dtype); else bf16. One rule, so every builder sees
    the same bytes_w."""
    if "dtype" in ctx.options:
        return get(ctx, "dtype")
    if "optimizer" in ctx.options:
        return OPTIMIZERS[get(ctx, "optimizer")].weights
    if ctx.model_given and ctx.arch.dtype in DTYPE_BYTES:
        return ctx.arch.dtype
    return get(ctx, "dtype")


def weight_dtype_source(ctx: Context) -> str:
    if "dtype" in ctx.options:
        return "--option dtype"
    if "optimizer" in ctx.options:
        return f"the optimizer {get(ctx, 'optimizer')}'s"
    if ctx.model_given and ctx.arch.dtype in DTYPE_BYTES:
        return "the model config's torch_dtype"
    return "default"


def attention_kernel(ctx_or_options) -> str:
    """sdpa or eager: --option attention wins; else the flash alias (yes = sdpa); else the default (sdpa)."""
    options = getattr(ctx_or_options, "options", ctx_or_options)
    if "attention" in options or "flash" not in options:
        return O.get(options, "attention")
    return "sdpa" if O.get(options, "flash") == "yes" else "eager"


def set_byte_defaults(ctx: Context) -> None:
    """bytes_w, bytes_kv and bytes_a from the options, unless --set gave them (--set wins)."""
    from derive import symbols as S

    picks = ((S.bytes_w, weight_dtype), (S.bytes_kv, lambda c: get(c, "kv_dtype")),
             (S.bytes_a, lambda c: get(c, "act_dtype")))
    for sym, dtype in picks:
        # the options consulted here are read by a quantity only if it reads the symbol (derive.reads)
        scope = getattr(ctx.options, "reading_for", None)
        with scope(sym) if scope is not None else nullcontext():
            ctx.values.setdefault(sym, DTYPE_BYTES[dtype(ctx)])


# ---- the FLOP conventions of one request ----------------------------------------------------------

@dataclass(frozen=True)
class FlopConventions:
    """The FLOP conventions of one request and the sentences that say so."""

    mac: sp.Integer  # FLOPs per multiply-add
    causal: bool
    lm_head: str
    embedding: str

    @classmethod
    def of(cls, ctx: Context) -> FlopConventions:
        return cls(sp.Integer(int(get(ctx, "mac"))), get(ctx, "causal") == "yes", get(ctx, "lm_head"),
                   get(ctx, "embedding_flops"))

    @property
    def s2_factor(self) -> sp.Rational:
        """Factor on the s×s score and value matmuls of a full (prefill) pass."""
        return sp.Rational(1, 2) if self.causal else sp.Integer(1)

    def sentences(self, head: bool = True, core: bool = True) -> tuple[str, ...]:
        out = ["matrix multiplications only: softmax, norms, activation functions, residual adds and biases "
               "are not counted (as PyTorch's FlopCounterMode counts)"]
        out.append("a multiply-add counts as 2 FLOPs (default; FlopCounterMode, Kaplan et al. 2020)"
                   if self.mac == 2 else
                   "a multiply-add counts as 1 (--option mac=1: these are MACs, as fvcore and ptflops report)")
        if core:
            out.append("causal mask not exploited: QKᵀ and attention·V over the full s×s matrix (default; as "
                       "FlopCounterMode counts and the seed's 8sd² + 4s²d)" if not self.causal else
                       "causal mask exploited (--option causal=yes): the s×s QKᵀ and attention·V terms halved, "
                       "as causal FlashAttention kernels skip the upper triangle")
        if head:
            out.append({
                "included": "LM head applied to every position (default; as a Hugging Face forward computes logits)",
                "last": "LM head applied to the last position of each sequence only (--option lm_head=last)",
                "excluded": "LM head not counted (--option lm_head=excluded)",
            }[self.lm_head])
            out.append("embedding lookup = 0 FLOPs, a gather (default)" if self.embedding == "zero" else
                       "embedding lookup counted as a one-hot matmul, 2·V·d per token (--option embedding_flops=matmul;"
                       " Hoffmann et al. 2022, App. F)")
        return tuple(out)


def activation_sentences(ctx: Context) -> tuple[str, ...]:
    """What the activation-memory formula assumes, for every rendering of it."""
    rec = get(ctx, "recompute")
    kernel = attention_kernel(ctx)
    out = ["activations: every tensor the autograd graph saves for backward, once each, in its dtype "
           "(bytes_a for activations, fp32 for norm statistics and the SDPA logsumexp); tensor- and sequence-"
           "parallel size 1"]
    out.append({
        "none": "no activation recomputation (default)",
        "selective": "selective recomputation (--option recompute=selective): the attention core (scores, "
                     "softmax, dropout) is recomputed in the backward pass, not stored",
        "full": "full recomputation (--option recompute=full): only each layer's input is stored",
    }[rec])
    if rec != "full":
        if kernel == "sdpa":
            out.append("fused attention (SDPA/FlashAttention; default --option attention=sdpa): Q, K, V, the output "
                       "and the logsumexp are saved, never the s×s scores")
        else:
            sm = get(ctx, "softmax_dtype")
            out.append(f"eager attention (--option attention=eager): the s×s softmax is saved in {sm} "
                       "(--option softmax_dtype)" + (" plus a bf16 copy for the value matmul" if sm == "fp32" else "")
                       + "; GQA's K and V are saved expanded to all h heads")
    out.append("dropout masks (1 B per element) stored (--option dropout=yes)" if get(ctx, "dropout") == "yes" else
               "no dropout (default; modern LLMs train without it)")
    return tuple(out)
