"""Rules of thumb that inverse questions are asked against (the workbook's "by the 12·L·d² rule").

They are approximations and say so; ``derive show`` prints their error against the exact count of
the same architecture when a model is given.
"""

from __future__ import annotations

from derive import symbols as S
from derive.formulas import params
from derive.quantity import Quantity, leaf
from derive.registry import Context, quantity


def approx_layers() -> Quantity:
    """12·L·d²: the layer term alone (4d² attention + 8d² MLP per layer), without the embedding."""
    q = leaf("params.approx_layers", "rule of thumb 12·L·d² (layers only)", "param", 12 * S.L * S.d**2,
             symbol="P_12Ld2", latex=r"P_{12Ld^2}",
             note="approximation: per layer 4d² attention (MHA, Q K V O) + 8d² MLP (4d, two matrices); "
                  "no embedding, biases, norms or position table")
    q.approximation = True
    return q


def _error(ctx: Context, q, value) -> dict:
    """How far the rule is from the exact count of the same architecture (when there is one)."""
    if not ctx.model_given:
        return {}
    exact = params.total(ctx.arch).evaluate(ctx.values)
    if exact.free_symbols:
        return {}
    err = (value - exact) / exact
    return {"exact_total": int(exact), "relative_error": float(err),
            "lines": [f"exact count: {int(exact):,} param; the rule is off by {float(err):+.3%}"]}


@quantity("params.approx_layers", "12·L·d² rule of thumb (layers only, no embedding)", "param", extras=_error)
def _approx_layers(ctx: Context) -> Quantity:
    return approx_layers()
