"""Positional encodings: wavelengths of the sinusoidal encoding (Vaswani et al. 2017).

PE(pos, 2i) = sin(pos / 10000^(2i/d)), so dimension pair i repeats every 2π·10000^(2i/d)
positions: from 2π at i = 0 to just under 2π·10000 at i = d/2 − 1.
"""

from __future__ import annotations

import sympy as sp

from derive import symbols as S
from derive.errors import DeriveError
from derive.quantity import Quantity, leaf
from derive.registry import Context, quantity

i_pe = S.define("i_pe", "i", "1", "index of a sinusoidal dimension pair (0 … d/2 − 1)", integer=False,
                positive=False, nonnegative=True)


@quantity("positional.sinusoidal_wavelength", "wavelength of sinusoidal dimension pair i: 2π·10000^(2i/d)",
          "position")
def _wavelength(ctx: Context) -> Quantity:
    i, d = ctx.values.get(i_pe), ctx.values.get(S.d)
    if i is not None and not sp.sympify(i).is_integer:
        raise DeriveError(f"i_pe (dimension pair index) must be a whole number, got {i}")
    if i is not None and d is not None and i >= sp.Rational(d, 2):
        raise DeriveError(f"i_pe={i} is out of range: d={d} has dimension pairs i = 0 … {d // 2 - 1}")
    return leaf("positional.sinusoidal_wavelength", "positions per period of sin/cos pair i", "position",
                2 * sp.pi * sp.Integer(10000) ** (2 * i_pe / S.d), symbol="lambda_i", latex=r"\lambda_i",
                note="the base 10000 is Vaswani et al. 2017's; i = 0 repeats every 2π ≈ 6.28 positions, the slowest "
                     "pair (i = d/2 − 1) just under 2π·10000 ≈ 62,832")
