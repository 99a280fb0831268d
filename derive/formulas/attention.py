"""Attention arithmetic: per-head products, the q·k variance, where s² overtakes the projections,
head-size ratios and the bytes of a materialised attention-weights matrix.

The FLOP terms reuse :func:`derive.formulas.flops.score_products` and the layer tree, so these
answers and ``flops.forward`` cannot drift apart.
"""

from __future__ import annotations

import sympy as sp

from derive import conventions as C
from derive import symbols as S
from derive.conventions import FlopConventions
from derive.errors import DeriveError
from derive.formulas import flops, params
from derive.layers.attention import kind_name
from derive.layers.base import score_products
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity

b, s, d, h = S.b, S.s, S.d, S.h

d_k1 = S.define("d_k1", r"d_{k,1}", meaning="head size of the first design compared (its heads: d/d_k1)")
d_k2 = S.define("d_k2", r"d_{k,2}", meaning="head size of the second design compared (its heads: d/d_k2)")


def _attention_kind(ctx: Context) -> str:
    blocks = ctx.arch.blocks_of("attention")
    if not blocks:
        raise DeriveError("this model has no softmax-attention layer")
    return kind_name(blocks[0])


def _stamp(q: Quantity, conv: FlopConventions) -> Quantity:
    return flops.stamp(q, conv.sentences(head=False))


@quantity("attention.head_scores", "QKᵀ FLOPs of one head: [s, d_k]·[d_k, s] for each of b sequences", "FLOP")
def _head_scores(ctx: Context) -> Quantity:
    conv = FlopConventions.of(ctx)
    return _stamp(leaf("attention.head_scores", "QKᵀ of one head: s×s dot products of length d_k", "FLOP",
                       score_products(conv, b * s, s, 1, S.d_k, full=True), symbol="F_hQK",
                       latex=r"F_{\mathrm{head},QK}"), conv)


@quantity("attention.head_values", "attention·V FLOPs of one head: [s, s]·[s, d_k] for each of b sequences", "FLOP")
def _head_values(ctx: Context) -> Quantity:
    conv = FlopConventions.of(ctx)
    return _stamp(leaf("attention.head_values", "attention weights · V of one head", "FLOP",
                       score_products(conv, b * s, s, 1, S.d_k, full=True), symbol="F_hAV",
                       latex=r"F_{\mathrm{head},AV}"), conv)


@quantity("attention.qk_variance", "variance of q·k for i.i.d. unit-variance entries (before scaling)", "1")
def _qk_variance(ctx: Context) -> Quantity:
    return leaf("attention.qk_variance", "Var(q·k) = Σ Var(q_i k_i) = d_k · 1 · 1", "1", S.d_k, symbol="Var_qk",
                latex=r"\mathrm{Var}(q\cdot k)",
                note="independent zero-mean terms add their variances, and Var(q_i k_i) = E[q_i²]E[k_i²] = 1; "
                     "dividing by √d_k brings it back to 1 (attention.qk_variance_scaled)")


@quantity("attention.qk_variance_scaled", "variance of q·k/√d_k for unit-variance entries", "1")
def _qk_variance_scaled(ctx: Context) -> Quantity:
    raw = _qk_variance(ctx)
    return node("attention.qk_variance_scaled", "Var(q·k/√d_k) = Var(q·k)/d_k", "1",
                expr=raw.symbol / S.d_k, children=(raw,), symbol="Var_scaled",
                latex=r"\mathrm{Var}(q\cdot k/\sqrt{d_k})")


@quantity("attention.crossover", "sequence length at which the s² terms (QKᵀ, attention·V) equal the projections",
          "token")
