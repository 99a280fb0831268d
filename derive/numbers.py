"""Numbers for machines: how an exact value becomes a JSON number (every JSON writer uses this one rule)."""

from __future__ import annotations

import sympy as sp


def json_value(v) -> int | float | str | None:
    """Exact integers stay integers; other exact numbers become floats (exact form kept aside)."""
    v = sp.sympify(v)
    if v.free_symbols:
        return None
    if v.is_Integer:
        return int(v)
    if v.is_Rational:
        return float(v)
    if v.is_number:
        return float(sp.N(v, 30))  # correctly rounded for closed forms (e**4/(…), 2π·10000^…)
    return None
