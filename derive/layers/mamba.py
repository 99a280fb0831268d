"""Mamba (Gu & Dao 2023): a selective state-space mixer, as Jamba's ``JambaMambaMixer`` builds it.

A block of kind ``mamba`` has sizes ``d_ssm`` (the inner width, expand·d), ``d_state`` (N: state
elements per channel), ``d_conv`` (taps of the depthwise causal conv1d) and ``r_dt`` (rank of the
time-step projection Δ). Flags: ``conv_bias`` (the conv1d has a bias), ``bias`` (the projections
that have one: ``in``, ``out``), ``dt_norms`` (Jamba: RMSNorms over Δ, B and C, γ only).

The token path: in_proj splits into x and the gate z (2·d_ssm); x runs through the conv1d; x_proj
gives Δ (r_dt), B and C (N each); dt_proj lifts Δ to d_ssm; the scan keeps a d_ssm × N state per
sequence; y·silu(z) goes through out_proj. The cache keeps the last d_conv conv inputs (model dtype)
and the state (fp32 in transformers).
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
    conv1d_flops,
    flop_leaf,
    linear,
    matmul,
    norm,
    register,
    sym,
    vector,
)
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("d_ssm", r"d_{\mathrm{ssm}}", meaning="inner width of an SSM mixer (Mamba's d_inner = expand·d)")
S.define("d_state", r"d_{\mathrm{state}}", meaning="SSM state size: state elements per channel (Mamba's N)")
S.define("d_conv", r"d_{\mathrm{conv}}", meaning="taps of an SSM mixer's depthwise causal conv1d (conv kernel)")
S.define("r_dt", r"r_{\Delta}", meaning="rank of Mamba's time-step (Δ) projection (dt_rank)")


def conv_leaf(qid: str, channels, kernel, bias: bool) -> Quantity:
    """A depthwise conv1d: one kernel of ``kernel`` taps per channel (+ a bias per channel)."""
    expr = channels * kernel + (channels if bias else 0)
    return leaf(qid, "depthwise causal conv1d: d_conv taps per channel" + (" + bias" if bias else ""), "param",
                expr, symbol="P_conv", latex=r"P_{\mathrm{conv}}", category="ssm")


def conv_prefill(conv, qid: str, p: Pass, channels, kernel) -> Quantity:
    """The conv1d of a prefill as FlopCounterMode counts it: padded by d_conv − 1 on both sides, so it
    computes s + d_conv − 1 output positions per sequence (the model slices off the last d_conv − 1)."""
    positions = p.keys + kernel - 1
    return flop_leaf(qid, "depthwise causal conv1d over s + d_conv − 1 positions (padding d_conv − 1)",
                     conv1d_flops(conv, p.batch * positions, channels, kernel), "conv", "ssm",
                     note="nn.Conv1d(padding=d_conv − 1) computes s + d_conv − 1 outputs and the model keeps the "
                          "first s; FlopCounterMode counts all of them")


def state_node(prefix: str, title: str, conv_expr, conv_title: str, ssm_expr, ssm_title: str, sym_: str,
               latex: str) -> Quantity:
    conv_state = cache_leaf(f"{prefix}.conv", conv_title, conv_expr, "S_conv", r"S_{\mathrm{conv}}",
                            note="the conv state keeps the last d_conv inputs of every conv channel, in the "
                                 "model (KV) dtype")
    ssm_state = cache_leaf(f"{prefix}.ssm", ssm_title, ssm_expr, "S_ssm", r"S_{\mathrm{ssm}}",
                           note="transformers keeps the SSM state in float32 (--option state_dtype)")
    return node(prefix, title, "byte", [(1, conv_state), (1, ssm_state)], symbol=sym_, latex=latex)


def decode_note() -> str:
    return ("one decode step: the conv over the cached d_conv inputs and the state update h ← exp(ΔA)·h + Δ·B·x "
            "are elementwise in the model's code (0 FLOPs, as FlopCounterMode counts); the readout C·h is a "
            "matmul per channel")


class Mamba(Kind):
    kind = "mamba"
    role = "mixer"
    node = "mamba"
    title = "Mamba"

    def describe(self, b: Block) -> str:
        text = (f"Mamba (d_ssm={b.size('d_ssm')}, d_state={b.size('d_state')}, d_conv={b.size('d_conv')}, "
                f"r_dt={b.size('r_dt')})")
        if b.flag("dt_norms"):
            text += " with Δ/B/C norms"
        return text

    def tag(self, b: Block) -> str:
        return "mamba"

    def check(self, b: Block, arch) -> None:
        for name in ("d_ssm", "d_state", "d_conv", "r_dt"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        di, N, K, r = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "d_conv"), sym(b, "r_dt")
        bias = b.flag("bias", frozenset())
        parts = [
            linear(f"{prefix}.in_proj", "input projection W_in: x and the gate z (d → 2·d_ssm)", d, 2 * di,
                   "in" in bias, "inproj", "ssm"),
            conv_leaf(f"{prefix}.conv1d", di, K, bool(b.flag("conv_bias", True))),
            linear(f"{prefix}.x_proj", "x_proj: Δ, B and C from x (d_ssm → r_dt + 2·d_state)", di, r + 2 * N,
                   False, "xproj", "ssm"),
            linear(f"{prefix}.dt_proj", "dt_proj: Δ lifted to every channel (r_dt → d_ssm)", r, di, True, "dtproj",
                   "ssm"),
            vector(f"{prefix}.A_log", "A_log: the state decay, d_ssm × d_state", di * N, "Alog", "ssm"),
            vector(f"{prefix}.D", "D: the skip connection, one per channel", di, "D", "ssm"),
            linear(f"{prefix}.out_proj", "output projection W_out (d_ssm → d)", di, d, "out" in bias, "outproj",
                   "ssm"),
        ]
        if b.flag("dt_norms"):
            n = norm("rmsnorm", r + 2 * N, 1, f"{prefix}.dt_norms", "RMSNorms over Δ, B and C (r_dt + 2·d_state)",
                     "dtnorm")
            if n is not None:
                parts.append(n)
        return node(prefix, "Mamba mixer (selective SSM)", "param", [(1, q) for q in parts], symbol="P_mamba",
                    latex=r"P_{\mathrm{mamba}}")

    # ---- FLOPs ----------------------------------------------------------------------------------
    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        di, N, K, r = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "d_conv"), sym(b, "r_dt")
        rows = p.rows
        parts = [matmul(f"{prefix}.in_proj", "input projection x·W_in (x and gate z)", conv, rows, d, 2 * di, "inproj",
                        "ssm")]
        if p.full:
            parts.append(conv_prefill(conv, f"{prefix}.conv1d", p, di, K))
        parts += [
            matmul(f"{prefix}.x_proj", "x_proj: Δ, B, C", conv, rows, di, r + 2 * N, "xproj", "ssm"),
            matmul(f"{prefix}.dt_proj", "dt_proj: Δ to every channel", conv, rows, r, di, "dtproj", "ssm"),
            flop_leaf(f"{prefix}.scan", "selective scan: the readout C·h of the d_ssm × d_state state, every token",
                      conv.mac * rows * di * N, "scan", "ssm_scan",
                      note=("the torch scan loops over the s positions; each step's readout is a batched matmul "
                            "[d_ssm, d_state]·[d_state, 1]; the discretisation and state update are elementwise")
                      if p.full else decode_note()),
            matmul(f"{prefix}.out_proj", "output projection W_out", conv, rows, di, d, "outproj", "ssm"),
        ]
        return node(f"{prefix}.mamba", "Mamba mixer (selective SSM)", "FLOP", [(1, q) for q in parts],
                    symbol="F_mamba", latex=r"F_{\mathrm{mamba}}")

    # ---- recurrent state ------------------------------------------------------------------------
    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        di, N, K = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "d_conv")
        return state_node(prefix, "recurrent state of one Mamba layer: conv state + SSM state",
                          di * K * S.bytes_kv, "conv state: d_conv inputs × d_ssm channels",
                          di * N * S.bytes_state, "SSM state: d_ssm × d_state", "S_mamba", r"S_{\mathrm{mamba}}")

    # ---- activations, LoRA ----------------------------------------------------------------------
    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        di, N, r = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "r_dt")
        width = d + 2 * di + di + (r + 2 * N) + di + di + di
        return [leaf(f"{prefix}.mamba", "Mamba: input, x and z, conv output, Δ/B/C, Δ per channel, scan output, "
                     "gated output", "byte", S.bytes_a * S.s * S.b * width, symbol="A_mamba",
                     latex=r"A_{\mathrm{mamba}}", category="activations",
                     note="as a fused selective-scan kernel keeps them (the per-step states are recomputed in the "
                          "backward pass, not stored)")]

    def linears(self, b: Block, env: Env) -> list[Linear]:
        di, N, r = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "r_dt")
        return [Linear("W_in", d, 2 * di, "in_proj"), Linear("W_x", di, r + 2 * N, "x_proj"),
                Linear("W_dt", r, di, "dt_proj"), Linear("W_out", di, d, "out_proj")]


MAMBA = register(Mamba())

__all__ = ["MAMBA", "conv_leaf", "conv_prefill", "decode_note", "state_node"]
