"""Loaders of models with linear-attention and recurrent token mixers: Qwen3-Next (gated DeltaNet + gated
attention), MiniMax (lightning + softmax attention), RWKV-4, LFM2 (short convolutions + attention).

As in :mod:`derive.hf.families`, a key the config omits means the default of that family's config class,
except the main sizes (width, depth, heads, vocabulary), whose absence is an error. The block
constructors of the recurrent kinds live here with their loaders.
"""

from __future__ import annotations

from collections.abc import Callable

from derive.architecture import Architecture, Block
from derive.errors import DeriveError
from derive.hf.build import LayerFacts, attention, dense, model, moe, per_layer, stack
from derive.hf.config import Config
from derive.hf.families import dtype, gated_act, layer_types, moe_layers

# ---- block constructors ----------------------------------------------------------------------------

#: the chunk length of transformers' torch_chunk_gated_delta_rule (Qwen3-Next passes none, so its default)
CHUNK = 64


def gdn(key_heads: int, value_heads: int, key_dim: int, value_dim: int, kernel: int, *, chunk: int = CHUNK,
        name: str = "config.json", key: str = "linear_num_value_heads") -> Block:
    """A gated-DeltaNet block; the value heads must be a whole multiple of the key heads (q and k are repeated
    to the value heads)."""
    if key_heads <= 0 or value_heads % key_heads:
        raise DeriveError(f"{name}: {key}={value_heads} must be a multiple of linear_num_key_heads={key_heads}")
    return Block.of("gdn", {"H_k": key_heads, "H_v": value_heads, "d_hk": key_dim, "d_hv": value_dim,
                            "K_gdn": kernel, "C_gdn": chunk})


def lightning(d: int, h: int, d_k: int | None = None, *, block: int = 256, name: str = "config.json") -> Block:
    """A lightning-attention block; a head size that is d/h (given or not) follows d and h when they change."""
    if d_k is None:
        if h <= 0 or d % h:
            raise DeriveError(f"{name}: num_attention_heads={h} does not divide hidden_size={d} and no head_dim "
                              "is given")
        d_k = d // h
    derived = {"d_k": "d/h"} if h > 0 and d_k * h == d else {}
    return Block.of("lightning", {"h": h, "d_k": d_k, "B_lit": block}, derived)


def rwkv_time_mix(d: int, d_att: int) -> Block:
    """RWKV time mixing; an attention width equal to d is not a size of its own (it follows d)."""
    return Block.of("rwkv", {} if d_att == d else {"d_att": d_att})


def rwkv_channel_mix(d: int, d_ff: int) -> Block:
    return Block.of("rwkv_ffn", {"d_ff": d_ff}, {"d_ff": "4d"} if d_ff == 4 * d else {})


def short_conv(kernel: int, bias: bool = False) -> Block:
    return Block.of("shortconv", {"L_cache": kernel}, bias=bias)


# ---- shared readers ---------------------------------------------------------------------------------

#: transformers' remap_legacy_layer_types: old names of the two mixer kinds
LEGACY = {"attention": "full_attention", "mamba": "linear_attention"}


def mixer_types(c: Config, L: int, default: Callable[[int], str], known: tuple[str, ...]) -> list[str]:
    """``layer_types`` (legacy names remapped) or the config class's rule; an unknown entry or a list of
    the wrong length is an error naming the key."""
    names = {t: t for t in known}
    names.update({old: new for old, new in LEGACY.items() if new in known})
    types = layer_types(c, L, names) if c.list("layer_types") else None
    return types if types is not None else [default(i) for i in per_layer(c.name, L)]


def _positive(c: Config, key: str, value: int) -> int:
    if value <= 0:
        raise DeriveError(f"{c.name}: {key} must be a positive integer in config.json, got {value}")
    return value


# ---- Qwen3-Next ------------------------------------------------------------------------------------

