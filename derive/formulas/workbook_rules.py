"""Compositions the workbook asks about that no topic module registers: small, named, exact.

Each is built from the layer kinds' own formulas (``layers.dense.mlp_params``), so the workbook never writes a
formula of its own; only the widths the question states are chosen here.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.layers.dense import mlp_params
from derive.quantity import Quantity, node
from derive.registry import Context, quantity

_SWIGLU_VS_4D = "params.swiglu_8d3_minus_4d"
_SWIGLU_8D3 = "params.swiglu_8d3"


@quantity(_SWIGLU_8D3, "SwiGLU FFN at d_ff = 8d/3 (symbolic in d)", "param")
def _swiglu_8d3(ctx: Context) -> Quantity:
    """Three d×(8d/3) matrices: 3·d·(8d/3) = 8d², the 8d² of a two-matrix 4d FFN (exercise 8.8)."""
    return mlp_params("swiglu", frozenset(), sp.Rational(8, 3) * S.d, _SWIGLU_8D3, "swiglu", "mlp",
                      "SwiGLU FFN at d_ff = 8d/3")


@quantity(_SWIGLU_VS_4D, "SwiGLU FFN at d_ff = 8d/3 minus a two-matrix FFN at d_ff = 4d", "param")
def _swiglu_vs_4d(ctx: Context) -> Quantity:
    """Why SwiGLU models pick d_ff ≈ 8d/3: three d×(8d/3) matrices hold the 8d² of two d×4d ones,
    so the difference is 0 for every d (the seed's exercise 8.8, shown symbolically)."""
    swiglu = mlp_params("swiglu", frozenset(), sp.Rational(8, 3) * S.d, f"{_SWIGLU_VS_4D}.swiglu", "swiglu", "mlp",
                        "SwiGLU FFN at d_ff = 8d/3")
    standard = mlp_params("gelu", frozenset(), 4 * S.d, f"{_SWIGLU_VS_4D}.standard", "4d", "mlp",
                          "standard FFN at d_ff = 4d")
    return node(_SWIGLU_VS_4D, "SwiGLU (d_ff = 8d/3) minus standard FFN (d_ff = 4d)", "param",
                [(1, swiglu), (-1, standard)], symbol="dP_ffn", latex=r"\Delta P_{\mathrm{FFN}}",
                note="no biases in either FFN; d_ff = 8d/3 exactly (models round it, e.g. LLaMA's 11008 at d=4096)")
