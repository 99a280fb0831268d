"""Mamba2 (Dao & Gu 2024, state-space duality): the SSM mixer of Mamba2, Bamba, Falcon-H1, Nemotron-H, Zamba2.

A block of kind ``mamba2`` has sizes ``d_ssm`` (inner width), ``h_ssm`` (SSM heads; head size
d_ssm/h_ssm), ``n_grp`` (groups sharing B and C), ``d_state`` (N), ``d_conv`` (conv taps) and
``C_scan`` (chunk length of the chunked scan; it changes FLOPs only). Flags: ``conv_bias``, ``bias``
(the projections that have one: ``in``, ``out``), ``gated_norm`` (a gated RMSNorm over d_ssm before
out_proj; Falcon-H1 may leave it out).

in_proj gives the gate z (d_ssm), the conv input x‖B‖C (d_ssm + 2·n_grp·d_state) and Δ per head
(h_ssm); a prefill runs the chunked scan the torch fallback computes: B and C repeated to every head,
the sequence padded to c = ⌈s/C_scan⌉ chunks, five contractions per chunk and head. The cache keeps
the conv state (the last d_conv conv inputs, model dtype) and the state h_ssm × head size × d_state
(fp32 in transformers).
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import Block
from derive.errors import DeriveError
from derive.layers.base import Env, Kind, Linear, Pass, flop_leaf, linear, matmul, norm, register, sym, vector
from derive.layers.mamba import conv_leaf, conv_prefill, decode_note, state_node
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("h_ssm", r"h_{\mathrm{ssm}}", meaning="SSM heads of a Mamba2 mixer (its head size is d_ssm/h_ssm)")
S.define("n_grp", r"n_{\mathrm{grp}}", meaning="groups of a Mamba2 mixer: heads of one group share B and C "
                                               "(n_groups)")
S.define("C_scan", r"C_{\mathrm{scan}}", "token", "chunk length of Mamba2's chunked scan (chunk_size)")


class Mamba2(Kind):
    kind = "mamba2"
    role = "mixer"
    node = "mamba"
    title = "Mamba2"

    #: sizes that change compute but no parameter
    BEHAVIOUR = ("C_scan",)

    # ---- shapes (one place) ---------------------------------------------------------------------
    @staticmethod
    def conv_channels(b: Block) -> sp.Expr:
        """x, B and C go through the conv: d_ssm + 2·n_grp·d_state channels."""
        return sym(b, "d_ssm") + 2 * sym(b, "n_grp") * sym(b, "d_state")

    @classmethod
    def in_width(cls, b: Block) -> sp.Expr:
        """in_proj output: the gate z, the conv input x‖B‖C and Δ per head."""
        return sym(b, "d_ssm") + cls.conv_channels(b) + sym(b, "h_ssm")

    def describe(self, b: Block) -> str:
        heads = b.size("h_ssm")
        size = b.size("d_ssm") // heads if heads else 0
        groups = b.size("n_grp")
        text = (f"Mamba2 (d_ssm={b.size('d_ssm')}, {heads} heads of {size}, {groups} group{'s' * (groups != 1)}, "
                f"d_state={b.size('d_state')}, d_conv={b.size('d_conv')}, chunk {b.size('C_scan')})")
        if not b.flag("gated_norm", True):
            text += " without the gated norm"
        return text

    def tag(self, b: Block) -> str:
        return "mamba2"

    def param_key(self, b: Block) -> tuple:
        return (b.kind, tuple((k, v) for k, v in b.sizes if k not in self.BEHAVIOUR), b.flags)

    def check(self, b: Block, arch) -> None:
        for name in ("d_ssm", "h_ssm", "n_grp", "d_state", "d_conv", "C_scan"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")
        di, h, g = b.size("d_ssm"), b.size("h_ssm"), b.size("n_grp")
        if di % h:
            raise DeriveError(f"{arch.name}: {b.name('d_ssm')}={di} (the SSM inner width) is not divisible by "
                              f"{b.name('h_ssm')}={h} SSM heads")
        if h % g:
            raise DeriveError(f"{arch.name}: {b.name('n_grp')}={g} groups must divide {b.name('h_ssm')}={h} SSM heads")

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        di, h = sym(b, "d_ssm"), sym(b, "h_ssm")
        bias = b.flag("bias", frozenset())
        parts = [
            linear(f"{prefix}.in_proj", "input projection W_in: the gate z, the conv input x, B, C and Δ "
                   "(d → 2·d_ssm + 2·n_grp·d_state + h_ssm)", d, self.in_width(b), "in" in bias, "inproj", "ssm"),
            conv_leaf(f"{prefix}.conv1d", self.conv_channels(b), sym(b, "d_conv"), bool(b.flag("conv_bias", True))),
            vector(f"{prefix}.dt_bias", "dt_bias: one per head", h, "dtbias", "ssm"),
            vector(f"{prefix}.A_log", "A_log: the state decay, one per head", h, "Alog", "ssm"),
            vector(f"{prefix}.D", "D: the skip connection, one per head", h, "D", "ssm"),
        ]
        if b.flag("gated_norm", True):
            n = norm("rmsnorm", di, 1, f"{prefix}.norm", "gated RMSNorm over d_ssm", "gnorm")
            if n is not None:
                parts.append(n)
        parts.append(linear(f"{prefix}.out_proj", "output projection W_out (d_ssm → d)", di, d, "out" in bias,
                            "outproj", "ssm"))
        return node(prefix, "Mamba2 mixer (chunked SSM)", "param", [(1, q) for q in parts], symbol="P_mamba2",
                    latex=r"P_{\mathrm{mamba2}}")

    # ---- FLOPs ----------------------------------------------------------------------------------
    def scan(self, b: Block, conv, prefix: str, p: Pass) -> Quantity:
        """The chunked scan of the torch fallback over c = ⌈s/C_scan⌉ chunks (the last one padded)."""
        di, h, N, C = sym(b, "d_ssm"), sym(b, "h_ssm"), sym(b, "d_state"), sym(b, "C_scan")
        bb = p.batch
        c = sp.ceiling(p.keys / C)
        mac = conv.mac
        parts = [
            flop_leaf(f"{prefix}.scan.scores", "C·Bᵀ inside each chunk: h_ssm heads × [C, d_state]·[d_state, C]",
                      mac * bb * c * h * C**2 * N, "CB", "ssm_scan"),
            flop_leaf(f"{prefix}.scan.diag", "chunk outputs (C·Bᵀ masked by the decay)·x: [C, C]·[C, head size] "
                      "per head",
                      mac * bb * c * C**2 * di, "diag", "ssm_scan"),
            flop_leaf(f"{prefix}.scan.states", "chunk states Bᵀ·x: [d_state, C]·[C, head size] per head",
                      mac * bb * c * C * N * di, "states", "ssm_scan"),
            flop_leaf(f"{prefix}.scan.passing", "state passing between chunks: a (c+1)×(c+1) decay · the states",
                      mac * bb * (c + 1) ** 2 * di * N, "pass", "ssm_scan"),
            flop_leaf(f"{prefix}.scan.off", "outputs from the carried states C·h: [C, d_state]·[d_state, head size]",
                      mac * bb * c * C * N * di, "off", "ssm_scan"),
        ]
        return node(f"{prefix}.scan", "chunked scan over c = ceil(s/C_scan) chunks (B, C repeated to every head)",
                    "FLOP", [(1, q) for q in parts], symbol="F_scan", latex=r"F_{\mathrm{scan}}",
                    note="the sequence is padded to c·C_scan positions and every chunk's C×C products are "
                         "computed in full, masked rather than skipped, as FlopCounterMode counts")

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        di, N = sym(b, "d_ssm"), sym(b, "d_state")
        rows = p.rows
        parts = [matmul(f"{prefix}.in_proj", "input projection x·W_in (z; x, B, C; Δ)", conv, rows, d,
                        self.in_width(b), "inproj", "ssm")]
        if p.full:
            parts.append(conv_prefill(conv, f"{prefix}.conv1d", p, self.conv_channels(b), sym(b, "d_conv")))
            parts.append(self.scan(b, conv, prefix, p))
        else:
            parts.append(flop_leaf(f"{prefix}.scan", "state readout C·h: every head [head size, d_state]·[d_state, 1]",
                                   conv.mac * rows * di * N, "scan", "ssm_scan", note=decode_note()))
        parts.append(matmul(f"{prefix}.out_proj", "output projection W_out", conv, rows, di, d, "outproj", "ssm"))
        return node(f"{prefix}.mamba", "Mamba2 mixer (chunked SSM)" if p.full else "Mamba2 mixer (one recurrent step)",
                    "FLOP", [(1, q) for q in parts], symbol="F_mamba2", latex=r"F_{\mathrm{mamba2}}")

    # ---- recurrent state ------------------------------------------------------------------------
    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        di, N, K = sym(b, "d_ssm"), sym(b, "d_state"), sym(b, "d_conv")
        return state_node(prefix, "recurrent state of one Mamba2 layer: conv state + SSM state",
                          self.conv_channels(b) * K * S.bytes_kv,
                          "conv state: d_conv inputs × (d_ssm + 2·n_grp·d_state) channels",
                          di * N * S.bytes_state, "SSM state: h_ssm heads × head size × d_state = d_ssm·d_state",
                          "S_mamba2", r"S_{\mathrm{mamba2}}")

    # ---- activations, LoRA ----------------------------------------------------------------------
    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        di = sym(b, "d_ssm")
        width = d + self.in_width(b) + self.conv_channels(b) + di + di
        return [leaf(f"{prefix}.mamba", "Mamba2: input, in_proj output, conv output, scan output, gated-norm "
                     "output", "byte", S.bytes_a * S.s * S.b * width, symbol="A_mamba2", latex=r"A_{\mathrm{mamba2}}",
                     category="activations",
                     note="as the fused chunked-scan kernel keeps them (chunk states are recomputed in the backward "
                          "pass)")]

    def linears(self, b: Block, env: Env) -> list[Linear]:
        return [Linear("W_in", d, self.in_width(b), "in_proj"), Linear("W_out", sym(b, "d_ssm"), d, "out_proj")]


MAMBA2 = register(Mamba2())
