"""Loaders of the decoders whose layers differ: attention sinks and alternating sliding windows
(gpt-oss), chunked/NoPE layers with MoE on every n-th layer (Llama 4), post-norm-only blocks with
global NoPE layers (EXAONE 4), and the MoE and dense families that need one more kind feature
(PhiMoE's LayerNorms and lm_head bias, Granite MoE's shared MLP, Seed-OSS's separate o_proj bias,
Apertus' xIELU with learned scalars).

Each function mirrors the transformers 5.x config class (absent key = class default; null = what the
class does with None) and modeling code (``sum(p.numel())`` of the ``*ForCausalLM``). Per-layer lists
(``layer_types``, ``no_rope_layers``, ``moe_layers``) become a layer pattern through
:func:`derive.hf.build.stack`; one of the wrong length or with an unknown entry is an error naming
the key. A ``quantization_config`` (gpt-oss's mxfp4 experts) changes no count: a model built from
the config holds the unquantized tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from derive import inputs
from derive.architecture import Architecture, Block
from derive.errors import DeriveError
from derive.hf.build import QKV, QKVO, LayerFacts, attention, decoder, dense, model, moe, per_layer, stack
from derive.hf.config import Config
from derive.hf.families import common, gated_act, layer_types, sliding


def optional(c: Config, key: str, default: int | None) -> int | None:
    """An optional size: absent means the class default, null means none (no window, no chunk)."""
    return c.int(key, default=None) if key in c.raw else default


def kv_heads(c: Config, default: int | None, h: int) -> int:
    """``num_key_value_heads``: absent means the class default, null means the query heads (MHA)."""
    if "num_key_value_heads" not in c.raw:
        return h if default is None else default
    return c.int("num_key_value_heads", default=h)


def _quantized(c: Config) -> tuple[str, ...]:
    q = c.obj("quantization_config")
    if not q:
        return ()
    method = q.get("quant_method", "a quantization")
    return (f"quantization_config ({method}) changes no parameter count: a model built from the config holds the "
            "unquantized tensors (it decides the bytes of the stored weights)",)


def _model(c: Config, facts: Callable[[int], LayerFacts] | LayerFacts, *, d: int, L: int, V: int, tied: bool,
           norm: str = "rmsnorm", head_bias: bool = False, notes: tuple[str, ...] = ()) -> Architecture:
    st = stack((), L, name=c.name, uniform=facts) if isinstance(facts, LayerFacts) else stack(facts, L, name=c.name)
    return model(c.name, c.model_type, d, V, st, positions="rope", tied=tied, norm=norm, head_bias=head_bias,
                 dtype=common(c)["dtype"], notes=notes + _quantized(c), source="config.json")


# ---- gpt-oss ------------------------------------------------------------------------------------

def gpt_oss(c: Config) -> Architecture:
    """GptOssForCausalLM: q/k/v/o with attention_bias (default true, o included), a learned sink logit per head
    (always), a router with bias and E experts whose fused gate_up (2·d_ffe) and down (d) have biases; layers
    alternate sliding (window 128, even indices) and full attention unless layer_types says otherwise."""
    d, L, V, h = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size"), c.int("num_attention_heads")
    g, d_k = kv_heads(c, 8, h), c.head_dim(64)
    E = c.int("num_local_experts", "num_experts", default=128)
    block = moe(E, c.int("num_experts_per_tok", default=4), c.int("intermediate_size"), "swiglu", router_bias=True,
                bias=frozenset({"gate", "up", "down"}))
    bias = QKVO if c.flag("attention_bias", True) else frozenset()
    window = optional(c, "sliding_window", 128)
    per = layer_types(c, L, {"sliding_attention": True, "full_attention": False})
    if per is None:
        per = [bool((i + 1) % 2) for i in per_layer(c.name, L)]
    full = attention(d, h, g, d_k, bias=bias, sinks=True, name=c.name)
    swa = attention(d, h, g, d_k, bias=bias, sinks=True, window=window, name=c.name) if window else full
    return _model(c, lambda i: LayerFacts((swa if per[i] else full,), block), d=d, L=L, V=V,
                  tied=c.flag("tie_word_embeddings", False))


# ---- Llama 4 ------------------------------------------------------------------------------------

def _rope_layers(c: Config, L: int) -> list[bool]:
    """no_rope_layers[i] = 1 means layer i USES RoPE (the name is inverted); absent, null or [] means every
    no_rope_layer_interval-th layer is NoPE."""
    given = c.int_list("no_rope_layers")
    if not given:
        interval = c.int("no_rope_layer_interval", default=4)
        if interval <= 0:
            raise DeriveError(f"{c.name}: no_rope_layer_interval must be a positive integer, got {interval}")
        return [bool((i + 1) % interval) for i in per_layer(c.name, L)]
    if len(given) != L:
        raise DeriveError(f"{c.name}: no_rope_layers lists {len(given)} layers but num_hidden_layers is {L}")
    return [bool(x) for x in given]


def _moe_layer_set(c: Config, L: int) -> set[int]:
    given = c.int_list("moe_layers")
    if given is None:
        step = c.int("interleave_moe_layer_step", default=1)
        if step <= 0:
            raise DeriveError(f"{c.name}: interleave_moe_layer_step must be a positive integer, got {step}")
        return set(per_layer(c.name, L)[step - 1::step])
    bad = [i for i in given if not 0 <= i < L]
    if bad:
        raise DeriveError(f"{c.name}: moe_layers names layer {bad[0]} but num_hidden_layers is {L}")
    return set(given)


def llama4_text(c: Config) -> Architecture:
    """Llama4ForCausalLM (also the text_config of a llama4 config): MoE layers (moe_layers, or every
    interleave_moe_layer_step-th) hold a router, E fused experts of intermediate_size and one shared expert of
    the same width; the other layers a dense SwiGLU of intermediate_size_mlp. RoPE layers (no_rope_layers 1)
    are chunked (attention_chunk_size) and carry a parameter-free L2 q/k norm when use_qk_norm; NoPE layers
    attend globally. The experts' own forward multiplies every token with every expert."""
    d, L, V, h = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size"), c.int("num_attention_heads")
    g, d_k = kv_heads(c, 8, h), c.head_dim(128)
    d_ff = c.int("intermediate_size")
    act = gated_act(c)
    block = moe(c.int("num_local_experts", default=16), c.int("num_experts_per_tok", default=1), d_ff, act,
                shared=1, d_ff_shared=d_ff, all_experts=True)
    ffn_dense = dense(d, c.int("intermediate_size_mlp", default=16384), act)
    rope = _rope_layers(c, L)
    types = layer_types(c, L, {"chunked_attention": True, "full_attention": False}) or rope
    chunk = optional(c, "attention_chunk_size", 8192)
    qk = c.flag("use_qk_norm", True)
    bias = QKVO if c.flag("attention_bias", False) else frozenset()
    moe_at = _moe_layer_set(c, L)
    blocks: dict[tuple[bool, bool], Block] = {}

    def mixer(i: int) -> Block:
        key = (rope[i], bool(types[i] and chunk))
        if key not in blocks:
            flags: dict[str, Any] = {} if rope[i] else {"rope": False}
            blocks[key] = attention(d, h, g, d_k, bias=bias, qk_norm="head" if (qk and rope[i]) else "none",
                                    qk_norm_kind="none", chunk=chunk if key[1] else None, name=c.name, **flags)
        return blocks[key]

    return _model(c, lambda i: LayerFacts((mixer(i),), block if i in moe_at else ffn_dense), d=d, L=L, V=V,
                  tied=c.flag("tie_word_embeddings", False))


