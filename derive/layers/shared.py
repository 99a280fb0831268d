"""The use of a shared block at one layer: which block runs, and what this position adds of its own.

A layer whose ``shared`` is a block of kind ``shared`` runs ``arch.shared_blocks[block]`` (its weights
are counted once for the model by the topics; its compute and cache at every use). This block holds
only the per-position parts (Zamba2): LoRA adapters of rank ``r_ad`` on the shared attention's
q, k and v inputs (flag ``lora_qkv``: their width as a multiple of d, 0 for none; each adapter maps
that width → r_ad → that width), a LoRA adapter on the shared MLP's first projection (flag
``lora_mlp``: its output width as a multiple of the size ``d_ff``, 2 for a fused gate‖up; 0 for
none) and ``proj`` (a d×d projection of the shared block's output). A use without any of them
(ALBERT-style sharing) has no parameters of its own.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import Block
from derive.errors import DeriveError
from derive.layers.base import Env, Kind, Linear, Pass, linear, matmul, register, sym
from derive.quantity import Quantity, leaf, node

d = S.d

S.define("r_ad", r"r_{\mathrm{ad}}", meaning="rank of the per-position LoRA adapters of a shared block (Zamba2)")


class SharedUse(Kind):
    kind = "shared"
    role = "shared"
    node = "adapters"
    title = "shared-block use"

    # ---- shapes (one place) ---------------------------------------------------------------------
    @staticmethod
    def pairs(b: Block) -> list[tuple[str, str, sp.Expr, sp.Expr]]:
        """(site, title, input width, output width) of each low-rank pair this position adds."""
        out = []
        m = int(b.flag("lora_qkv", 0))
        if m:
            w = m * d
            for site in "qkv":
                out.append((site, f"LoRA adapter on the shared {site} projection ({m}d → r_ad → {m}d)", w, w))
        mo = int(b.flag("lora_mlp", 0))
        if mo:
            out.append(("mlp", f"LoRA adapter on the shared MLP's first projection (d → r_ad → {mo}·d_ff)", d,
                        mo * sym(b, "d_ff")))
        return out

    def describe(self, b: Block) -> str:
        parts = []
        if b.flag("lora_qkv", 0):
            parts.append("q,k,v")
        if b.flag("lora_mlp", 0):
            parts.append("MLP")
        text = f"LoRA r={b.size('r_ad')} on {' and '.join(parts)}" if parts else "no adapters"
        if b.flag("proj"):
            text += ", output projection d×d"
        return text

    def tag(self, b: Block) -> str:
        """Layers that mix their own blocks with shared block i: "hybrid{i}" (the block itself is "shared{i}")."""
        return f"hybrid{int(b.flag('block', 0))}"

    def check(self, b: Block, arch) -> None:
        if self.pairs(b) and b.size("r_ad") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('r_ad')} (adapter rank) must be a positive integer")
        if b.flag("lora_mlp", 0) and b.size("d_ff") <= 0:  # the adapter's output width is the shared MLP's
            raise DeriveError(f"{arch.name}: {b.name('d_ff')} must be a positive integer, got {b.size('d_ff')}")

    # ---- parameters -----------------------------------------------------------------------------
    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        parts: list[Quantity] = []
        for site, title, w_in, w_out in self.pairs(b):
            parts.append(leaf(f"{prefix}.lora_{site}", title, "param", sym(b, "r_ad") * (w_in + w_out),
                              symbol=f"P_ad{site}", latex=rf"P_{{\mathrm{{ad}},{site}}}", category="adapter"))
        if b.flag("proj"):
            parts.append(linear(f"{prefix}.proj", "projection of the shared block's output (d → d)", d, d, False,
                                "adproj", "adapter"))
        title = "this position's own parts of the shared block (adapters, projection)"
        if not parts:
            return leaf(prefix, title + ": none", "param", 0, symbol="P_use", latex=r"P_{\mathrm{use}}")
        return node(prefix, title, "param", [(1, q) for q in parts], symbol="P_use", latex=r"P_{\mathrm{use}}")

    # ---- FLOPs ----------------------------------------------------------------------------------
    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity | None:
        conv = env.conv
        assert conv is not None
        r = sym(b, "r_ad") if b.has("r_ad") else None
        parts: list[Quantity] = []
        for site, title, w_in, w_out in self.pairs(b):
            parts.append(leaf(f"{prefix}.lora_{site}", title, "FLOP", conv.mac * p.rows * r * (w_in + w_out),
                              symbol=f"F_ad{site}", latex=rf"F_{{\mathrm{{ad}},{site}}}", category="adapter"))
        if b.flag("proj"):
            parts.append(matmul(f"{prefix}.proj", "projection of the shared block's output", conv, p.rows, d, d,
                                "adproj", "adapter"))
        if not parts:
            return None
        return node(prefix, "this position's adapters and projection", "FLOP", [(1, q) for q in parts],
                    symbol="F_use", latex=r"F_{\mathrm{use}}")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        return [Linear("W_proj", d, d, "proj")] if b.flag("proj") else []


SHARED = register(SharedUse())