def qwen3_next(c: Config) -> Architecture:
    """Qwen3NextForCausalLM: gated DeltaNet layers and gated full-attention layers (3:1 by default:
    full_attention_interval 4), q/k RMSNorms over head_dim (class default 256), the query projection doubled
    to gate the output; a sparse MoE block (routed experts + one shared expert with a d→1 sigmoid gate) on
    every layer unless mlp_only_layers or decoder_sparse_step say a dense MLP of intermediate_size."""
    d, L, V = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size")
    h = c.int("num_attention_heads")
    interval = _positive(c, "full_attention_interval", c.int("full_attention_interval", default=4))
    types = mixer_types(c, L, lambda i: "linear_attention" if (i + 1) % interval else "full_attention",
                        ("linear_attention", "full_attention"))
    full = attention(d, h, c.int("num_key_value_heads", default=2), c.head_dim(256),
                     bias=frozenset("qkvo") if c.flag("attention_bias", False) else frozenset(), qk_norm="head",
                     qk_norm_kind="rmsnorm", name=c.name, gate=True)
    linear = gdn(c.int("linear_num_key_heads", default=16), c.int("linear_num_value_heads", default=32),
                 c.int("linear_key_head_dim", default=128), c.int("linear_value_head_dim", default=128),
                 c.int("linear_conv_kernel_dim", default=4), name=c.name)
    act = gated_act(c)
    E = c.int("num_experts", default=512)
    sparse = moe(E, c.int("num_experts_per_tok", default=10), c.int("moe_intermediate_size", default=512), act,
                 shared=1, d_ff_shared=c.int("shared_expert_intermediate_size", default=512),
                 shared_gate=True) if E else None
    per = moe_layers(c, L, E)
    mlp = dense(d, c.int("intermediate_size", default=5632), act)

    def facts(i: int) -> LayerFacts:
        mixer = linear if types[i] == "linear_attention" else full
        ffn = sparse if sparse is not None and (per is None or per[i]) else mlp
        return LayerFacts((mixer,), ffn, 2)

    st = stack(facts, L, name=c.name)
    return model(c.name, c.model_type, d, V, st, positions="rope", tied=c.flag("tie_word_embeddings", False),
                 norm="rmsnorm", dtype=dtype(c),
                 notes=("the multi-token-prediction (mtp.*) weights of a checkpoint are not built by transformers and "
                        "not counted",))


# ---- MiniMax ---------------------------------------------------------------------------------------

def minimax(c: Config) -> Architecture:
    """MiniMaxForCausalLM: lightning-attention and softmax-attention layers (layer_types; by default even
    layers softmax, odd layers lightning), a Mixtral-style MoE on every layer (router d→E, E SwiGLU experts
    of intermediate_size, no shared expert), two RMSNorms per layer. The residual alpha/beta factors are plain
    numbers, not parameters; a legacy attn_type_list is not read by transformers and not here."""
    d, L, V = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size")
    h = c.int("num_attention_heads")
    d_k = c.int("head_dim", default=None)
    types = mixer_types(c, L, lambda i: "full_attention" if (i + 1) % 2 else "linear_attention",
                        ("full_attention", "linear_attention"))
    # num_key_value_heads: absent → the class default 8; null → the query heads (MHA)
    g = c.int("num_key_value_heads", default=h) if "num_key_value_heads" in c.raw else 8
    full = attention(d, h, g, d_k, name=c.name)
    lin = lightning(d, h, d_k, block=_positive(c, "block_size", c.int("block_size", default=256)), name=c.name)
    E = c.int("num_local_experts", "num_experts", default=8)
    ffn = moe(E, c.int("num_experts_per_tok", default=2), c.int("intermediate_size"), gated_act(c))

    def facts(i: int) -> LayerFacts:
        return LayerFacts((lin if types[i] == "linear_attention" else full,), ffn, 2)

    st = stack(facts, L, name=c.name)
    notes = ()
    if c.get("sliding_window"):
        notes = ("sliding_window only masks MiniMax's softmax attention: its cache keeps every token and the "
                 "FLOPs are the full s×s products",)
    return model(c.name, c.model_type, d, V, st, positions="rope", tied=c.flag("tie_word_embeddings", False),
                 norm="rmsnorm", dtype=dtype(c), notes=notes)