def llama4(c: Config) -> Architecture:
    """Llama4ForConditionalGeneration: only its language model (text_config, a llama4_text) is counted, also
    when a trimmed copy of the config leaves out text_config's model_type."""
    text = c.obj("text_config")
    if text is None:
        c.need("text_config")
    arch = llama4_text(Config({**text, "model_type": "llama4_text"}, c.name))
    note = "only the language model (text_config, llama4_text) of this llama4 config is counted; the vision " \
           "tower and projector are not"
    return replace(arch, notes=arch.notes + (note,))


# ---- EXAONE 4 -----------------------------------------------------------------------------------

def _exaone_sliding(c: Config, L: int, window: int | None) -> list[bool]:
    per = layer_types(c, L, {"sliding_attention": True, "full_attention": False})
    if per is not None:
        return per
    if window is None:
        return [False] * len(per_layer(c.name, L))
    pattern = c.raw.get("sliding_window_pattern")  # an int or an L/G string: each kind checked below
    if isinstance(pattern, str):
        if not pattern or set(pattern) - {"L", "G"}:
            raise DeriveError(f"{c.name}: sliding_window_pattern {inputs.short(pattern)!r} must be a string of "
                              "L (local) and G (global)")
        out = [pattern[i % len(pattern)] == "L" for i in per_layer(c.name, L)]
        out[-1] = False  # the class: the last layer is always global
        return out
    n = c.int("sliding_window_pattern", default=4)
    if n <= 0:
        raise DeriveError(f"{c.name}: sliding_window_pattern must be a positive integer or an L/G string, got {n}")
    return [bool((i + 1) % n) for i in per_layer(c.name, L)]


