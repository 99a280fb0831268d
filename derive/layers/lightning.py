"""Lightning attention: MiniMax's linear attention with a per-head exponential decay.

A block of kind ``lightning`` has sizes ``h`` (heads), ``d_k`` (head size; d/h when the config gives
none) and ``B_lit`` (the block length of its prefill loop: ``block_size``, 256 by default; compute
only). The tensors, as transformers builds ``MiniMaxLightningAttention``: ``qkv_proj`` (d → 3·h·d_k),
``output_gate`` (d → h·d_k, a sigmoid gate), ``out_proj`` (h·d_k → d), all without bias, and one
RMSNorm over the h·d_k concatenated head outputs. The decay rates are buffers, not parameters.

The state of a sequence is the running Kᵀ·V of every head (h matrices of d_k × d_k), which
transformers keeps in the model dtype (``torch.zeros(...).to(value_states)``).
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
)
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("B_lit", r"B_{\mathrm{lit}}", "token", "block length of lightning attention's prefill loop (MiniMax "
                                               "block_size; compute only)")


class Lightning(Kind):
    kind = "lightning"
    role = "mixer"
    node = "lightning_attn"
    title = "lightning attention"

    @staticmethod
    def head_size(b: Block) -> sp.Expr:
        """d/h when the head size follows d and h (so 5d² stays visible), else d_k."""
        return d / sym(b, "h") if b.is_derived("d_k") else sym(b, "d_k")

    def inner(self, b: Block) -> sp.Expr:
        return sym(b, "h") * self.head_size(b)

    def describe(self, b: Block) -> str:
        return f"lightning attention (h={b.size('h')}, d_k={b.size('d_k')}, blocks of {b.size('B_lit')})"

    def tag(self, b: Block) -> str:
        return "lightning"

    def param_key(self, b: Block) -> tuple:
        return (b.kind, tuple((k, v) for k, v in b.sizes if k != "B_lit"), b.flags)

    def check(self, b: Block, arch) -> None:
        for name in ("h", "d_k", "B_lit"):
            if b.size(name) <= 0:
                raise DeriveError(f"{arch.name}: {b.name(name)} must be a positive integer, got {b.size(name)}")

    def heads(self, b: Block) -> tuple[int, int]:
        return b.size("h"), b.size("h")

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        inner = self.inner(b)
        parts = [
            linear(f"{prefix}.qkv_proj", "fused q, k, v projection (d → 3·h·d_k)", d, 3 * inner, False, "qkv", "ssm"),
            linear(f"{prefix}.output_gate", "output gate (d → h·d_k, sigmoid)", d, inner, False, "ogate", "ssm"),
            linear(f"{prefix}.out_proj", "output projection (h·d_k → d)", inner, d, False, "out", "ssm"),
        ]
        n = norm("rmsnorm", inner, 1, f"{prefix}.norm", "RMSNorm over the h·d_k head outputs", "lnorm")
        assert n is not None
        parts.append(n)
        return node(prefix, "lightning attention (linear attention with decay)", "param", [(1, p) for p in parts],
                    symbol="P_lit", latex=r"P_{\mathrm{lit}}")

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        conv = env.conv
        assert conv is not None
        h, dk, inner = sym(b, "h"), self.head_size(b), self.inner(b)
        pre = f"{prefix}.lightning_attn"
        bb, s = p.batch, p.keys
        parts: list[Quantity] = [
            matmul(f"{pre}.qkv_proj", "fused q, k, v projection", conv, p.rows, d, 3 * inner, "qkv", "projections"),
            matmul(f"{pre}.output_gate", "output gate", conv, p.rows, d, inner, "ogate", "projections"),
        ]
        if p.full:
            blk = sym(b, "B_lit")
            whole = sp.floor(s / blk)
            squares = whole * blk**2 + (s - blk * whole) ** 2  # Σ over blocks of (block length)²; the last is short
            parts += [
                flop_leaf(f"{pre}.intra_scores", "within each block: Q·Kᵀ, h heads × [c, d_k]·[d_k, c]",
                          conv.mac * bb * h * squares * dk, "intraqk", "scan",
                          note="blocks of B_lit tokens; the last block is not padded "
                               "(Σ c² = floor(s/B)·B² + (s mod B)²)"),
                flop_leaf(f"{pre}.intra_values", "within each block: (decay-weighted Q·Kᵀ)·V, h heads × "
                          "[c, c]·[c, d_k]",
                          conv.mac * bb * h * squares * dk, "intrav", "scan"),
                flop_leaf(f"{pre}.inter", "across blocks: Q·(KᵀV) and the state update Kᵀ·V, h heads × "
                          "[c, d_k]·[d_k, d_k] each", conv.mac * bb * h * 2 * s * dk**2, "inter", "scan"),
            ]
        else:
            parts.append(flop_leaf(f"{pre}.recurrent", "recurrent step: state += kᵀ·v, output q·state, h heads of "
                                   "d_k × d_k", conv.mac * bb * h * 2 * dk**2, "rec", "scan",
                                   note="as the model's decode loop computes it: two matmuls per head per token, "
                                        "whatever the context length"))
        parts.append(matmul(f"{pre}.out_proj", "output projection (h·d_k → d)", conv, p.rows, inner, d, "out",
                            "projections"))
        title = "lightning attention" + ("" if p.full else ": one token through the Kᵀ·V state")
        return node(pre, title, "FLOP", [(1, q) for q in parts], symbol="F_lit", latex=r"F_{\mathrm{lit}}")

    def state(self, b: Block, env: Env, prefix: str) -> Quantity:
        h, dk = sym(b, "h"), self.head_size(b)
        return cache_leaf(prefix, "lightning-attention state: h matrices Kᵀ·V of d_k × d_k (model dtype)",
                          h * dk**2 * S.bytes_kv, "S_lit", r"S_{\mathrm{lit}}",
                          note="transformers keeps it in the model dtype (torch.zeros(...).to(value_states)), the "
                               "same size at any context length")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        inner = self.inner(b)
        return [Linear("W_qkv", d, 3 * inner, "qkv_proj"), Linear("W_gate_out", d, inner, "output_gate"),
                Linear("W_out", inner, d, "out_proj")]

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        s, bb = S.s, S.b
        h, inner = sym(b, "h"), self.inner(b)
        return [leaf(f"{prefix}.lightning", "lightning attention: input, q/k/v, gate, core and norm outputs, each "
                     "block's c×c products", "byte",
                     S.bytes_a * s * bb * (d + 3 * inner + 3 * inner) + S.bytes_a * bb * h * s * 2 * sym(b, "B_lit"),
                     symbol="A_lit", latex=r"A_{\mathrm{lit}}", category="activations")]


LIGHTNING = register(Lightning())
