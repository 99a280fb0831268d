"""Registered parameter-count quantities (the formulas themselves live in params.py)."""

from __future__ import annotations

import sympy as sp

from derive.errors import DeriveError
from derive.formulas import params
from derive.registry import Context, quantity


def _category_values(q, values) -> dict[str, sp.Expr] | None:
    """q.breakdown() with values substituted, walking the Σ coeff·part tree with numbers (no symbolic
    expansion); None when a node is not such a sum or a value is not exact."""
    out: dict[str, sp.Expr] = {}

    def visit(node, mult) -> bool:
        if not node.children:
            cat = node.category or node.id
            out[cat] = out.get(cat, 0) + mult * node.expr.xreplace(values)
            return True
        terms = node.meta.get("terms")
        if not terms or len(terms) != len(node.children):
            return False
        by_symbol = {c.symbol: c for c in node.children}
        return all(visit(by_symbol[sym], mult * sp.sympify(coeff).xreplace(values)) for coeff, sym in terms)

    if not visit(q, sp.Integer(1)) or not all(v.is_Rational for v in out.values()):
        return None
    return {k: v for k, v in out.items() if v != 0}


def _breakdown(ctx: Context, q, value) -> dict:
    """Per-category totals, integers, as the JSON 'breakdown' (and text lines)."""
    fast = _category_values(q, ctx.values)
    if fast is not None and all(v.is_Integer for v in fast.values()):
        out = {cat: int(v) for cat, v in fast.items()}
    else:
        out = {cat: int(e.xreplace(ctx.values)) for cat, e in q.breakdown().items()
               if not e.xreplace(ctx.values).free_symbols}
    width = max((len(c) for c in out), default=0)
    lines = ["breakdown:"] + [f"  {c.ljust(width)}  {v:>16,}" for c, v in out.items()]
    return {"breakdown": out, "lines": lines}


def approx_error(ctx: Context, q, value) -> dict:
    """The rule of thumb against the exact count of the same architecture."""
    if not ctx.model_given and not all(s in ctx.values for s in params.total(ctx.arch).free_symbols):
        return {}
    exact = params.total(ctx.arch).evaluate(ctx.values)
    if exact.free_symbols:
        return {}
    err = (value - exact) / exact
    return {"exact_total": int(exact), "relative_error": float(err),
            "lines": [f"exact count: {int(exact):,} param; the approximation is off by {float(err):+.3%}"]}


@quantity("params.total", "total parameters (unique; a tied matrix counted once)", "param", extras=_breakdown)
def _total(ctx: Context):
    return params.total(ctx.arch, options=ctx.options)


@quantity("params.active", "parameters used per token (MoE: top-k experts)", "param", extras=_breakdown)
def _active(ctx: Context):
    return params.total(ctx.arch, active=True, options=ctx.options)


@quantity("params.read", "parameters one decode step of b sequences reads (MoE: the experts it touches)", "param")
def _read(ctx: Context):
    from derive import symbols as S

    return params.read_per_step(ctx.arch, S.b, ctx.options)


@quantity("params.approx", "12·L·d² + V·d rule of thumb", "param", extras=approx_error)
def _approx(ctx: Context):
    return params.approx()


def _part(ctx: Context, qid: str):
    """A node of params.total; a model whose layers come in groups names them instead."""
    tree = params.total(ctx.arch, options=ctx.options)
    found = tree.find(qid)
    if found is not None:
        return found
    groups = [g.prefix for _, gs in params.layer_groups(ctx.arch) for g in gs]
    raise DeriveError(f"{qid}: this model's layers come in groups ({', '.join(groups)}); ask for "
                      f"{groups[0]}{qid[len('params.layer'):]} and the like, or params.total for all of them")


@quantity("params.layer", "parameters of one layer (of a model whose layers are all alike)", "param")
def _layer(ctx: Context):
    return _part(ctx, "params.layer")


@quantity("params.layer.attention", "attention projections of one layer", "param")
def _attn(ctx: Context):
    return _part(ctx, "params.layer.attention")


@quantity("params.layer.mlp", "FFN of one layer (dense MLP, or the whole MoE block)", "param")
def _mlp(ctx: Context):
    return _part(ctx, "params.layer.mlp")


_CATEGORIES = {
    "params.embedding_total": ("token_embedding", "token embedding", "emb"),
    "params.position_total": ("position_embedding", "position embedding", "pos"),
    "params.attention": ("attention", "attention weights, all layers", "attnall"),
    "params.mlp": ("mlp", "dense MLP weights, all layers", "mlpall"),
    "params.experts": ("moe_experts", "routed expert weights, all layers", "experts"),
    "params.router": ("moe_router", "router weights, all layers", "router"),
    "params.shared_experts": ("moe_shared_experts", "shared experts and their gate, all layers", "sharedall"),
    "params.norm": ("norm", "norm weights, all layers + final", "normall"),
    "params.lm_head_total": ("lm_head", "LM head (0 when tied)", "headall"),
}


def _register_category(qid: str, cat: str, title: str, sym: str) -> None:
    @quantity(qid, title, "param")
    def _build(ctx: Context):
        return params.category_total(ctx.arch, cat, qid, title, sym, ctx.options)


for _qid, (_cat, _title, _sym) in _CATEGORIES.items():
    _register_category(_qid, _cat, _title, _sym)
