"""Rules of thumb that inverse questions are asked against (the workbook's "by the 12·L·d² rule").

They are approximations and say so; ``derive show`` prints their error against the exact count of
the same architecture when a model is given.
"""

from __future__ import annotations

from derive import symbols as S
from derive.formulas.params_quantities import approx_error
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


@quantity("params.approx_layers", "12·L·d² rule of thumb (layers only, no embedding)", "param", extras=approx_error)
def _approx_layers(ctx: Context) -> Quantity:
    return approx_layers()
