"""Loaders of DeepSeek (multi-head latent attention) and the DeepSeek-style mixture-of-experts families.

DeepSeek-V2/V3 (and Kimi K2, which ships model_type ``kimi_k2`` or ``deepseek_v3``) pair multi-head
latent attention with a DeepSeek MoE: dense layers first (``first_k_dense_replace``), then routed
experts of ``moe_intermediate_size`` and shared experts that are ONE MLP of width
moe_intermediate_size × n_shared_experts. GLM-4.5/4.6/4.7 (glm4_moe) and dots.llm1 (dots1) keep that
MoE with grouped-query attention; Hunyuan-A13B (hunyuan_v1_moe) and ERNIE 4.5 (ernie4_5, ernie4_5_moe)
have their own rules. Each loader mirrors the transformers 5.x modeling code: the count is
``sum(p.numel() for p in model.parameters())`` of the ``*ForCausalLM`` model. A router's
``e_score_correction_bias`` is a buffer in DeepSeek-V3, GLM and dots1 (not counted) and a parameter in
ERNIE (counted). DeepSeek-V3's and GLM's multi-token-prediction layers are in the checkpoint, not in
the model transformers builds: they are an extra part, counted with ``--option mtp``.

Keys a config omits take the config class's default, except the sizes (width, depth, heads, vocabulary,
FFN widths, the MLA latent and head sizes), whose absence is an error; ``q_lora_rank: null`` means
uncompressed queries (one q_proj) while an absent q_lora_rank is the class default 1536.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from derive.architecture import Architecture, Block, Layer, Stack
from derive.errors import DeriveError
from derive.hf.build import QKV, QKVO, LayerFacts, attention, dense, mla, moe, mtp, per_layer, stack
from derive.hf.config import Config
from derive.hf.families import LAYER_TYPES, common, gated_act, layer_types, llama_like

_MISSING = object()


def _optional(c: Config, key: str, default: Any) -> int | None:
    """An integer that may be null: absent → the class default, null → None, else an integer."""
    if key not in c.raw:
        return default
    if c.raw[key] is None:
        return None
    return c.int(key)


def _count(c: Config, key: str, default: int, *alts: str) -> int:
    """A non-negative integer (layer counts, indices, intervals), the class default when absent or null."""
    val = c.int(key, *alts, default=default)
    if val < 0:
        raise DeriveError(f"{c.name}: {key} must be a non-negative integer in config.json, got {val}")
    return val


def _first_dense(c: Config, L: int, default: int) -> int:
    k = _count(c, "first_k_dense_replace", default)
    if k > L:
        raise DeriveError(f"{c.name}: first_k_dense_replace={k} exceeds num_hidden_layers={L} (layers i < k are "
                          "dense; k = num_hidden_layers makes every layer dense)")
    return k


def _kv_heads(c: Config, h: int, default: int | None) -> int:
    """num_key_value_heads: the class default when absent (None: h), h when null."""
    g = _optional(c, "num_key_value_heads", default)
    return h if g is None else g


def _head_dim(c: Config, d: int, h: int) -> int:
    """``getattr(config, "head_dim", hidden_size // num_attention_heads)`` (null read as absent)."""
    hd = _optional(c, "head_dim", None)
    if hd is not None:
        return hd
    if h <= 0:
        raise DeriveError(f"{c.name}: num_attention_heads must be a positive integer, got {h}")
    return d // h


def _mtp_layers(c: Config) -> int:
    """num_nextn_predict_layers: not a config-class key, so transformers never builds these layers."""
    return _count(c, "num_nextn_predict_layers", 0)


def _model(c: Config, *, L: int, mixer: Callable[[int], Block], ffn: Callable[[int], Block | None],
           tied: bool, head_bias: bool = False, mtp_layers: int = 0, notes: tuple[str, ...] = ()) -> Architecture:
    """A decoder of RMSNorm pre-norm layers (input and post-attention norms), RoPE, one mixer and one FFN per
    layer chosen by index; ``mtp_layers`` MTP modules (layer indices L, L+1, …) as the extra part ``mtp``."""
    facts = [LayerFacts((mixer(i),), ffn(i), 2) for i in per_layer(c.name, L)]
    st = stack(facts, L, name=c.name)
    extras: tuple[tuple[str, Stack], ...] = ()
    if mtp_layers:
        i = L  # the first MTP module is built as layer L would be (a MoE layer in every published checkpoint)
        extras = (("mtp", Stack((Layer(mixers=(mtp(), mixer(i)), ffn=ffn(i), norms=2),), mtp_layers,
                                count_symbol="L_mtp")),)
    return Architecture(**common(c), d=c.int("hidden_size"), V=c.int("vocab_size"), stack=st, positions="rope",
                        tied=tied, norm="rmsnorm", head_bias=head_bias, extras=extras, notes=notes)


# ---- DeepSeek-V2 / V3, Kimi K2: multi-head latent attention + DeepSeek MoE ------------------------

def _mla(c: Config, bias_key: str = "attention_bias") -> Block:
    r_q = _optional(c, "q_lora_rank", 1536)
    if r_q is not None and r_q <= 0:
        raise DeriveError(f"{c.name}: q_lora_rank must be a positive integer or null (no query compression), "
                          f"got {r_q}")
    sizes = {}
    for key in ("num_attention_heads", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
        sizes[key] = c.int(key)
        if sizes[key] <= 0:
            raise DeriveError(f"{c.name}: {key} must be a positive integer in config.json, got {sizes[key]}")
    # attention_bias puts a bias on q_a_proj, kv_a_proj_with_mqa and o_proj (never on q_proj, q_b_proj, kv_b_proj)
    bias = frozenset({"q_a", "kv_a", "o"}) if c.flag(bias_key, False) else frozenset()
    return mla(sizes["num_attention_heads"], sizes["kv_lora_rank"], sizes["qk_nope_head_dim"],
               sizes["qk_rope_head_dim"], sizes["v_head_dim"], r_q, bias=bias)


def _deepseek_moe(c: Config, *, experts: int, top_k: int | None, shared: int | None, shared_bias: frozenset,
                  ) -> Block:
    E = c.int("n_routed_experts", "num_experts", "num_local_experts", default=experts)
    k = c.int("num_experts_per_tok") if top_k is None else c.int("num_experts_per_tok", default=top_k)
    ns = _optional(c, "n_shared_experts", shared)
    mi = c.int("moe_intermediate_size")
    for key, val in (("n_routed_experts", E), ("num_experts_per_tok", k), ("moe_intermediate_size", mi)):
        if val <= 0:
            raise DeriveError(f"{c.name}: {key} must be a positive integer in config.json, got {val}")
    if ns is not None and ns < 0:
        raise DeriveError(f"{c.name}: n_shared_experts must be a non-negative integer or null, got {ns}")
    # the shared experts are one MLP of width moe_intermediate_size × n_shared_experts
    return moe(E, k, mi, gated_act(c), shared=1 if ns else 0, d_ff_shared=mi * (ns or 0), shared_bias=shared_bias)


def _deepseek(c: Config, *, first_dense: int, experts: int, top_k: int | None, shared: int | None,
              mlp_bias: bool, mtp_layers: int = 0) -> Architecture:
    L = c.int("num_hidden_layers")
    k_dense = _first_dense(c, L, first_dense)
    bias = frozenset({"gate", "up", "down"}) if mlp_bias else frozenset()
    mixer = _mla(c)
    dense_ffn = dense(c.int("hidden_size"), c.int("intermediate_size"), gated_act(c), bias) if k_dense else None
    moe_ffn = _deepseek_moe(c, experts=experts, top_k=top_k, shared=shared, shared_bias=bias) \
        if k_dense < L or mtp_layers else None
    notes: tuple[str, ...] = ()
    freq = _count(c, "moe_layer_freq", 1)
    if freq != 1:
        notes = (f"moe_layer_freq={freq} is not read by transformers: every layer from first_k_dense_replace on is a "
                 "mixture of experts",)
    return _model(c, L=L, mixer=lambda i: mixer, ffn=lambda i: dense_ffn if i < k_dense else moe_ffn,
                  tied=c.flag("tie_word_embeddings", False), mtp_layers=mtp_layers, notes=notes)


def deepseek_v2(c: Config) -> Architecture:
    """DeepSeek-V2 (DeepseekV2Config): MLA; dense layers i < first_k_dense_replace (default 0); MoE of
    n_routed_experts (64) routed and n_shared_experts (2; null: none) shared; mlp_bias on the dense MLP and the
    shared experts (never the routed ones); a plain router without bias or correction bias."""
    return _deepseek(c, first_dense=0, experts=64, top_k=None, shared=2, mlp_bias=c.flag("mlp_bias", False))


def deepseek_v3(c: Config) -> Architecture:
    """DeepSeek-V3 / R1, Kimi K2 (DeepseekV3Config): MLA; first_k_dense_replace (3) dense layers, then MoE of
    n_routed_experts (256), top-8, n_shared_experts (1); no MLP biases; e_score_correction_bias is a buffer;
    num_nextn_predict_layers MTP modules are not built (--option mtp counts them)."""
    return _deepseek(c, first_dense=3, experts=256, top_k=8, shared=1, mlp_bias=False, mtp_layers=_mtp_layers(c))


# ---- GLM-4.5 (glm4_moe), dots.llm1 (dots1): grouped-query attention + DeepSeek-V3 MoE ------------------

def _gqa_moe(c: Config, *, first_dense: int, experts: int | None, top_k: int | None, shared: int | None,
             attn: Callable[[int], Block], mtp_layers: int = 0) -> Architecture:
    L = c.int("num_hidden_layers")
    k_dense = _first_dense(c, L, first_dense)
    dense_ffn = dense(c.int("hidden_size"), c.int("intermediate_size"), gated_act(c)) if k_dense else None
    moe_ffn = None
    if k_dense < L or mtp_layers:
        E = c.int("n_routed_experts", "num_local_experts") if experts is None else \
            c.int("n_routed_experts", "num_local_experts", default=experts)
        k = c.int("num_experts_per_tok") if top_k is None else c.int("num_experts_per_tok", default=top_k)
        ns = c.int("n_shared_experts") if shared is None else _count(c, "n_shared_experts", shared)
        mi = c.int("moe_intermediate_size")
        moe_ffn = moe(E, k, mi, gated_act(c), shared=1 if ns else 0, d_ff_shared=mi * ns)
    return _model(c, L=L, mixer=attn, ffn=lambda i: dense_ffn if i < k_dense else moe_ffn,
                  tied=c.flag("tie_word_embeddings", False), mtp_layers=mtp_layers)


def glm4_moe(c: Config) -> Architecture:
    """GLM-4.5/4.6/4.7 (Glm4MoeConfig): q/k/v with attention_bias, o_proj never; optional per-head RMSNorm q_norm
    and k_norm (use_qk_norm); head_dim as given, else hidden_size // heads; dense layers i < first_k_dense_replace
    (1), then MoE (128 routed, top-8, 1 shared of moe_intermediate_size × n_shared_experts); partial RoPE has no
    parameters; the MTP layer at index num_hidden_layers is not built (--option mtp)."""
    d, h = c.int("hidden_size"), c.int("num_attention_heads")
    block = attention(d, h, _kv_heads(c, h, 8), _head_dim(c, d, h), name=c.name,
                      bias=QKV if c.flag("attention_bias", False) else frozenset(),
                      qk_norm="head" if c.flag("use_qk_norm", False) else "none")
    return _gqa_moe(c, first_dense=1, experts=128, top_k=8, shared=1, attn=lambda i: block,
                    mtp_layers=_mtp_layers(c))


def dots1(c: Config) -> Architecture:
    """dots.llm1 (Dots1Config): Qwen3 attention (q/k/v/o with attention_bias, per-head RMSNorm q_norm and k_norm);
    DeepSeek-V3 MoE whose expert counts have no usable class default; sliding window (4096) on the layers
    i >= max_window_layers (62) unless layer_types says otherwise."""
    d, h = c.int("hidden_size"), c.int("num_attention_heads")
    L = c.int("num_hidden_layers")
    base = dict(name=c.name, bias=QKVO if c.flag("attention_bias", False) else frozenset(), qk_norm="head")
    g, hd = _kv_heads(c, h, 32), _head_dim(c, d, h)
    window = _optional(c, "sliding_window", 4096)
    per = layer_types(c, L, LAYER_TYPES)
    if per is None and window is not None:
        start = _count(c, "max_window_layers", 62)
        per = [i >= start for i in per_layer(c.name, L)]
    full = attention(d, h, g, hd, **base)
    swa = attention(d, h, g, hd, window=window, **base) if window else None
    return _gqa_moe(c, first_dense=0, experts=None, top_k=None, shared=None,
                    attn=lambda i: swa if (swa is not None and per is not None and per[i]) else full)


# ---- Hunyuan-A13B: every layer MoE with one shared MLP -------------------------------------------------

def _per_layer_int(c: Config, key: str, alt: str, default: int, L: int) -> list[int]:
    """An integer or a per-layer list of integers (HunYuan's moe_topk)."""
    raw = c.get(key, _MISSING, alt)
    if raw is _MISSING:
        return [default] * len(per_layer(c.name, L))
    if isinstance(raw, list):
        vals = c.int_list(key if key in c.raw else alt) or []
        if len(vals) != L:
            raise DeriveError(f"{c.name}: {key} lists {len(vals)} layers but num_hidden_layers is {L}")
    else:
        vals = [c.int(key, alt)] * len(per_layer(c.name, L))
    if any(v <= 0 for v in vals):
        raise DeriveError(f"{c.name}: {key} must hold positive integers in config.json")
    return vals


def hunyuan_v1_moe(c: Config) -> Architecture:
    """Hunyuan-A13B (HunYuanMoEV1Config): LLaMA attention with q/k/v/o attention_bias and per-head RMSNorm
    query_layernorm/key_layernorm (always built, applied after RoPE); every layer MoE: an fp32 router d→E without
    bias, num_experts routed experts of intermediate_size (transformers ignores moe_intermediate_size), top
    moe_topk (an integer or one per layer), and one shared MLP of intermediate_size (num_shared_expert and
    use_mixed_mlp_moe ignored)."""
    d, h, L = c.int("hidden_size"), c.int("num_attention_heads"), c.int("num_hidden_layers")
    width = c.int("intermediate_size")
    experts = _per_layer_int(c, "num_experts", "num_local_experts", 1, L)
    if len(set(experts)) != 1:
        raise DeriveError(f"{c.name}: num_experts differs between layers; transformers' fused experts need one "
                          "count for every layer")
    tops = _per_layer_int(c, "moe_topk", "num_experts_per_tok", 1, L)
    block = attention(d, h, _kv_heads(c, h, None), _head_dim(c, d, h), name=c.name,
                      bias=QKVO if c.flag("attention_bias", False) else frozenset(), qk_norm="head")
    blocks = {k: moe(experts[0], k, width, gated_act(c), shared=1, d_ff_shared=width) for k in set(tops)}
    return _model(c, L=L, mixer=lambda i: block, ffn=lambda i: blocks[tops[i]],
                  tied=c.flag("tie_word_embeddings", False))


# ---- ERNIE 4.5 ------------------------------------------------------------------------------------

def _ernie_bias(c: Config) -> frozenset:
    return QKVO | {"gate", "up", "down"} if c.flag("use_bias", False) else frozenset()


def ernie4_5(c: Config) -> Architecture:
    """ERNIE-4.5 dense (Ernie4_5Config): LLaMA with use_bias on every projection (never on lm_head), tied by
    default, head_dim 128 by default (not hidden_size / heads; null: hidden_size / heads)."""
    return llama_like(c, biases=_ernie_bias(c), tied_default=True, head_dim=128)


def ernie4_5_moe(c: Config) -> Architecture:
    """ERNIE-4.5 MoE (Ernie4_5_MoeConfig): use_bias on q/k/v/o, the dense MLP, the shared experts and lm_head
    (a bias of its own even when the weight is tied); MoE on layer i when (i + 1) % moe_layer_interval == 0 and
    moe_layer_start_index <= i <= moe_layer_end_index (-1: the last layer); the router's
    e_score_correction_bias [1, E] is a parameter (counted); experts without biases; the shared experts one MLP
    of moe_intermediate_size × moe_num_shared_experts."""
    d, h, L = c.int("hidden_size"), c.int("num_attention_heads"), c.int("num_hidden_layers")
    bias = _ernie_bias(c)
    block = attention(d, h, _kv_heads(c, h, 4), _head_dim(c, d, h), name=c.name, bias=bias & QKVO)
    start = _count(c, "moe_layer_start_index", 1)
    end = c.int("moe_layer_end_index", default=-1)
    end = L - 1 if end == -1 else end
    if end < -1:
        raise DeriveError(f"{c.name}: moe_layer_end_index must be -1 (the last layer) or a layer index, got {end}")
    interval = c.int("moe_layer_interval", default=1)
    if interval <= 0:
        raise DeriveError(f"{c.name}: moe_layer_interval must be a positive integer in config.json, got {interval}")
    is_moe = [(i + 1) % interval == 0 and start <= i <= end for i in per_layer(c.name, L)]
    dense_ffn = dense(d, c.int("intermediate_size"), gated_act(c), bias) if not all(is_moe) else None
    moe_ffn = None
    if any(is_moe):
        E = c.int("moe_num_experts", "num_experts", default=64)
        k = c.int("moe_k", "num_experts_per_tok", default=6)
        ns = _count(c, "moe_num_shared_experts", 2)
        mi = c.int("moe_intermediate_size")
        moe_ffn = moe(E, k, mi, gated_act(c), shared=1 if ns else 0, d_ff_shared=mi * ns,
                      shared_bias=bias & {"gate", "up", "down"}, router_extra=True)
    use_bias = c.flag("use_bias", False)
    return _model(c, L=L, mixer=lambda i: block, ffn=lambda i: moe_ffn if is_moe[i] else dense_ffn,
                  tied=c.flag("tie_word_embeddings", True), head_bias=use_bias)


LOADERS: dict[str, Callable[[Config], Architecture]] = {
    "deepseek_v2": deepseek_v2, "deepseek_v3": deepseek_v3, "kimi_k2": deepseek_v3,
    "glm4_moe": glm4_moe, "dots1": dots1, "hunyuan_v1_moe": hunyuan_v1_moe,
    "ernie4_5": ernie4_5, "ernie4_5_moe": ernie4_5_moe,
}
