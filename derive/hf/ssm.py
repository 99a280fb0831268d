"""Loaders of the state-space families: pure Mamba2 and the Mamba hybrids (Jamba, Bamba, Falcon-H1,
Nemotron-H, Zamba2).

Each function mirrors its transformers 5.x modeling code and config class: a key the config omits
means the class default, except the sizes (width, depth, attention heads, vocabulary, FFN width), whose
absence is an error, as for every family; the layer pattern (``attn_layer_period``/``offset``, ``attn_layer_indices``,
``hybrid_override_pattern``, ``layers_block_type``) becomes a Pattern through ``build.stack``, and a
pattern or a head count that cannot be is a DeriveError naming the key.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from derive.architecture import Architecture, Layer
from derive.errors import DeriveError
from derive.hf.build import (
    QKVO,
    LayerFacts,
    attention,
    dense,
    mamba,
    mamba2,
    model,
    moe,
    shared_use,
    stack,
)
from derive.hf.config import Config
from derive.hf.families import common, gated_act

BIAS = frozenset({"in", "out"})
NONE: frozenset = frozenset()


def _number(c: Config, key: str, default: float) -> float:
    val = c.get(key, default)
    if isinstance(val, bool) or not isinstance(val, int | float):
        raise DeriveError(f"{c.name}: {key} must be a number in config.json, got {val!r}")
    return val


def _inner(c: Config, d: int, key: str, default: float = 2) -> int:
    """The SSM inner width int(expand · hidden_size), as the mixers compute it."""
    return int(_number(c, key, default) * d)


def _heads(c: Config, d_ssm: int, heads_key: str, head_dim_key: str | None, where: str) -> int:
    """SSM heads that divide the inner width; a head size given next to them must multiply back to it."""
    h = c.int(heads_key)
    if h <= 0 or d_ssm % h:
        raise DeriveError(f"{c.name}: {heads_key}={h} does not divide the SSM inner width {where}={d_ssm}")
    if head_dim_key is not None:
        if c.raw.get(head_dim_key) not in (None, "auto"):
            p = c.int(head_dim_key)
            if p * h != d_ssm:
                raise DeriveError(f"{c.name}: {head_dim_key}={p} × {heads_key}={h} is not the SSM inner width "
                                  f"{where}={d_ssm}")
    return h


def _groups(c: Config, heads: int, heads_key: str, *keys: str, default: int) -> int:
    """Mamba2 groups (heads of a group share B and C): they must divide the SSM heads."""
    g = c.int(*keys, default=default)
    if g <= 0 or heads % g:
        key = next((k for k in keys if c.raw.get(k) is not None), keys[0])
        raise DeriveError(f"{c.name}: {key}={g} groups must divide {heads_key}={heads} SSM heads")
    return g


def _positive(c: Config, key: str, default: int) -> int:
    v = c.int(key, default=default)
    if v <= 0:
        raise DeriveError(f"{c.name}: {key} must be a positive integer, got {v}")
    return v


def _period(c: Config, period_key: str, offset_key: str, period: int, offset: int) -> tuple[int, int]:
    p = _positive(c, period_key, period)
    o = c.int(offset_key, default=offset)
    if not 0 <= o < p:
        raise DeriveError(f"{c.name}: {offset_key}={o} must be at least 0 and below {period_key}={p}")
    return p, o


def _attention(c: Config, d: int, h: int, g: int, d_k: int | None, **kw: Any) -> Any:
    return attention(d, h, g, d_k, name=c.name, **kw)


def _kv_heads(c: Config, h: int, default: int | None) -> int:
    return c.int("num_key_value_heads", default=h if default is None else default)


# ---- Mamba2 ----------------------------------------------------------------------------------------

def mamba2_lm(c: Config) -> Architecture:
    """Mamba2ForCausalLM: every layer an RMSNorm and a Mamba2 mixer (gated norm always); head untied by default."""
    d = c.int("hidden_size")
    d_ssm = _inner(c, d, "expand")
    h = _heads(_with_default(c, "head_dim", 64), d_ssm, "num_heads", "head_dim", "expand·hidden_size")
    mixer = mamba2(d, d_ssm, h, _groups(c, h, "num_heads", "n_groups", default=8), c.int("state_size", default=128),
                   c.int("conv_kernel", default=4), c.int("chunk_size", default=256),
                   conv_bias=c.flag("use_conv_bias", True), bias=BIAS if c.flag("use_bias", False) else NONE)
    L = c.int("num_hidden_layers")
    st = stack((), L, uniform=LayerFacts((mixer,), None, norms=1))
    return model(c.name, "mamba2", d, c.int("vocab_size"), st, positions="none",
                 tied=c.flag("tie_word_embeddings", False), norm="rmsnorm", dtype=common(c)["dtype"],
                 source="config.json")


# ---- Jamba -------------------------------------------------------------------------------------------

def jamba(c: Config) -> Architecture:
    """JambaForCausalLM: layer i has attention when i % attn_layer_period == attn_layer_offset, else a Mamba
    mixer (with Δ/B/C RMSNorms, dt_proj always with a bias); MoE when i % expert_layer_period ==
    expert_layer_offset and num_experts > 1, else a SwiGLU MLP; no positions (no RoPE), no biases."""
    d = c.int("hidden_size")
    L = c.int("num_hidden_layers")
    h = c.int("num_attention_heads")
    g = _kv_heads(c, h, 8)
    a_period, a_offset = _period(c, "attn_layer_period", "attn_layer_offset", 8, 4)
    e_period, e_offset = _period(c, "expert_layer_period", "expert_layer_offset", 2, 1)
    E = c.int("num_experts", default=16)
    d_ff = c.int("intermediate_size")
    act = gated_act(c)
    r_dt = math.ceil(d / 16) if c.raw.get("mamba_dt_rank") in (None, "auto") else c.int("mamba_dt_rank")
    attn = _attention(c, d, h, g, c.head_dim())
    ssm = mamba(d, _inner(c, d, "mamba_expand"), c.int("mamba_d_state", default=16), c.int("mamba_d_conv", default=4),
                r_dt, conv_bias=c.flag("mamba_conv_bias", True),
                bias=BIAS if c.flag("mamba_proj_bias", False) else NONE, dt_norms=True)
    mlp = dense(d, d_ff, act)
    experts = moe(E, c.int("num_experts_per_tok", default=2), d_ff, act) if E > 1 else None

    def facts(i: int) -> LayerFacts:
        mixer = attn if i % a_period == a_offset else ssm
        ffn = experts if experts is not None and i % e_period == e_offset else mlp
        return LayerFacts((mixer,), ffn, norms=2)

    st = stack(facts, L, name=c.name)
    return model(c.name, "jamba", d, c.int("vocab_size"), st, positions="none",
                 tied=c.flag("tie_word_embeddings", False), norm="rmsnorm", dtype=common(c)["dtype"],
                 source="config.json")


# ---- Bamba ---------------------------------------------------------------------------------------------

def _indices(c: Config, key: str, L: int) -> set[int]:
    idx = c.int_list(key) or []
    bad = [i for i in idx if not 0 <= i < L]
    if bad:
        raise DeriveError(f"{c.name}: {key} names layer {bad[0]}, but num_hidden_layers is {L}")
    return set(idx)


def bamba(c: Config) -> Architecture:
    """BambaForCausalLM: attention at attn_layer_indices (none by default), Mamba2 elsewhere; a SwiGLU MLP and
    two RMSNorms in every layer; mamba_proj_bias on in_proj and out_proj; RoPE (partial) on attention."""
    d = c.int("hidden_size")
    L = c.int("num_hidden_layers")
    h = c.int("num_attention_heads")
    g = _kv_heads(c, h, 8)
    d_ssm = _inner(c, d, "mamba_expand")
    hm = _heads(_with_default(c, "mamba_n_heads", 128), d_ssm, "mamba_n_heads", "mamba_d_head",
                "mamba_expand·hidden_size")
    attn_at = _indices(c, "attn_layer_indices", L)
    attn = _attention(c, d, h, g, c.head_dim())
    groups = _groups(c, hm, "mamba_n_heads", "mamba_n_groups", default=1)
    ssm = mamba2(d, d_ssm, hm, groups, c.int("mamba_d_state", default=256), c.int("mamba_d_conv", default=4),
                 c.int("mamba_chunk_size", default=256), conv_bias=c.flag("mamba_conv_bias", True),
                 bias=BIAS if c.flag("mamba_proj_bias", False) else NONE)
    mlp = dense(d, c.int("intermediate_size"), gated_act(c))
    st = stack(lambda i: LayerFacts((attn if i in attn_at else ssm,), mlp, norms=2), L, name=c.name)
    return model(c.name, "bamba", d, c.int("vocab_size"), st, positions="rope" if attn_at else "none",
                 tied=c.flag("tie_word_embeddings", False), norm="rmsnorm", dtype=common(c)["dtype"],
                 source="config.json")


def _with_default(c: Config, *pairs: Any) -> Config:
    """The config with class defaults filled in for absent keys (``key, default, key, default, …``), so that
    checks can name the key."""
    raw = dict(c.raw)
    for key, default in zip(pairs[::2], pairs[1::2], strict=True):
        if raw.get(key) is None:
            raw[key] = default
    return Config(raw, c.name)


# ---- Falcon-H1 -------------------------------------------------------------------------------------------

def falcon_h1(c: Config) -> Architecture:
    """FalconH1ForCausalLM: every layer runs attention AND a Mamba2 mixer on the same normed input, then a
    SwiGLU MLP; mamba_proj_bias is in_proj's bias, projectors_bias out_proj's; the mixer's gated RMSNorm
    exists only with mamba_rms_norm; the multipliers (and the mup_vector buffer) are no parameters."""
    d = c.int("hidden_size")
    L = c.int("num_hidden_layers")
    h = c.int("num_attention_heads")
    g = _kv_heads(c, h, 8)
    if "mamba_d_ssm" in c.raw and c.raw["mamba_d_ssm"] is None:  # null: expand·d; absent: the default 1024
        d_ssm, where = _inner(c, d, "mamba_expand"), "mamba_expand·hidden_size"
    else:
        d_ssm, where = c.int("mamba_d_ssm", default=1024), "mamba_d_ssm"
    hm = _heads(_with_default(c, "mamba_n_heads", 128), d_ssm, "mamba_n_heads", "mamba_d_head", where)
    bias = frozenset({"in"} if c.flag("mamba_proj_bias", False) else ()) | \
        frozenset({"out"} if c.flag("projectors_bias", False) else ())
    groups = _groups(c, hm, "mamba_n_heads", "mamba_n_groups", default=1)
    ssm = mamba2(d, d_ssm, hm, groups, c.int("mamba_d_state", default=256), c.int("mamba_d_conv", default=4),
                 c.int("mamba_chunk_size", default=256), conv_bias=c.flag("mamba_conv_bias", True), bias=bias,
                 gated_norm=c.flag("mamba_rms_norm", False))
    attn = _attention(c, d, h, g, c.head_dim(), bias=QKVO if c.flag("attention_bias", False) else NONE)
    mlp = dense(d, c.int("intermediate_size"), "swiglu",
                frozenset({"gate", "up", "down"}) if c.flag("mlp_bias", False) else NONE)
    st = stack((), L, uniform=LayerFacts((attn, ssm), mlp, norms=2))
    return model(c.name, "falcon_h1", d, c.int("vocab_size"), st, positions="rope",
                 tied=c.flag("tie_word_embeddings", False), norm="rmsnorm", dtype=common(c)["dtype"],
                 source="config.json", notes=("Falcon-H1: attention and Mamba2 read the same normed input in every "
                                              "layer; their outputs are added",))


# ---- Nemotron-H ------------------------------------------------------------------------------------------

#: hybrid_override_pattern characters and layers_block_type names → the one block of that layer
NEMOTRON_CHARS = {"M": "mamba", "*": "attention", "-": "mlp", "E": "moe"}
NEMOTRON_NAMES = {"mamba": "mamba", "linear_attention": "mamba", "attention": "attention",
                  "full_attention": "attention", "mlp": "mlp", "moe": "moe"}


def _nemotron_pattern(c: Config) -> list[str]:
    listed = c.str_list("layers_block_type") or c.str_list("layer_types")
    key = "layers_block_type" if c.raw.get("layers_block_type") is not None else "layer_types"
    if listed is not None:
        bad = sorted({t for t in listed if t not in NEMOTRON_NAMES})
        if bad:
            raise DeriveError(f"{c.name}: {key} has unknown layer kind {bad[0]!r}; known: "
                              f"{', '.join(NEMOTRON_NAMES)}")
        kinds, where = [NEMOTRON_NAMES[t] for t in listed], key
    else:
        pattern = c.str("hybrid_override_pattern")
        if pattern is None:
            return ["mamba", "moe", "attention", "mlp"]  # the config class default
        bad = sorted({ch for ch in pattern if ch not in NEMOTRON_CHARS})
        if bad:
            raise DeriveError(f"{c.name}: hybrid_override_pattern has unknown character {bad[0]!r}; known: "
                              "M (Mamba2), * (attention), - (MLP), E (MoE)")
        kinds, where = [NEMOTRON_CHARS[ch] for ch in pattern], "hybrid_override_pattern"
    if "num_hidden_layers" in c.raw and c.raw["num_hidden_layers"] is not None:
        L = c.int("num_hidden_layers")
        if len(kinds) != L:
            raise DeriveError(f"{c.name}: {where} lists {len(kinds)} layers but num_hidden_layers is {L}")
    return kinds


def nemotron_h(c: Config) -> Architecture:
    """NemotronHForCausalLM: each layer is ONE block — Mamba2, attention (no bias, no RoPE), a ReLU² MLP
    (up, down) or a MoE (ReLU² experts, one shared expert) — behind its own RMSNorm; the LM head is never
    tied; use_bias sets the Mamba2 projections' biases (mamba_proj_bias and attention_bias are unused)."""
    if c.raw.get("moe_latent_size") is not None:
        raise DeriveError(f"{c.name}: moe_latent_size={c.raw['moe_latent_size']} (MoE experts in a latent "
                          "space) is not supported yet")
    kinds = _nemotron_pattern(c)
    d = c.int("hidden_size")
    V = c.int("vocab_size")
    mlp_bias = frozenset({"up", "down"}) if c.flag("mlp_bias", False) else NONE
    blocks: dict[str, Any] = {}
    if "mamba" in kinds:  # the mixer's inner width is mamba_num_heads × mamba_head_dim (expand is not read)
        hm, p = c.int("mamba_num_heads", default=128), c.int("mamba_head_dim", default=64)
        groups = _groups(c, hm, "mamba_num_heads", "n_groups", "mamba_n_groups", default=8)
        blocks["mamba"] = mamba2(d, hm * p, hm, groups, c.int("ssm_state_size", default=128),
                                 c.int("conv_kernel", "mamba_d_conv", default=4),
                                 c.int("chunk_size", "mamba_chunk_size", default=128),
                                 conv_bias=c.flag("use_conv_bias", c.flag("mamba_conv_bias", True)),
                                 bias=BIAS if c.flag("use_bias", False) else NONE)
    if "attention" in kinds:
        h = c.int("num_attention_heads")
        blocks["attention"] = _attention(c, d, h, _kv_heads(c, h, 8), c.int("head_dim", "attention_head_dim",
                                                                           default=128))
    if "mlp" in kinds:
        blocks["mlp"] = dense(d, c.int("intermediate_size"), "relu2", mlp_bias)
    if "moe" in kinds:
        blocks["moe"] = moe(c.int("n_routed_experts", "num_local_experts", default=8),
                            c.int("num_experts_per_tok", default=2), c.int("moe_intermediate_size", default=7688),
                            "relu2", shared=1,
                            d_ff_shared=c.int("moe_shared_expert_intermediate_size", default=7688),
                            shared_bias=mlp_bias)

    def facts(i: int) -> LayerFacts:
        kind = kinds[i]
        if kind in ("mamba", "attention"):
            return LayerFacts((blocks[kind],), None, norms=1)
        return LayerFacts((), blocks[kind], norms=1)

    st = stack(facts, len(kinds), name=c.name, key="hybrid_override_pattern")
    return model(c.name, "nemotron_h", d, V, st, positions="none", tied=False,
                 norm="rmsnorm", dtype=common(c)["dtype"], source="config.json")


