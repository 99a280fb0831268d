"""Parameter counts, exact for a given architecture, as a derivation tree.

Each weight matrix and bias is one term, so the tree reads like the module list of the model:
``P = P_emb + P_pos + L·P_layer + P_norm,f + P_head``.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.architecture import NORM_PARAMS, Architecture
from derive.quantity import Quantity, leaf, node

d, L, V, h, g, T = S.d, S.L, S.V, S.h, S.g, S.T


def _mrm(name: str) -> str:
    return r"\mathrm{" + name + "}"


def _linear(qid: str, title: str, n_in, n_out, bias: bool, sym: str, category: str) -> Quantity:
    expr = n_in * n_out + (n_out if bias else 0)
    return leaf(qid, title + (" (weight + bias)" if bias else ""), "param", expr,
                symbol=f"P_{sym}", latex=f"P_{{{_mrm(sym)}}}", category=category)


def _norm(arch: Architecture, width, count: int, qid: str, title: str, sym: str) -> Quantity | None:
    c = NORM_PARAMS[arch.norm]
    if c == 0 or count == 0:
        return None
    kind = {"layernorm": "LayerNorm γ,β", "layernorm_nobias": "LayerNorm γ", "rmsnorm": "RMSNorm γ"}[arch.norm]
    return leaf(qid, f"{title} ({count}× {kind})", "param", count * c * width,
                symbol=f"P_{sym}", latex=f"P_{{{_mrm(sym)}}}", category="norm")


def attention(arch: Architecture, prefix: str = "params.layer.attention") -> Quantity:
    dk, gk = arch.head_size(), arch.kv_heads()
    b = arch.biases
    parts = [
        _linear(f"{prefix}.q", "query projection W_Q", d, h * dk, "q" in b, "q", "attention"),
        _linear(f"{prefix}.k", "key projection W_K", d, gk * dk, "k" in b, "k", "attention"),
        _linear(f"{prefix}.v", "value projection W_V", d, gk * dk, "v" in b, "v", "attention"),
        _linear(f"{prefix}.o", "output projection W_O", h * dk, d, "o" in b, "o", "attention"),
    ]
    if arch.qk_norm != "none":
        width_q, width_k = (dk, dk) if arch.qk_norm == "head" else (h * dk, gk * dk)
        c = NORM_PARAMS[arch.qk_norm_type]
        where = "d_k, shared by all heads" if arch.qk_norm == "head" else "per head"
        if c:
            parts.append(leaf(f"{prefix}.qk_norm", f"QK-norm of queries and keys ({where}, {c} per element)",
                              "param", c * (width_q + width_k), symbol="P_qknorm",
                              latex=r"P_{\mathrm{qk\text{-}norm}}", category="norm"))
    return node(prefix, f"attention ({arch.attention_kind})", "param", [(1, p) for p in parts],
                symbol="P_attn", latex=r"P_{\mathrm{attn}}")


def ffn(arch: Architecture, width, prefix: str, sym: str, category: str, title: str) -> Quantity:
    """One MLP (dense FFN, one expert, or one shared expert)."""
    b = arch.biases
    parts = []
    if arch.gated:
        parts.append(_linear(f"{prefix}.gate", "gate projection W_gate", d, width, "gate" in b, "gate", category))
    parts.append(_linear(f"{prefix}.up", "up projection W_up", d, width, "up" in b, "up", category))
    parts.append(_linear(f"{prefix}.down", "down projection W_down", width, d, "down" in b, "down", category))
    kind = {"swiglu": "SwiGLU", "geglu": "GeGLU", "gelu": "GELU", "relu": "ReLU"}[arch.mlp]
    return node(prefix, f"{title} ({kind}, {'3' if arch.gated else '2'} matrices)", "param",
                [(1, p) for p in parts], symbol=f"P_{sym}", latex=f"P_{{{_mrm(sym)}}}")


def moe_block(arch: Architecture, active: bool) -> Quantity:
    m = arch.moe
    assert m is not None
    prefix = "params.moe_layer.moe"
    router = _linear(f"{prefix}.router", "router W_r", d, S.E, "router" in arch.biases, "router", "moe_router")
    expert = ffn(arch, S.d_ffe, f"{prefix}.expert", "expert", "moe_experts", "one routed expert")
    parts: list[tuple[sp.Expr, Quantity]] = [(1, router), (S.k if active else S.E, expert)]
    if m.shared_experts:
        shared = ffn(arch, S.d_ffs, f"{prefix}.shared", "shared", "moe_shared_experts", "one shared expert")
        parts.append((S.E_s, shared))
        if m.shared_gate:
            parts.append((1, leaf(f"{prefix}.shared_gate", "shared-expert gate (d→1)", "param", d,
                                  symbol="P_sgate", latex=r"P_{\mathrm{sgate}}", category="moe_shared_experts")))
    title = "mixture of experts: router + " + ("k active" if active else "E") + " experts"
    if m.shared_experts:
        title += " + shared"
    return node(prefix, title, "param", parts, symbol="P_moe", latex=r"P_{\mathrm{MoE}}")


def layer(arch: Architecture, moe: bool, active: bool = False) -> Quantity:
    prefix = "params.moe_layer" if moe else "params.layer"
    attn = attention(arch, prefix + ".attention")
    mlp = moe_block(arch, active) if moe else ffn(arch, S.d_ff, prefix + ".mlp", "mlp", "mlp", "MLP")
    parts: list[tuple[sp.Expr, Quantity]] = [(1, attn), (1, mlp)]
    n = _norm(arch, d, arch.norms_per_layer, prefix + ".norm", "norms", "norm")
    if n is not None:
        parts.append((1, n))
    title = "one MoE layer" if moe else "one layer"
    if arch.parallel:
        title += " (parallel attention + MLP)"
    sym = "moelayer" if moe else "layer"
    return node(prefix, title, "param", parts, symbol=f"P_{sym}", latex=f"P_{{{_mrm(sym)}}}")


def _embedding_parts(arch: Architecture) -> list[tuple[sp.Expr, Quantity]]:
    width = S.d_e if arch.d_e is not None else d
    parts: list[tuple[sp.Expr, Quantity]] = [
        (1, leaf("params.embedding", "token embedding (V rows)", "param", V * width,
                 symbol="P_emb", latex=r"P_{\mathrm{emb}}", category="token_embedding"))
    ]
    if arch.d_e is not None:
        parts.append((1, leaf("params.embedding_projection", "project in (d_e→d) and out (d→d_e)", "param",
                              2 * S.d_e * d, symbol="P_proj", latex=r"P_{\mathrm{proj}}",
                              category="embedding_projection")))
    if arch.positions == "learned":
        parts.append((1, leaf("params.position", "learned position table (T rows)", "param", T * d,
                              symbol="P_pos", latex=r"P_{\mathrm{pos}}", category="position_embedding")))
    if arch.embedding_norm:
        n = _norm(arch, d, 1, "params.embedding_norm", "embedding norm", "embnorm")
        if n is not None:
            parts.append((1, n))
    return parts


def _head_parts(arch: Architecture) -> list[tuple[sp.Expr, Quantity]]:
    parts: list[tuple[sp.Expr, Quantity]] = []
    if arch.final_norm:
        n = _norm(arch, d, 1, "params.final_norm", "final norm", "normf")
        if n is not None:
            parts.append((1, n))
    width = S.d_e if arch.d_e is not None else d
    bias = "lm_head" in arch.biases
    if not arch.tied:
        parts.append((1, _linear("params.lm_head", "LM head (untied)", width, V, bias, "head", "lm_head")))
    elif bias:
        parts.append((1, leaf("params.lm_head", "LM head bias (weight tied to the embedding)", "param", V,
                              symbol="P_head", latex=r"P_{\mathrm{head}}", category="lm_head")))
    return parts


def total(arch: Architecture, active: bool = False) -> Quantity:
    """params.total (unique parameters; a tied matrix counted once) or params.active (per token)."""
    parts = _embedding_parts(arch)
    if arch.moe is None:
        parts.append((L, layer(arch, moe=False)))
    elif arch.moe_everywhere:
        parts.append((L, layer(arch, moe=True, active=active)))
    else:
        parts.append((L - S.L_moe, layer(arch, moe=False)))
        parts.append((S.L_moe, layer(arch, moe=True, active=active)))
    parts += _head_parts(arch)
    if active:
        return node("params.active", "parameters used per token (top-k experts only)", "param", parts,
                    symbol="P_active", latex=r"P_{\mathrm{active}}",
                    note="routed experts count k times per MoE layer, not E; everything else is shared")
    note = "a tied LM head reuses the embedding matrix and adds no parameters" if arch.tied else ""
    return node("params.total", "total parameters", "param", parts, symbol="P", latex="P", note=note)


def exact_count(arch: Architecture, values, active: bool = False) -> sp.Expr:
    """params.total (or params.active) for these values, evaluated node by node: the same tree, without
    expanding the whole formula first (the CLI computes N and N_act for every model this way)."""

    def value(q: Quantity) -> sp.Expr:
        if not q.children:
            return q.expr.xreplace(values)
        return q.expr.xreplace({**values, **{c.symbol: value(c) for c in q.children}})

    tree = total(arch, active=active)
    out = value(tree)
    return out if out.is_Number else tree.evaluate(values)


def approx() -> Quantity:
    """The 12·L·d² + V·d rule of thumb: 4d² attention + 8d² (4d) MLP per layer, tied embedding."""
    q = leaf("params.approx", "rule of thumb 12·L·d² + V·d", "param", 12 * L * d**2 + V * d,
             symbol="P_approx", latex=r"P_{\approx}",
             note="approximation: 4d² attention (MHA) + 8d² MLP (4d, two matrices) per layer, tied embedding; "
                  "no biases, norms or position table")
    q.approximation = True
    return q


def category_total(arch: Architecture, category: str, qid: str, title: str, sym: str) -> Quantity:
    """One breakdown category summed over the whole model (e.g. all attention weights)."""
    tree = total(arch)
    pairs = [(m, lf) for lf, m in tree.leaf_coefficients() if (lf.category or lf.id) == category]
    if not pairs:
        return leaf(qid, title + " (none in this architecture)", "param", 0, symbol=f"P_{sym}",
                    latex=f"P_{{{_mrm(sym)}}}", category=category)
    return node(qid, title, "param", pairs, symbol=f"P_{sym}", latex=f"P_{{{_mrm(sym)}}}", category=category)