def exaone4(c: Config) -> Architecture:
    """Exaone4ForCausalLM: no biases, RMSNorm q_norm/k_norm over head_dim, Olmo-2-style post-norms only
    (post_attention, post_feedforward; no input norm); sliding layers (layer_types, or 3 local : 1 global from
    sliding_window_pattern) use RoPE and the global ones are NoPE when a sliding_window is set."""
    d, L, V, h = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size"), c.int("num_attention_heads")
    g, d_k = kv_heads(c, 32, h), c.head_dim(None)
    window = optional(c, "sliding_window", 4096)
    per = _exaone_sliding(c, L, window)
    base = dict(qk_norm="head", qk_norm_kind="rmsnorm", name=c.name)
    full = attention(d, h, g, d_k, **base, **({"rope": False} if window else {}))
    swa = attention(d, h, g, d_k, window=window, **base) if window else full
    ffn = dense(d, c.int("intermediate_size"), gated_act(c))
    return _model(c, lambda i: LayerFacts((swa if per[i] else full,), ffn), d=d, L=L, V=V,
                  tied=c.flag("tie_word_embeddings", False))


# ---- MoE and dense families with one more feature -------------------------------------------------

def phimoe(c: Config) -> Architecture:
    """PhimoeForCausalLM: Llama attention (q/k/v/o with attention_bias), LayerNorms with β (two per layer and
    the final one), a router without bias and E SwiGLU experts of which sparsemixer always picks 2, an lm_head
    with a bias when lm_head_bias; a sliding_window makes every layer's cache a window."""
    h = c.int("num_attention_heads")
    L = c.int("num_hidden_layers")
    k_cfg = c.int("num_experts_per_tok", default=2)
    notes = () if k_cfg == 2 else (f"num_experts_per_tok={k_cfg} is not read: PhiMoE's sparsemixer always routes "
                                   "each token to 2 experts",)
    block = moe(c.int("num_local_experts", default=16), 2, c.int("intermediate_size"), gated_act(c))
    return decoder(
        **common(c), d=c.int("hidden_size"), L=L, V=c.int("vocab_size"), h=h, g=kv_heads(c, 8, h),
        d_k=c.head_dim(None), d_ff=block.size("d_ffe"), mlp=gated_act(c),
        biases=QKVO if c.flag("attention_bias", False) else frozenset(), tied=c.flag("tie_word_embeddings", False),
        norm="layernorm", norms=2, moe_block=block, head_bias=c.flag("lm_head_bias", False), notes=notes,
        **sliding(c, L),
    )