# ---- Zamba2 ----------------------------------------------------------------------------------------------

ZAMBA2_DEFAULT_TYPES = (["mamba"] + (["mamba"] * 5 + ["hybrid"]) * 7 + ["mamba"] * 4 + ["hybrid"] + ["mamba"] * 3
                        + ["hybrid"] + ["mamba"] * 2)


def zamba2(c: Config) -> Architecture:
    """Zamba2ForCausalLM: every layer a Mamba2 mixer (conv bias always) behind an RMSNorm; a "hybrid" layer
    first runs a shared transformer block (attention over the 2d-wide [hidden, embeddings], a gated MLP; blocks
    taken in turn from num_mem_blocks), whose output goes through the layer's own d×d linear. The shared blocks'
    weights are counted once; the LoRA adapters are per hybrid position (the MLP's always, q/k/v's with
    use_shared_attention_adapter); tied by default (the PreTrainedConfig default)."""
    d = c.int("hidden_size")
    L = c.int("num_hidden_layers")
    types = c.str_list("layers_block_type") or list(ZAMBA2_DEFAULT_TYPES)
    bad = sorted({t for t in types if t not in ("mamba", "hybrid")})
    if bad:
        raise DeriveError(f"{c.name}: layers_block_type has unknown layer kind {bad[0]!r}; known: mamba, hybrid")
    if len(types) != L:
        raise DeriveError(f"{c.name}: layers_block_type lists {len(types)} layers but num_hidden_layers is {L}")
    h = c.int("num_attention_heads")
    g = _kv_heads(c, h, None)
    d_ssm = _inner(c, d, "mamba_expand")
    hm = _heads(_with_default(c, "n_mamba_heads", 8), d_ssm, "n_mamba_heads", None, "mamba_expand·hidden_size")
    bias = c.flag("add_bias_linear", False)
    groups = _groups(c, hm, "n_mamba_heads", "mamba_ngroups", default=1)
    ssm = mamba2(d, d_ssm, hm, groups, c.int("mamba_d_state", default=64), c.int("mamba_d_conv", default=4),
                 c.int("chunk_size", default=256), conv_bias=True, bias=BIAS if bias else NONE)
    d_ff = c.int("intermediate_size", default=4 * d)
    act = gated_act(c)
    if (2 * d) % h:
        raise DeriveError(f"{c.name}: num_attention_heads={h} does not divide the shared attention's width "
                          f"2·hidden_size={2 * d}")
    rope = c.flag("use_mem_rope", False)
    attn = _attention(c, d, h, g, 2 * d // h, input_mult=2, rope=rope)
    mlp = dense(d, d_ff, act, frozenset({"gate", "up", "down"}) if bias else NONE)
    n_pos = types.count("hybrid")
    n_blocks = min(_positive(c, "num_mem_blocks", 1), n_pos)
    shared = tuple(Layer(mixers=(attn,), ffn=mlp, norms=3) for _ in range(n_blocks))
    rank = _positive(c, "adapter_rank", 128)
    attn_adapters = c.flag("use_shared_attention_adapter", False)
    positions = [i for i, t in enumerate(types) if t == "hybrid"]

    def facts(i: int) -> LayerFacts:
        if types[i] == "mamba":
            return LayerFacts((ssm,), None, norms=1)
        use = shared_use(positions.index(i) % n_blocks, rank=rank, lora_qkv=2 if attn_adapters else 0,
                         lora_mlp=2, d_ff=d_ff, proj=True)
        return LayerFacts((ssm,), None, norms=1, shared=use)

    st = stack(facts, L, name=c.name, key="layers_block_type")
    notes = ("Zamba2: each shared block's input norm is 2d wide (the hidden state next to the embeddings): it is "
             "counted as two d-wide norms of the block's three",) if shared else ()
    return model(c.name, "zamba2", d, c.int("vocab_size"), st, shared_blocks=shared,
                 positions="rope" if rope else "none", tied=c.flag("tie_word_embeddings", True), norm="rmsnorm",
                 dtype=common(c)["dtype"], source="config.json", notes=notes)


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "mamba2": mamba2_lm, "jamba": jamba, "bamba": bamba, "falcon_h1": falcon_h1, "nemotron_h": nemotron_h,
    "zamba2": zamba2,
}
