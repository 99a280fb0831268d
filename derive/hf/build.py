"""Constructors the loaders share: blocks of each kind, and a decoder stack from per-layer facts.

A loader states a family's facts (which biases, which norms, which layers are windowed or MoE); these
helpers turn them into :class:`~derive.architecture.Block`s and a layer :class:`~derive.architecture.Pattern`,
so that no loader builds a pattern by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from derive.architecture import MAX_PATTERN_LAYERS, Architecture, Block, Layer, Pattern, Stack
from derive.errors import DeriveError

QKVO = frozenset({"q", "k", "v", "o"})
QKV = frozenset({"q", "k", "v"})
MLP_BIASES = frozenset({"up", "down"})
GATED = ("swiglu", "geglu", "glu")


def attention(d: int, h: int, g: int | None = None, d_k: int | None = None, *, bias: frozenset = frozenset(),
              qk_norm: str = "none", qk_norm_kind: str = "rmsnorm", d_v: int | None = None, window: int | None = None,
              chunk: int | None = None, name: str = "config.json", **flags: Any) -> Block:
    """An attention block; a head size that is d/h (given or not) follows d and h when they change, and KV
    heads equal to the query heads stay so (MHA)."""
    g = h if g is None else g
    derived: dict[str, str] = {}
    if d_k is None:
        if h <= 0 or d % h:
            raise DeriveError(f"{name}: num_attention_heads={h} does not divide hidden_size={d} and no head_dim "
                              "is given")
        d_k = d // h
    if d_k * h == d:
        derived["d_k"] = "d/h"
    if g == h:
        derived["g"] = "h"
    if g <= 0 or h % g:
        raise DeriveError(f"{name}: num_key_value_heads={g} must divide num_attention_heads={h}")
    sizes = {"h": h, "g": g, "d_k": d_k}
    if d_v is not None and d_v != d_k:
        sizes["d_v"] = d_v
    if window is not None:
        sizes["window"] = window
    if chunk is not None:
        sizes["chunk"] = chunk
    return Block.of("attention", sizes, derived, bias=frozenset(bias), qk_norm=qk_norm,
                    qk_norm_kind=qk_norm_kind, **flags)


def mla(h: int, r_kv: int, d_nope: int, d_rope: int, d_v: int, r_q: int | None = None, *,
        bias: frozenset = frozenset(), norm_kind: str = "rmsnorm") -> Block:
    """A multi-head latent attention block (``r_q`` None: the queries are not compressed, one q_proj)."""
    sizes = {"h": h, **({"r_q": r_q} if r_q is not None else {}), "r_kv": r_kv, "d_nope": d_nope, "d_rope": d_rope,
             "d_v": d_v}
    allowed = {"q_a", "kv_a", "o"} if r_q is not None else {"q", "kv_a", "o"}
    return Block.of("mla", sizes, bias=frozenset(bias) & allowed, norm_kind=norm_kind)


def mtp() -> Block:
    """The own parts of a multi-token-prediction module (eh_proj and its norms), beside its decoder layer."""
    return Block.of("mtp")


def dense(d: int, d_ff: int, act: str, bias: frozenset = frozenset(), *, act_params: int = 0) -> Block:
    """A dense MLP; ``act_params`` counts learned scalars of the activation (Apertus' xIELU: 2)."""
    derived = {"d_ff": "4d"} if d_ff == 4 * d and act not in GATED else {}
    extra: dict[str, Any] = {"act_params": act_params} if act_params else {}
    return Block.of("dense", {"d_ff": d_ff}, derived, act=act, bias=frozenset(bias) & {"gate", "up", "down"},
                    **extra)


def moe(experts: int, top_k: int, d_ff_expert: int, act: str, *, shared: int = 0, d_ff_shared: int = 0,
        shared_gate: bool = False, router_bias: bool = False, bias: frozenset = frozenset(),
        shared_bias: frozenset | None = None, router_extra: bool = False, act_params: int = 0,
        all_experts: bool = False) -> Block:
    """A mixture of experts; ``all_experts``: the model's code runs every expert on every token (Llama 4)."""
    sizes = {"E": experts, "k": top_k, "d_ffe": d_ff_expert}
    if shared:
        sizes.update(E_s=shared, d_ffs=d_ff_shared)
    flags: dict[str, Any] = {"act": act, "bias": frozenset(bias) & {"gate", "up", "down"},
                             "router_bias": router_bias, "shared_gate": shared_gate and bool(shared),
                             "router_extra": router_extra}
    if shared_bias is not None:
        flags["shared_bias"] = frozenset(shared_bias)
    if act_params:
        flags["act_params"] = act_params
    if all_experts:
        flags["all_experts"] = True
    return Block.of("moe", sizes, **flags)


def mamba(d: int, d_ssm: int, d_state: int, d_conv: int, r_dt: int, *, conv_bias: bool = True,
          bias: frozenset = frozenset(), dt_norms: bool = False) -> Block:
    """A Mamba (selective SSM) mixer; an inner width of 2d follows d when it changes."""
    derived = {"d_ssm": "2d"} if d_ssm == 2 * d else {}
    return Block.of("mamba", {"d_ssm": d_ssm, "d_state": d_state, "d_conv": d_conv, "r_dt": r_dt}, derived,
                    conv_bias=conv_bias, bias=frozenset(bias) & {"in", "out"}, dt_norms=dt_norms)


def mamba2(d: int, d_ssm: int, heads: int, groups: int, d_state: int, d_conv: int, chunk: int, *,
           conv_bias: bool = True, bias: frozenset = frozenset(), gated_norm: bool = True) -> Block:
    """A Mamba2 mixer: d_ssm = heads × head size; the chunk length only changes the scan's FLOPs."""
    derived = {"d_ssm": "2d"} if d_ssm == 2 * d else {}
    return Block.of("mamba2", {"d_ssm": d_ssm, "h_ssm": heads, "n_grp": groups, "d_state": d_state,
                               "d_conv": d_conv, "C_scan": chunk}, derived,
                    conv_bias=conv_bias, bias=frozenset(bias) & {"in", "out"}, gated_norm=gated_norm)


def shared_use(block: int, *, rank: int = 0, lora_qkv: int = 0, lora_mlp: int = 0, d_ff: int | None = None,
               proj: bool = False) -> Block:
    """A layer's use of shared block ``block`` with what this position adds (see derive.layers.shared)."""
    sizes: dict[str, int] = {}
    if lora_qkv or lora_mlp:
        sizes["r_ad"] = rank
    if lora_mlp:
        assert d_ff is not None
        sizes["d_ff"] = d_ff
    return Block.of("shared", sizes, block=block, lora_qkv=lora_qkv, lora_mlp=lora_mlp, proj=proj)


@dataclass(frozen=True)
class LayerFacts:
    """What one layer of a decoder has, as a loader knows it."""

    mixers: tuple[Block, ...]
    ffn: Block | None
    norms: int = 2
    parallel: bool = False
    cross: Block | None = None
    shared: Block | None = None  # the layer runs a shared block (see Layer.shared)


def per_layer(name: str, L: int, key: str = "num_hidden_layers") -> range:
    """range(L), refused when L is too large to walk layer by layer (a stack with a per-layer pattern)."""
    if L > MAX_PATTERN_LAYERS:
        raise DeriveError(f"{name}: {key}={L:,} layers with a per-layer pattern exceeds the bound of "
                          f"{MAX_PATTERN_LAYERS:,} layers")
    return range(L)


def stack(layers: Sequence[LayerFacts] | Callable[[int], LayerFacts], L: int, *, name: str = "config.json",
          uniform: LayerFacts | None = None, count_symbol: str = "L", role: str = "decoder",
          key: str = "num_hidden_layers") -> Stack:
    """A stack from one layer for all (``uniform``), a per-layer function, or a list."""
    if uniform is not None:
        return Stack((_layer(uniform),), L, Pattern(), count_symbol, role)
    facts = [layers(i) for i in per_layer(name, L, key)] if callable(layers) else list(layers)
    if len(facts) != L:
        raise DeriveError(f"{name}: the layer pattern lists {len(facts)} layers but {key} is {L}")
    kinds: list[Layer] = []
    index: list[int] = []
    for f in facts:
        lay = _layer(f)
        for i, k in enumerate(kinds):
            if k == lay:
                index.append(i)
                break
        else:
            kinds.append(lay)
            index.append(len(kinds) - 1)
    return Stack(tuple(kinds), L, Pattern.of(index), count_symbol, role)


def _layer(f: LayerFacts) -> Layer:
    return Layer(mixers=tuple(f.mixers), ffn=f.ffn, cross=f.cross, norms=f.norms, parallel=f.parallel,
                 shared=f.shared)


def model(name: str, family: str, d: int, V: int, st: Stack, **kw: Any) -> Architecture:
    return Architecture(name=name, family=family, d=d, V=V, stack=st, **kw)


def decoder(name: str, family: str, *, d: int, L: int, V: int, h: int, g: int | None = None, d_k: int | None = None,
            d_ff: int, mlp: str, biases: frozenset = frozenset(), positions: str = "rope", T: int | None = None,
            position_offset: int = 0, tied: bool = False, norm: str = "rmsnorm", norms: int = 2,
            final_norm: bool = True, embedding_norm: int = 0, qk_norm: str = "none", qk_norm_kind: str | None = None,
            parallel: bool = False, moe_block: Block | None = None, moe_layers: Sequence[bool] | None = None,
            d_e: int | None = None, window: int | None = None, windowed: Sequence[bool] | None = None,
            dtype: str = "bf16", notes: tuple[str, ...] = (), source: str = "config.json",
            head_bias: bool | None = None, attn_flags: dict[str, Any] | None = None) -> Architecture:
    """A decoder whose layers share one attention shape: optional sliding windows (``windowed`` per layer, or all
    layers when None) and an optional mixture of experts (``moe_layers`` per layer, or all when None)."""
    qk_kind = qk_norm_kind or (norm if norm != "none" else "rmsnorm")
    bias = frozenset(biases)
    base = dict(bias=bias & QKVO, qk_norm=qk_norm, qk_norm_kind=qk_kind, name=name, **(attn_flags or {}))
    full_attn = attention(d, h, g, d_k, **base)
    swa = attention(d, h, g, d_k, window=window, **base) if window else None
    dense_ffn = dense(d, d_ff, mlp, bias)

    def facts(i: int) -> LayerFacts:
        mixer = swa if (swa is not None and (windowed is None or windowed[i])) else full_attn
        ffn = moe_block if (moe_block is not None and (moe_layers is None or moe_layers[i])) else dense_ffn
        return LayerFacts((mixer,), ffn, norms, parallel)

    varies = (swa is not None and windowed is not None) or (moe_block is not None and moe_layers is not None)
    st = stack(facts, L, name=name) if varies else stack((), L, uniform=facts(0))
    return Architecture(name=name, family=family, d=d, V=V, stack=st, positions=positions, T=T,
                        position_offset=position_offset, tied=tied, norm=norm, final_norm=final_norm,
                        embedding_norm=embedding_norm, d_e=d_e, dtype=dtype, notes=notes, source=source,
                        head_bias="lm_head" in bias if head_bias is None else head_bias)