def granitemoe(c: Config) -> Architecture:
    """GraniteMoeForCausalLM: Llama attention (attention_bias), a router without bias and E experts with a fused
    input_linear (gate|up) and output_linear, no biases; granitemoeshared adds a shared MLP of
    shared_intermediate_size (none when 0). The multipliers are scalars: no parameters, no matmuls."""
    h = c.int("num_attention_heads")
    act = gated_act(c)
    shared = c.int("shared_intermediate_size", default=0) if c.model_type == "granitemoeshared" else 0
    block = moe(c.int("num_local_experts", default=8), c.int("num_experts_per_tok", default=2),
                c.int("intermediate_size"), act, shared=1 if shared else 0, d_ff_shared=shared)
    return decoder(
        **common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"), h=h,
        g=kv_heads(c, None, h), d_k=c.head_dim(None), d_ff=block.size("d_ffe"), mlp=act,
        biases=QKVO if c.flag("attention_bias", False) else frozenset(), tied=c.flag("tie_word_embeddings", False),
        moe_block=block,
    )


def seed_oss(c: Config) -> Architecture:
    """SeedOssForCausalLM: Llama with q/k/v bias from attention_bias (default true), the o_proj bias from its own
    attention_out_bias (default false), gate/up/down bias from mlp_bias; head_dim 128 by default."""
    h = c.int("num_attention_heads")
    biases = set(QKV if c.flag("attention_bias", True) else ())
    if c.flag("attention_out_bias", False):
        biases.add("o")
    if c.flag("mlp_bias", False):
        biases |= {"gate", "up", "down"}
    return decoder(
        **common(c), d=c.int("hidden_size"), L=c.int("num_hidden_layers"), V=c.int("vocab_size"), h=h,
        g=kv_heads(c, 8, h), d_k=c.head_dim(128), d_ff=c.int("intermediate_size"), mlp=gated_act(c),
        biases=frozenset(biases), tied=c.flag("tie_word_embeddings", False),
    )


def _plain_act(name: str) -> str:
    """The non-gated activation of an up/down MLP (Nemotron's, reused by Apertus)."""
    for prefix, act in (("xielu", "xielu"), ("relu2", "relu2"), ("gelu", "gelu"), ("silu", "silu"),
                        ("swish", "silu"), ("relu", "relu")):
        if name.startswith(prefix):
            return act
    return "gelu" if name in ("swiglu", "geglu", "glu") else name


def apertus(c: Config) -> Architecture:
    """ApertusForCausalLM: Llama attention (attention_bias) with RMSNorm q_norm/k_norm over head_dim, an up/down
    MLP without biases whose xIELU activation (hidden_act default) learns two scalars α_p, α_n per layer;
    attention_layernorm and feedforward_layernorm replace Llama's two norms."""
    d, L, V, h = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size"), c.int("num_attention_heads")
    hidden_act = c.str("hidden_act", "xielu") or "xielu"
    act = _plain_act(hidden_act)
    mixer = attention(d, h, kv_heads(c, None, h), c.head_dim(None),
                      bias=QKVO if c.flag("attention_bias", False) else frozenset(), qk_norm="head",
                      qk_norm_kind="rmsnorm", name=c.name)
    ffn = dense(d, c.int("intermediate_size"), act, act_params=2 if act == "xielu" else 0)
    return _model(c, LayerFacts((mixer,), ffn), d=d, L=L, V=V, tied=c.flag("tie_word_embeddings", False))


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "gpt_oss": gpt_oss, "llama4_text": llama4_text, "llama4": llama4, "exaone4": exaone4, "phimoe": phimoe,
    "granitemoe": granitemoe, "granitemoeshared": granitemoe, "seed_oss": seed_oss, "apertus": apertus,
}
