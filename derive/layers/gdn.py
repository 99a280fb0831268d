"""Gated DeltaNet: Qwen3-Next's linear attention (``linear_attn``), a recurrent token mixer.

A block of kind ``gdn`` has sizes ``H_k`` and ``H_v`` (key and value heads; the query has H_k heads and
every key head serves H_v/H_k value heads), ``d_hk`` and ``d_hv`` (key and value head sizes), ``K_gdn``
(the kernel of the depthwise causal conv1d over q, k and v) and ``C_gdn`` (the chunk length of the
chunked gated-delta rule: 64 in transformers, which changes compute, not parameters). The tensors, as
transformers builds them: ``in_proj_qkvz`` (d → 2·H_k·d_hk + 2·H_v·d_hv: q, k, v and the output gate
z), ``in_proj_ba`` (d → 2·H_v: β and the decay input a), ``conv1d`` (depthwise over the 2·H_k·d_hk +
H_v·d_hv channels of q, k, v, no bias), ``A_log`` and ``dt_bias`` (one per value head), a gated RMSNorm
over d_hv (one γ shared by every value head) and ``out_proj`` (H_v·d_hv → d). No Linear has a bias.

Each layer keeps a state whatever the context length: the conv state (the last K inputs of every conv
channel, in the model dtype) and the recurrent state (H_v matrices of d_hk × d_hv, fp32).
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

S.define("H_k", "H_k", meaning="key (and query) heads of a gated-DeltaNet layer (linear_num_key_heads)")
S.define("H_v", "H_v", meaning="value heads of a gated-DeltaNet layer (linear_num_value_heads)")
S.define("d_hk", r"d_{hk}", meaning="key head size of a gated-DeltaNet layer (linear_key_head_dim)")
S.define("d_hv", r"d_{hv}", meaning="value head size of a gated-DeltaNet layer (linear_value_head_dim)")
S.define("K_gdn", r"K_{\mathrm{GDN}}", meaning="kernel length of a gated-DeltaNet layer's causal conv1d "
                                           "(linear_conv_kernel_dim)")
S.define("C_gdn", r"C_{\mathrm{GDN}}", "token", "chunk length of the chunked gated-delta rule (64 in transformers; "
                                               "compute only)")


class GatedDeltaNet(Kind):
    kind = "gdn"
    role = "mixer"
    node = "linear_attn"
    title = "gated DeltaNet"

    # ---- shapes (one place) ---------------------------------------------------------------------
    @staticmethod
    def sizes(b: Block) -> tuple[sp.Expr, sp.Expr, sp.Expr, sp.Expr, sp.Expr]:
        return sym(b, "H_k"), sym(b, "H_v"), sym(b, "d_hk"), sym(b, "d_hv"), sym(b, "K_gdn")

    def widths(self, b: Block) -> dict[str, sp.Expr]:
        hk, hv, dk, dv, _ = self.sizes(b)
        return {"qkvz": 2 * hk * dk + 2 * hv * dv, "ba": 2 * hv, "conv": 2 * hk * dk + hv * dv, "value": hv * dv}

    # ---- description ----------------------------------------------------------------------------
    def describe(self, b: Block) -> str:
        return (f"gated DeltaNet (H_k={b.size('H_k')}, H_v={b.size('H_v')}, d_hk={b.size('d_hk')}, "
                f"d_hv={b.size('d_hv')}, conv {b.size('K_gdn')})")

    def tag(self, b: Block) -> str:
        return "gdn"

    def param_key(self, b: Block) -> tuple:
        return (b.kind, tuple((k, v) for k, v in b.sizes if k != "C_gdn"), b.flags)

    def check(self, b: Block, arch) -> None:
        for name in ("H_k", "H_v", "d_hk", "d_hv", "K_gdn", "C_gdn"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")
        if b.size("H_v") % b.size("H_k"):
            raise DeriveError(f"{arch.name}: {b.name('H_v')}={b.size('H_v')} value heads must be a multiple of "
                              f"{b.name('H_k')}={b.size('H_k')} key heads")

    def heads(self, b: Block) -> tuple[int, int]:
        return b.size("H_v"), b.size("H_k")

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        hk, hv, dk, dv, kk = self.sizes(b)
        w = self.widths(b)
        conv = leaf(f"{prefix}.conv1d", "depthwise causal conv1d over q, k, v: K taps per channel (no bias)", "param",
                    w["conv"] * kk, symbol="P_conv1d", latex=r"P_{\mathrm{conv1d}}", category="ssm")
        parts = [
            linear(f"{prefix}.in_proj_qkvz", "input projection to q, k (H_k·d_hk each), v and the gate z "
                   "(H_v·d_hv each)", d, w["qkvz"], False, "qkvz", "ssm"),
            linear(f"{prefix}.in_proj_ba", "input projection to β and the decay input a (one each per value head)",
                   d, w["ba"], False, "ba", "ssm"),
            conv,
            vector(f"{prefix}.A_log", "A_log: decay rate per value head", hv, "Alog", "ssm"),
            vector(f"{prefix}.dt_bias", "dt_bias: decay-input bias per value head", hv, "dtb", "ssm"),
        ]
        gnorm = norm("rmsnorm", dv, 1, f"{prefix}.norm", "gated RMSNorm over d_hv, shared by the value heads", "gnorm")
        assert gnorm is not None
        parts.append(gnorm)
        parts.append(linear(f"{prefix}.out_proj", "output projection (H_v·d_hv → d)", w["value"], d, False, "out",
                            "ssm"))
        return node(prefix, "gated DeltaNet (linear attention)", "param", [(1, p) for p in parts], symbol="P_deltanet",
                    latex=r"P_{\mathrm{GDN}}")

    # ---- FLOPs ----------------------------------------------------------------------------------
    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        hk, hv, dk, dv, kk = self.sizes(b)
        w = self.widths(b)
        pre = f"{prefix}.linear_attn"
        bb, s = p.batch, p.keys
        parts: list[Quantity] = [
            matmul(f"{pre}.in_proj_qkvz", "input projection to q, k, v, z", conv, p.rows, d, w["qkvz"], "qkvz",
                   "projections"),
            matmul(f"{pre}.in_proj_ba", "input projection to β and a", conv, p.rows, d, w["ba"], "ba", "projections"),
        ]
        if p.full:
            parts.append(flop_leaf(
                f"{pre}.conv1d", "depthwise conv1d over q, k, v: s + K − 1 outputs per channel (padding K − 1)",
                conv.mac * bb * w["conv"] * (s + kk - 1) * kk, "conv1d", "conv",
                note="FlopCounterMode counts aten.convolution on its padded output (s + K − 1 positions; the model "
                     "keeps the first s)"))
            parts.append(self._chunked(b, conv, pre, bb, s))
        else:
            parts.append(flop_leaf(f"{pre}.conv1d", "depthwise conv1d: one new output per channel (K taps)",
                                   conv.mac * bb * w["conv"] * kk, "conv1d", "conv",
                                   note="transformers' torch fallback convolves the K cached inputs and the new one "
                                        "(two outputs, the last kept); one output is what the step needs"))
            parts.append(flop_leaf(
                f"{pre}.recurrent", "recurrent update of the H_v state matrices (d_hk × d_hv): read Sᵀk, write k·δᵀ, "
                "read Sᵀq", conv.mac * bb * hv * 3 * dk * dv, "rec", "scan",
                note="three matrix–vector products per value head, the same per-token state work the chunked prefill "
                     "does with matmuls (transformers' torch fallback writes them as broadcast products and sums); "
                     "it does not grow with the context"))
        parts.append(matmul(f"{pre}.out_proj", "output projection (H_v·d_hv → d)", conv, p.rows, w["value"], d,
                            "out", "projections"))
        title = "gated DeltaNet" + ("" if p.full else ": one token through the recurrent state")
        return node(pre, title, "FLOP", [(1, q) for q in parts], symbol="F_deltanet", latex=r"F_{\mathrm{GDN}}")

    def _chunked(self, b: Block, conv, pre: str, bb, s) -> Quantity:
        """transformers' torch_chunk_gated_delta_rule: s padded to n = ⌈s/C⌉ chunks of C, q and k repeated to
        the H_v value heads; the two triangular solves of its UT transform are not counted (FlopCounterMode
        has no formula for them)."""
        _, hv, dk, dv, _ = self.sizes(b)
        c = sym(b, "C_gdn")
        n = sp.ceiling(s / c)
        per = conv.mac * bb * hv * n * c
        parts = [
            flop_leaf(f"{pre}.chunk_keys", "within each chunk: k_β·kᵀ (the UT system) and q·kᵀ, [C, d_hk]·[d_hk, C]",
                      per * 2 * c * dk, "chunkqk", "scan"),
            flop_leaf(f"{pre}.chunk_values", "within each chunk: attention · v_new, [C, C]·[C, d_hv]", per * c * dv,
                      "chunkv", "scan"),
            flop_leaf(f"{pre}.chunk_state", "across chunks: k_cumdecay·S, q·S and the state update kᵀ·v_new, "
                      "[C, d_hk]·[d_hk, d_hv]", per * 3 * dk * dv, "chunkS", "scan"),
        ]
        return node(f"{pre}.chunked", "chunked gated-delta rule over ceil(s/C) chunks of C tokens", "FLOP",
                    [(1, q) for q in parts], symbol="F_chunk", latex=r"F_{\mathrm{chunk}}",
                    note="s is padded to a whole number of chunks; the triangular solves are not matmuls "
                         "FlopCounterMode counts")

    # ---- state ----------------------------------------------------------------------------------
    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        _, hv, dk, dv, kk = self.sizes(b)
        w = self.widths(b)
        conv = cache_leaf(f"{prefix}.conv", "conv state: the last K inputs of each q, k, v channel (model dtype)",
                          w["conv"] * kk * S.bytes_kv, "S_conv", r"S_{\mathrm{conv}}")
        rec = cache_leaf(f"{prefix}.recurrent", "recurrent state: H_v matrices of d_hk × d_hv", hv * dk * dv *
                         S.bytes_state, "S_rec", r"S_{\mathrm{rec}}")
        return node(prefix, "gated-DeltaNet state of one sequence in one layer", "byte", [(1, conv), (1, rec)],
                    symbol="S_gdn", latex=r"S_{\mathrm{GDN}}", note="the same size at any context length")

    # ---- LoRA / activations ---------------------------------------------------------------------
    def linears(self, b: Block, env: Env) -> list[Linear]:
        w = self.widths(b)
        return [Linear("W_qkvz", d, w["qkvz"], "in_proj_qkvz"), Linear("W_ba", d, w["ba"], "in_proj_ba"),
                Linear("W_out", w["value"], d, "out_proj")]

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        s, bb = S.s, S.b
        _, hv, dk, dv, _ = self.sizes(b)
        w = self.widths(b)
        c = sym(b, "C_gdn")
        per_token = d + w["qkvz"] + w["ba"] + w["conv"] + 2 * w["value"]
        return [leaf(f"{prefix}.gdn", "gated DeltaNet: input, projections, conv output, core and gated-norm outputs, "
                     "the C×C matrices of each chunk and each chunk's state", "byte",
                     S.bytes_a * s * bb * per_token + S.bytes_a * bb * hv * s * 2 * c +
                     S.bytes_a * bb * hv * sp.ceiling(s / c) * dk * dv,
                     symbol="A_deltanet", latex=r"A_{\mathrm{GDN}}", category="activations")]


GDN = register(GatedDeltaNet())
