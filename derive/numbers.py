"""Numbers for machines: how an exact value becomes a JSON number (every JSON writer uses this one rule)."""

from __future__ import annotations

import math

import sympy as sp


def json_value(v) -> int | float | str | None:
    """Exact integers stay integers; other exact numbers become floats (exact form kept aside)."""
    v = sp.sympify(v)
    if v.free_symbols:
        return None
    if v.is_Integer and int(v).bit_length() <= 13_000:  # Python prints an int of at most 4,300 digits
        return int(v)
    if v.is_Rational or v.is_number:
        x = float(v) if v.is_Rational else float(sp.N(v, 30))  # N: correctly rounded for closed forms (e**4/(…))
        # past float range (1.8e308) JSON has no number: the value as text ('1.000e+400'), not Infinity
        return x if math.isfinite(x) or not v.is_finite else str(sp.N(v, 4))
    return None
    if v.is_Integer:
        return int(v)
    if v.is_Rational:
        return float(v)
    if v.is_number:
        return float(sp.N(v, 30))  # correctly rounded for closed forms (e**4/(…), 2π·10000^…)
    return None
