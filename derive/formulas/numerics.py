"""Numerics: softmax with temperature, exact until display.

Logits are catalog symbols (z_1, z_2, z_3) so a value like e²/(e² + e + e^½) stays exact and the
derivation shows where each term comes from; the number is only rounded when it is displayed.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError
from derive.quantity import Quantity, leaf, node
from derive.registry import Context, quantity

z_1 = S.define("z_1", "z_1", "1", "first logit (the one whose probability softmax_top reports)", integer=False,
               positive=False)
z_2 = S.define("z_2", "z_2", "1", "second logit", integer=False, positive=False)
z_3 = S.define("z_3", "z_3", "1", "third logit", integer=False, positive=False)
T_temp = S.define("T_temp", r"\tau", "1", "softmax temperature (logits are divided by it; 1 = plain softmax)",
                  integer=False)

LOGITS = (z_1, z_2, z_3)


def _terms(ctx: Context) -> list[Quantity]:
    return [leaf(f"numerics.softmax_top.exp{i}", f"exp(z_{i}/τ)", "1", sp.exp(z / T_temp), symbol=f"e_{i}",
                 latex=f"e_{{{i}}}") for i, z in enumerate(LOGITS, 1)]


@quantity("numerics.softmax_top", "softmax probability of the top logit z_1 at temperature τ (three logits)", "1")
def _softmax_top(ctx: Context) -> Quantity:
    """p_1 = exp(z_1/τ) / Σ_j exp(z_j/τ); checks that z_1 is the largest so 'top' means what it says."""
    given = [ctx.values.get(z) for z in LOGITS]
    if given[0] is not None and any(v is not None and v > given[0] for v in given[1:]):
        raise DeriveError("numerics.softmax_top reports the probability of z_1, the top logit: give the largest "
                          "logit as z_1 (e.g. --set z_1=2 --set z_2=1 --set z_3=0.5)")
    e1, e2, e3 = _terms(ctx)
    return node("numerics.softmax_top", "probability of the top token: exp(z_1/τ) / Σ exp(z_j/τ)", "1",
                expr=e1.symbol / (e1.symbol + e2.symbol + e3.symbol), children=(e1, e2, e3), symbol="p_top",
                latex=r"p_{\mathrm{top}}",
                note="τ < 1 sharpens the distribution (τ → 0: greedy, p → 1); τ → ∞ flattens it (p → 1/3)")
