"""RWKV-4: time mixing (the token mixer) and channel mixing (the feed-forward block).

A block of kind ``rwkv`` is the time mixing of ``RwkvSelfAttention``: ``time_decay`` and ``time_first``
(one per attention channel), ``time_mix_key``/``value``/``receptance`` (one per model channel),
``key``, ``value``, ``receptance`` (d → d_att) and ``output`` (d_att → d), no biases. Its optional size
``d_att`` is the attention width when it differs from d (``attention_hidden_size``; absent: d).
A block of kind ``rwkv_ffn`` is the channel mixing of ``RwkvFeedForward``: ``time_mix_key`` and
``time_mix_receptance`` (d each), ``key`` (d → d_ff), ``receptance`` (d → d) and ``value`` (d_ff → d).

The WKV recurrence is elementwise per channel: no matmul, 0 FLOPs by the counting convention. The
state of a sequence (5 tensors of d per layer, transformers' ``state`` list) belongs to the time-mixing
block: the two token-shift states (time mixing and channel mixing) in the model dtype, and the WKV
numerator, denominator and running maximum in fp32.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import Block
from derive.errors import DeriveError
from derive.layers.base import (
    Env,
    Kind,
    Linear,
    Pass,
    cache_leaf,
    linear,
    matmul,
    register,
    sym,
    vector,
)
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("d_att", r"d_{\mathrm{att}}", meaning="RWKV attention width (attention_hidden_size) when it differs from d")


def att_width(b: Block) -> sp.Expr:
    return sym(b, "d_att") if b.has("d_att") else d


class TimeMix(Kind):
    kind = "rwkv"
    role = "mixer"
    node = "time_mix"
    title = "RWKV time mixing"

    def describe(self, b: Block) -> str:
        return "RWKV-4 time mixing" + (f" (d_att={b.size('d_att')})" if b.has("d_att") else "")

    def tag(self, b: Block) -> str:
        return "rwkv"

    def check(self, b: Block, arch) -> None:
        if b.has("d_att") and b.size("d_att") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('d_att')} must be a positive integer, got {b.size('d_att')}")

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        da = att_width(b)
        parts = [
            vector(f"{prefix}.time_decay_first", "time_decay and time_first (one each per attention channel)",
                   2 * da, "decay", "ssm"),
            vector(f"{prefix}.time_mix", "time_mix_key, _value, _receptance (token-shift mixing, one each per channel)",
                   3 * d, "mix", "ssm"),
            linear(f"{prefix}.key", "key projection (d → d_att)", d, da, False, "key", "ssm"),
            linear(f"{prefix}.value", "value projection (d → d_att)", d, da, False, "value", "ssm"),
            linear(f"{prefix}.receptance", "receptance projection (d → d_att)", d, da, False, "rec", "ssm"),
            linear(f"{prefix}.output", "output projection (d_att → d)", da, d, False, "out", "ssm"),
        ]
        return node(prefix, "RWKV time mixing", "param", [(1, p) for p in parts], symbol="P_tmix",
                    latex=r"P_{\mathrm{tmix}}")

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv, da = env.conv, att_width(b)
        pre = f"{prefix}.time_mix"
        parts = [
            matmul(f"{pre}.key", "key projection", conv, p.rows, d, da, "key", "projections"),
            matmul(f"{pre}.value", "value projection", conv, p.rows, d, da, "value", "projections"),
            matmul(f"{pre}.receptance", "receptance projection", conv, p.rows, d, da, "rec", "projections"),
            matmul(f"{pre}.output", "output projection", conv, p.rows, da, d, "out", "projections"),
        ]
        return node(pre, "RWKV time mixing: four projections (the WKV recurrence is elementwise)", "FLOP",
                    [(1, q) for q in parts], symbol="F_tmix", latex=r"F_{\mathrm{tmix}}",
                    note="the WKV recurrence multiplies and adds per channel, with no matrix product: 0 FLOPs by the "
                         "matmul convention, in a prefill and in a decode step alike")

    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        shift = cache_leaf(f"{prefix}.shift", "token-shift states of time and channel mixing: 2 × d (model dtype)",
                           2 * d * S.bytes_kv, "S_shift", r"S_{\mathrm{shift}}")
        wkv = cache_leaf(f"{prefix}.wkv", "WKV numerator, denominator and running maximum: 3 × d (fp32)",
                         3 * d * S.bytes_state, "S_wkv", r"S_{\mathrm{wkv}}")
        return node(prefix, "RWKV state of one sequence in one layer (5 vectors of d)", "byte", [(1, shift), (1, wkv)],
                    symbol="S_rwkv", latex=r"S_{\mathrm{RWKV}}",
                    note="transformers' state list holds 5 tensors [b, d, L]: two shifts in the model dtype, the WKV "
                         "terms in float32")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        da = att_width(b)
        return [Linear("W_key", d, da, "key"), Linear("W_value", d, da, "value"),
                Linear("W_receptance", d, da, "receptance"), Linear("W_output", da, d, "output")]

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        s, bb, da = S.s, S.b, att_width(b)
        return [leaf(f"{prefix}.time_mix", "time mixing: input and shifted input, k, v, r, WKV output", "byte",
                     S.bytes_a * s * bb * (2 * d + 4 * da), symbol="A_tmix", latex=r"A_{\mathrm{tmix}}",
                     category="activations")]


class ChannelMix(Kind):
    kind = "rwkv_ffn"
    role = "ffn"
    node = "mlp"
    title = "RWKV channel mixing"

    def describe(self, b: Block) -> str:
        return f"RWKV channel mixing (d_ff={b.size('d_ff')})"

    def tag(self, b: Block) -> str:
        return "cmix"

    def check(self, b: Block, arch) -> None:
        if b.size("d_ff") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('d_ff')} must be a positive integer, got {b.size('d_ff')}")

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        ff = sym(b, "d_ff")
        parts = [
            vector(f"{prefix}.time_mix", "time_mix_key and _receptance (one each per channel)", 2 * d, "mix", "mlp"),
            linear(f"{prefix}.key", "key projection (d → d_ff)", d, ff, False, "key", "mlp"),
            linear(f"{prefix}.receptance", "receptance projection (d → d)", d, d, False, "rec", "mlp"),
            linear(f"{prefix}.value", "value projection (d_ff → d)", ff, d, False, "value", "mlp"),
        ]
        return node(prefix, "RWKV channel mixing (squared-ReLU key, sigmoid receptance)", "param",
                    [(1, p) for p in parts], symbol="P_cmix", latex=r"P_{\mathrm{cmix}}")

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv, ff = env.conv, sym(b, "d_ff")
        parts = [
            matmul(f"{prefix}.key", "key projection", conv, p.rows, d, ff, "key", "mlp"),
            matmul(f"{prefix}.receptance", "receptance projection", conv, p.rows, d, d, "rec", "mlp"),
            matmul(f"{prefix}.value", "value projection", conv, p.rows, ff, d, "value", "mlp"),
        ]
        return node(prefix, "RWKV channel mixing (3 matmuls)", "FLOP", [(1, q) for q in parts], symbol="F_cmix",
                    latex=r"F_{\mathrm{cmix}}")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        ff = sym(b, "d_ff")
        return [Linear("W_key^c", d, ff, "ffn_key"), Linear("W_receptance^c", d, d, "ffn_receptance"),
                Linear("W_value^c", ff, d, "ffn_value")]

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        s, bb, ff = S.s, S.b, sym(b, "d_ff")
        return [leaf(f"{prefix}.mlp", "channel mixing: input and shifted input, key and its squared ReLU, receptance",
                     "byte", S.bytes_a * s * bb * (3 * d + 2 * ff), symbol="A_cmix", latex=r"A_{\mathrm{cmix}}",
                     category="activations")]


TIME_MIX = register(TimeMix())
CHANNEL_MIX = register(ChannelMix())