# ---- RWKV ------------------------------------------------------------------------------------------

def rwkv(c: Config) -> Architecture:
    """RwkvForCausalLM (RWKV-4): per block ln1, time mixing, ln2, channel mixing (LayerNorms with bias);
    a LayerNorm pre_ln on the embeddings inside block 0; ln_out; an untied head by default.
    attention_hidden_size defaults to d, intermediate_size to 4d."""
    d, L, V = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size")
    d_att = c.int("attention_hidden_size", default=d)
    d_ff = c.int("intermediate_size", default=4 * d)
    st = stack((), L, uniform=LayerFacts((rwkv_time_mix(d, d_att),), rwkv_channel_mix(d, d_ff), 2))
    return model(c.name, c.model_type, d, V, st, positions="none", tied=c.flag("tie_word_embeddings", False),
                 norm="layernorm", embedding_norm=1, dtype=dtype(c),
                 notes=("RWKV's pre_ln (a LayerNorm on the embeddings, inside block 0) is counted as the norm after "
                        "the embedding",))


# ---- LFM2 ------------------------------------------------------------------------------------------

def lfm2_ff(c: Config) -> int:
    """Lfm2MLP's width: block_ff_dim (the original key) wins over intermediate_size; with
    block_auto_adjust_ff_dim it becomes int(2·ff/3), and only when block_ffn_dim_multiplier is not null is it
    scaled and rounded up to block_multiple_of."""
    ff = c.int("block_ff_dim", "intermediate_size", default=12288)
    if c.flag("block_auto_adjust_ff_dim", True):
        ff = int(2 * ff / 3)
        mult = c.raw.get("block_ffn_dim_multiplier", 1.0)
        if mult is not None:
            if isinstance(mult, bool) or not isinstance(mult, int | float):
                raise DeriveError(f"{c.name}: block_ffn_dim_multiplier must be a number in config.json, got {mult!r}")
            ff = int(mult * ff)
            m = _positive(c, "block_multiple_of", c.int("block_multiple_of", default=256))
            ff = m * ((ff + m - 1) // m)
    return _positive(c, "the FFN width from block_ff_dim/intermediate_size", ff)


def lfm2(c: Config) -> Architecture:
    """Lfm2ForCausalLM: short-convolution and attention layers (layer_types, else full_attn_idxs; neither:
    every layer attention), attention with per-head RMSNorm q/k layernorms and no biases, a SwiGLU
    feed_forward of the rounded block_ff_dim, operator_norm and ffn_norm per layer; the module called
    embedding_norm is applied after the last layer (the final norm); tied by default (tie_embedding wins)."""
    d, L, V = c.int("hidden_size"), c.int("num_hidden_layers"), c.int("vocab_size")
    h = c.int("num_attention_heads")
    idxs = c.int_list("full_attn_idxs")
    attn_at = set(per_layer(c.name, L)) if idxs is None else set(idxs)
    types = mixer_types(c, L, lambda i: "full_attention" if i in attn_at else "conv", ("full_attention", "conv"))
    full = attention(d, h, c.int("num_key_value_heads", default=8), c.head_dim(), qk_norm="head",
                     qk_norm_kind="rmsnorm", name=c.name)
    conv = short_conv(_positive(c, "conv_L_cache", c.int("conv_L_cache", default=3)), c.flag("conv_bias", False))
    ffn = dense(d, lfm2_ff(c), "swiglu")

    def facts(i: int) -> LayerFacts:
        return LayerFacts((full if types[i] == "full_attention" else conv,), ffn, 2)

    st = stack(facts, L, name=c.name)
    tied = c.flag("tie_embedding", c.flag("tie_word_embeddings", True))
    return model(c.name, c.model_type, d, V, st, positions="rope", tied=tied, norm="rmsnorm",
                 dtype=dtype(c))


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "qwen3_next": qwen3_next, "minimax": minimax, "rwkv": rwkv, "lfm2": lfm2,
}
