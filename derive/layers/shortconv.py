"""LFM2's short convolution: a gated depthwise causal conv1d token mixer (``Lfm2ShortConv``).

A block of kind ``shortconv`` has the size ``L_cache`` (the conv kernel length, ``conv_L_cache``) and the
flag ``bias`` (``conv_bias``: every one of its three modules has a bias). The tensors: ``in_proj``
(d → 3d: the gates B and C and the input x), ``conv`` (depthwise over the d channels of B∘x, L_cache taps,
padding L_cache − 1) and ``out_proj`` (d → d); the output is out_proj(C ∘ conv(B ∘ x)). Each layer keeps
the last L_cache inputs of every channel as its state, in the model dtype, whatever the context length.
"""

from __future__ import annotations

from derive import symbols as S
from derive.architecture import Block
from derive.errors import DeriveError
from derive.layers.base import (
    Env,
    Kind,
    Linear,
    Pass,
    cache_leaf,
    flop_leaf,
    linear,
    matmul,
    register,
    sym,
)
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("L_cache", r"L_{\mathrm{cache}}", meaning="kernel length of LFM2's short convolution (conv_L_cache)")


class ShortConv(Kind):
    kind = "shortconv"
    role = "mixer"
    node = "conv"
    title = "short convolution"

    def describe(self, b: Block) -> str:
        return f"gated short convolution (L_cache={b.size('L_cache')}" + (", bias)" if b.flag("bias") else ")")

    def tag(self, b: Block) -> str:
        return "conv"

    def check(self, b: Block, arch) -> None:
        if b.size("L_cache") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('L_cache')} must be a positive integer, got {b.size('L_cache')}")

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        bias = bool(b.flag("bias"))
        kk = sym(b, "L_cache")
        conv = leaf(f"{prefix}.conv", "depthwise causal conv1d over d channels: L_cache taps each" +
                    (" (weight + bias)" if bias else ""), "param", d * kk + (d if bias else 0), symbol="P_conv1d",
                    latex=r"P_{\mathrm{conv1d}}", category="ssm")
        parts = [
            linear(f"{prefix}.in_proj", "input projection to the gates B, C and the input x (d → 3d)", d, 3 * d, bias,
                   "in", "ssm"),
            conv,
            linear(f"{prefix}.out_proj", "output projection (d → d)", d, d, bias, "out", "ssm"),
        ]
        return node(prefix, "gated short convolution", "param", [(1, p) for p in parts], symbol="P_sconv",
                    latex=r"P_{\mathrm{sconv}}")

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        kk = sym(b, "L_cache")
        pre = f"{prefix}.conv"
        if p.full:
            core = flop_leaf(f"{pre}.conv", "depthwise conv1d: s + L_cache − 1 outputs per channel (padding "
                             "L_cache − 1)", conv.mac * p.batch * d * (p.keys + kk - 1) * kk, "conv1d", "conv",
                             note="FlopCounterMode counts aten.convolution on its padded output; the model keeps the "
                                  "first s positions")
        else:
            core = flop_leaf(f"{pre}.conv", "depthwise conv1d: one new output per channel (L_cache taps)",
                             conv.mac * p.batch * d * kk, "conv1d", "conv",
                             note="a decode step multiplies the cached window by the taps and sums it")
        parts = [
            matmul(f"{pre}.in_proj", "input projection (d → 3d)", conv, p.rows, d, 3 * d, "in", "projections"),
            core,
            matmul(f"{pre}.out_proj", "output projection (d → d)", conv, p.rows, d, d, "out", "projections"),
        ]
        return node(pre, "gated short convolution", "FLOP", [(1, q) for q in parts], symbol="F_sconv",
                    latex=r"F_{\mathrm{sconv}}")

    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        return cache_leaf(prefix, "conv state: the last L_cache inputs of each of the d channels (model dtype)",
                          d * sym(b, "L_cache") * S.bytes_kv, "S_sconv", r"S_{\mathrm{sconv}}",
                          note="the same size at any context length")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        return [Linear("W_in", d, 3 * d, "in_proj"), Linear("W_out", d, d, "out_proj")]

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        s, bb = S.s, S.b
        return [leaf(f"{prefix}.conv", "short convolution: input, B/C/x, B·x, conv output, gated output", "byte",
                     S.bytes_a * s * bb * 7 * d, symbol="A_sconv", latex=r"A_{\mathrm{sconv}}",
                     category="activations")]


SHORTCONV = register(ShortConv())