def _crossover(ctx: Context) -> Quantity:
    """Solve F_scores + F_values = F_proj for s on the layer tree itself."""
    conv = FlopConventions.of(ctx)
    tree = flops.forward(ctx.arch, conv, options=ctx.options)
    proj = tree.find("flops.layer.projections")
    if proj is None:
        raise DeriveError("attention.crossover: needs a model whose layers are one kind of attention layer")
    core = tree.find("flops.layer.scores").expanded + tree.find("flops.layer.values").expanded
    roots = [r for r in sp.solve(sp.Eq(core, proj.expanded), s) if r != 0]
    if len(roots) != 1:
        raise DeriveError("attention.crossover: no unique positive crossover for this shape")
    kind = _attention_kind(ctx)
    note = ("for MHA the projections are 8·b·s·d² and the core 4·b·s²·d, so they meet at s = 2d"
            if kind == "MHA" else f"{kind}: K and V projections are g/h of the MHA size, so the crossover moves "
                                  "below 2d")
    q = leaf("attention.crossover", "s where F_scores + F_values = F_proj (per layer)", "token",
             sp.simplify(roots[0]), symbol="s_x", latex=r"s_{\times}", note=note)
    return _stamp(q, conv)


def _ratio_parts(ctx: Context, per_head: bool) -> tuple[Quantity, Quantity]:
    conv = FlopConventions.of(ctx)
    out = []
    for i, dk in ((1, d_k1), (2, d_k2)):
        heads = 1 if per_head else d / dk
        what = "one head" if per_head else "all d/d_k heads of a layer"
        out.append(leaf(f"attention.scores_ratio.design{i}", f"QKᵀ FLOPs, {what}, head size d_k{i}", "FLOP",
                        score_products(conv, b * s, s, heads, dk, full=True), symbol=f"F_QK{i}",
                        latex=rf"F_{{QK,{i}}}"))
    return out[0], out[1]


@quantity("attention.scores_ratio", "QKᵀ FLOPs per layer with head size d_k1 over those with d_k2 (h = d/d_k)",
          "1")
def _scores_ratio(ctx: Context) -> Quantity:
    a, c = _ratio_parts(ctx, per_head=False)
    q = node("attention.scores_ratio", "ratio of per-layer QKᵀ FLOPs across head sizes", "1",
             expr=a.symbol / c.symbol, children=(a, c), symbol="rho", latex=r"\rho",
             note="h·d_k = d in both designs, so the total is 2·b·s²·d either way: the ratio is 1; per head it is "
                  "d_k1/d_k2 (attention.scores_ratio_per_head)")
    return _stamp(q, FlopConventions.of(ctx))


@quantity("attention.scores_ratio_per_head", "QKᵀ FLOPs of one head with head size d_k1 over one with d_k2", "1")
def _scores_ratio_per_head(ctx: Context) -> Quantity:
    a, c = _ratio_parts(ctx, per_head=True)
    q = node("attention.scores_ratio_per_head", "ratio of one head's QKᵀ FLOPs across head sizes", "1",
             expr=a.symbol / c.symbol, children=(a, c), symbol="rho_h", latex=r"\rho_{h}")
    return _stamp(q, FlopConventions.of(ctx))


@quantity("attention.weights_bytes", "bytes of the attention-weights matrix [b, h, s, s] of one layer", "byte")
def _weights_bytes(ctx: Context) -> Quantity:
    C.set_byte_defaults(ctx)
    dt = C.get(ctx, "act_dtype")
    q = leaf("attention.weights_bytes", "attention weights [b, h, s, s] × bytes per element", "byte",
             b * h * s**2 * S.bytes_a, symbol="M_attnw", latex=r"M_{\mathrm{attn}}",
             note="one layer; FlashAttention never materialises it (--option flash=yes in memory.activations)")
    q.conventions = (f"scores in {dt} ({C.DTYPE_BYTES[dt]} B per element; --option act_dtype) unless --set bytes_a "
                     "is given",)
    return q


@quantity("attention.kv_params", "parameters of the K and V projections of one layer (GQA: g·d_k wide)", "param")
def _kv_params(ctx: Context) -> Quantity:
    """W_K + W_V, the very leaves of params.layer.attention (no second parameter formula)."""
    tree = params.total(ctx.arch)
    k, v = tree.find("params.layer.attention.k"), tree.find("params.layer.attention.v")
    if k is None or v is None:
        raise DeriveError("attention.kv_params: this model has no single kind of attention layer with K and V "
                          "projections (see params.total for its layer groups)")
    return node("attention.kv_params", f"K and V projections of one layer ({_attention_kind(ctx)})", "param",
                [(1, k), (1, v)], symbol="P_kv", latex=r"P_{KV}")
