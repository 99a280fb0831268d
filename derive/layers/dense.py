"""A dense feed-forward block (MLP): GELU/ReLU with two matrices, or a gated SwiGLU/GeGLU with three.

A block of kind ``dense`` has the size ``d_ff`` (its hidden width; ``derived`` d_ff = 4d keeps a 4d
MLP 4d when d changes) and flags ``act`` (gelu, relu, relu2, silu, swiglu, geglu, …; the gated ones
have a gate projection), ``bias`` (the projections that have one: gate, up, down) and ``act_params``
(learned scalars of the activation itself, e.g. Apertus' xIELU α_p and α_n: 2 per MLP; 0 FLOPs, it is
elementwise). The same shapes serve one expert and one shared expert of a mixture of experts
(:mod:`derive.layers.moe`).
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import Block
from derive.layers.base import Env, Kind, Linear, Pass, linear, matmul, mrm, register, saved, sym, vector
from derive.quantity import Quantity, node

d = S.d

GATED = ("swiglu", "geglu", "glu")
ACT_NAMES = {"swiglu": "SwiGLU", "geglu": "GeGLU", "glu": "GLU", "gelu": "GELU", "relu": "ReLU", "relu2": "ReLU²",
             "silu": "SiLU", "xielu": "xIELU"}


def gated(act: str) -> bool:
    return act in GATED


def mlp_params(act: str, bias: frozenset, width: sp.Expr, prefix: str, sym_: str, category: str, title: str,
               latex: str | None = None, act_params: int = 0) -> Quantity:
    """One MLP's matrices (a dense FFN, one routed expert, or one shared expert), and the learned scalars
    of its activation when it has any."""
    parts = []
    if gated(act):
        parts.append(linear(f"{prefix}.gate", "gate projection W_gate", d, width, "gate" in bias, "gate", category))
    parts.append(linear(f"{prefix}.up", "up projection W_up", d, width, "up" in bias, "up", category))
    parts.append(linear(f"{prefix}.down", "down projection W_down", width, d, "down" in bias, "down", category))
    n_mat = len(parts)
    name = ACT_NAMES.get(act, act)
    if act_params:
        parts.append(vector(f"{prefix}.act", f"learned scalars of the {name} activation", sp.Integer(act_params),
                            "act", category))
    return node(prefix, f"{title} ({name}, {n_mat} matrices)", "param", [(1, p) for p in parts],
                symbol=f"P_{sym_}", latex=latex or f"P_{{{mrm(sym_)}}}")


def mlp_flops(conv, act: str, width: sp.Expr, prefix: str, rows, title: str, sym_: str, category: str) -> Quantity:
    parts = []
    if gated(act):
        parts.append(matmul(f"{prefix}.gate", "gate projection", conv, rows, d, width, "gate", category))
    parts.append(matmul(f"{prefix}.up", "up projection", conv, rows, d, width, "up", category))
    parts.append(matmul(f"{prefix}.down", "down projection", conv, rows, width, d, "down", category))
    return node(prefix, f"{title} ({len(parts)} matmuls)", "FLOP", [(1, p) for p in parts],
                symbol=f"F_{sym_}", latex=f"F_{{{mrm(sym_)}}}")


def mlp_linears(act: str, width: sp.Expr, name: str = "") -> list[Linear]:
    out = []
    if gated(act):
        out.append(Linear(f"W_gate{name}", d, width, "gate"))
    out += [Linear(f"W_up{name}", d, width, "up"), Linear(f"W_down{name}", width, d, "down")]
    return out


#: hidden tensors of d_ff elements an MLP saves per token, by activation: a gated MLP keeps the gate output
#: (its activation's input), the activation output, the up output and their product (the down input); GELU or
#: SiLU keeps its input and output; ReLU only its output (which is the down input); ReLU² the ReLU output and
#: its square
HIDDEN_SAVED = {"swiglu": 4, "geglu": 4, "glu": 4, "gelu": 2, "silu": 2, "xielu": 2, "relu": 1, "relu2": 2}


def mlp_activations(act: str, width: sp.Expr, prefix: str, dropout: bool, name: str = "mlp") -> list[Quantity]:
    """The MLP's input (one tensor for gate and up), its hidden tensors, and the output dropout's mask."""
    n = HIDDEN_SAVED.get(act, 2)
    out = [saved(f"{prefix}.{name}_input", "input of the MLP (the normed x)", d * S.bytes_a, "A_min", r"A_{m}"),
           saved(f"{prefix}.{name}", f"MLP hidden tensors: {n} × d_ff ({ACT_NAMES.get(act, act)})",
                 n * width * S.bytes_a, "A_mlp", r"A_{\mathrm{mlp}}")]
    if dropout:
        out.append(saved(f"{prefix}.{name}_dropout", "dropout mask after the MLP", d * S.bytes_mask, "A_dropm",
                         r"A_{\mathrm{drop},m}"))
    return out


class Dense(Kind):
    kind = "dense"
    role = "ffn"
    node = "mlp"

    def describe(self, b: Block) -> str:
        act = b.flag("act", "gelu")
        extra = f", {b.flag('act_params')} activation parameters" if b.flag("act_params") else ""
        return f"{ACT_NAMES.get(act, act)} MLP (d_ff={b.size('d_ff')}{extra})"

    def tag(self, b: Block) -> str:
        return "dense"

    def check(self, b: Block, arch) -> None:
        from derive.errors import DeriveError

        if b.size("d_ff") <= 0:
            raise DeriveError(f"{arch.name}: {b.name('d_ff')} must be a positive integer, got {b.size('d_ff')}")

    def params(self, b: Block, env: Env, prefix: str, *, active: bool = False) -> Quantity:
        return mlp_params(b.flag("act", "gelu"), b.flag("bias", frozenset()), sym(b, "d_ff"), prefix, "mlp", "mlp",
                          "MLP", r"P_{\mathrm{mlp}}", b.flag("act_params", 0))

    def flops(self, b: Block, env: Env, prefix: str, p: Pass) -> Quantity:
        act = b.flag("act", "gelu")
        return mlp_flops(env.conv, act, sym(b, "d_ff"), prefix, p.rows, f"{ACT_NAMES.get(act, act)} MLP", "mlp",
                         "mlp")

    def linears(self, b: Block, env: Env) -> list[Linear]:
        return mlp_linears(b.flag("act", "gelu"), sym(b, "d_ff"))

    def activations(self, b: Block, env: Env, prefix: str) -> list[Quantity]:
        return mlp_activations(b.flag("act", "gelu"), sym(b, "d_ff"), prefix, env.option("dropout") == "yes")


DENSE = register(Dense())
